// A real collector (worker-collector/main.ts, bundled and started as `npm run
// collector` starts it: see test/support/collector-bundle.ts) on Redis,
// with a 4 MiB buffer (--max-buffer-mb 4), while this test holds SQLite's
// write lock from another connection: the collector cannot write, and
// events pour in faster than the budget holds. Redis keeps nothing for it:
// - with its disk spool (the default), the reader thread keeps what the
//   collector cannot take, and every event is stored once the lock goes;
// - without one (--max-spool-mb 0) it must shed. What it sheds has no task
//   row, but the metrics stay exact: every published event is counted in
//   event_counters, under its task's name.
// Either way it keeps its broker connection throughout, writes what it kept
// once the lock goes, and stores a later stream whole.

import { randomUUID } from 'node:crypto';
import Sqlite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT, envelope, RespPublisher, taskFinished, taskReceived, taskSent, taskStarted, WORKER } from '../../bench/celery-wire';
import { stateForEvent, stateKey } from '../../src/shared/task-states';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { createTestDatabase, openTestConnection, type TestDatabase } from '../support/databases';
import { buildCollectorBundle, type CollectorBundle, startBundledCollector } from '../support/collector-bundle';
import { type ManagedProcess, printLogsOnFailure, stopAllProcesses } from '../support/processes';
import { waitFor } from '../support/stalk';
import { taskCountersByNameAndType } from '../support/counters';

/** This file's Redis database: the collector reads `/3.celeryev/*`, where no other test publishes. */
const REDIS_DB = 3;
const BROKER = `redis://127.0.0.1:6379/${REDIS_DB}`;
const BUFFER_MB = 4;
/** The overload: this many tasks (four events each) at this rate, all while the lock is held. */
const OVERLOAD_TASKS = 20_000;
const OVERLOAD_RATE = 5_000;
/** How long the write lock is held from the moment publishing starts, */
const LOCK_MS = 9_000;
/** and at least this long after publishing ended (a loaded machine may publish slower). */
const LOCK_AFTER_PUBLISHING_MS = 4_000;
/** After the lock: a stream small enough for the budget, which must be stored whole. */
const AFTER_TASKS = 1_000;
const AFTER_RATE = 500;
const TICK_MS = 20;
const TYPES = ['task-sent', 'task-received', 'task-started', 'task-succeeded', 'task-failed'] as const;

const run = randomUUID().slice(0, 8);

printLogsOnFailure();

/**
 * Task events at a steady rate in Celery's Redis wire format, each task's
 * four events a tick (20 ms) apart, as a queue wait and a runtime spread
 * them: each tick publishes the due tasks' task-sent (the client, on
 * task.sent), and the received, started and finished of the tasks one stage
 * behind (the worker, on task.multi, as workers batch them; one event per
 * message here, so that a message and an event are one and the same in the
 * counts).
 */
class EventStream {
  /** `type` -> events published. */
  readonly published = new Map<string, number>();
  readonly uuids = new Set<string>();
  tasks = 0;
  private readonly done: Promise<void>;

  constructor(
    private readonly publisher: RespPublisher,
    private readonly names: (n: number) => string,
    private readonly total: number,
    private readonly perSecond: number,
  ) {
    this.done = this.run();
  }

  get events(): number {
    let n = 0;
    for (const count of this.published.values()) n += count;
    return n;
  }

  private publish(key: string, body: string, hostname: string, type: string): boolean {
    this.published.set(type, (this.published.get(type) ?? 0) + 1);
    return this.publisher.publish(`/${REDIS_DB}.celeryev/${key}`, envelope(body, key, hostname));
  }

  private async run(): Promise<void> {
    const started = performance.now();
    let next = 0;
    // Tasks sent one tick ago are received now, received ones started, started ones finished.
    let stages: { uuid: string; n: number }[][] = [[], [], []];
    while (next < this.total || stages.some((stage) => stage.length > 0)) {
      const tickStart = performance.now();
      const due = Math.min(this.total, Math.floor(((tickStart - started) / 1000) * this.perSecond));
      let ok = true;
      const [toReceive = [], toStart = [], toFinish = []] = stages;
      for (const { uuid, n } of toFinish) {
        ok = this.publish('task.multi', `[${taskFinished(uuid, n)}]`, WORKER, n % 10 === 0 ? 'task-failed' : 'task-succeeded') && ok;
      }
      for (const { uuid } of toStart) ok = this.publish('task.multi', `[${taskStarted(uuid)}]`, WORKER, 'task-started') && ok;
      for (const { uuid, n } of toReceive)
        ok = this.publish('task.multi', `[${taskReceived(uuid, n, this.names(n))}]`, WORKER, 'task-received') && ok;
      const sending: { uuid: string; n: number }[] = [];
      for (; next < due; next++) {
        const uuid = randomUUID();
        ok = this.publish('task.sent', taskSent(uuid, next, this.names(next)), CLIENT, 'task-sent') && ok;
        this.uuids.add(uuid);
        this.tasks += 1;
        sending.push({ uuid, n: next });
      }
      stages = [sending, toReceive, toStart];
      if (!ok) await this.publisher.drain();
      const spent = performance.now() - tickStart;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, TICK_MS - spent)));
    }
    // Redis has answered every PUBLISH: each message is with the subscriber (or nobody heard it).
    await this.publisher.settled();
  }

  finished(): Promise<void> {
    return this.done;
  }
}

interface StoredTask {
  uuid: string;
  name: string | null;
  state: string;
  timestamp: number;
  result: string | null;
  runtime: number | null;
  exception: string | null;
  timeline: { type: string; timestamp: number; clock: number }[];
}

async function storedTasks(database: OpenDatabase, prefix: string): Promise<Map<string, StoredTask>> {
  const tasks = new Map<string, StoredTask>();
  const rows = await database.db
    .selectFrom('tasks')
    .select(['uuid', 'name', 'state', 'timestamp', 'result', 'runtime', 'exception'])
    .execute();
  for (const row of rows)
    tasks.set(row.uuid, {
      ...row,
      timestamp: Number(row.timestamp),
      runtime: row.runtime === null ? null : Number(row.runtime),
      timeline: [],
    });
  const orphans: string[] = [];
  for (const row of await database.db.selectFrom('task_events').select(['task_id', 'events']).orderBy('id').execute()) {
    const task = tasks.get(row.task_id);
    if (!task) {
      orphans.push(row.task_id);
      continue;
    }
    task.timeline.push(...(JSON.parse(row.events) as StoredTask['timeline']));
  }
  expect(orphans.slice(0, 5), 'timelines without a task row').toEqual([]);
  // Only this run's tasks, by name (tasks whose name was never stored count too: see the caller).
  for (const [uuid, task] of tasks) if (task.name !== null && !task.name.startsWith(prefix)) tasks.delete(uuid);
  return tasks;
}

/** Sum of event_counters per type, for task names starting with `prefix`, and for the unnamed ('') series. */
async function countedByType(
  database: OpenDatabase,
  prefix: string,
): Promise<{ named: Record<string, number>; unnamed: Record<string, number> }> {
  const named: Record<string, number> = {};
  const unnamed: Record<string, number> = {};
  for (const row of await taskCountersByNameAndType(database)) {
    if (row.task_name.startsWith(prefix)) named[row.type] = (named[row.type] ?? 0) + row.count;
    else if (row.task_name === '') unnamed[row.type] = (unnamed[row.type] ?? 0) + row.count;
  }
  return { named, unnamed };
}

/** Sum of event_counters of task names starting with `prefix`, per queue label. */
async function countedByQueue(database: OpenDatabase, prefix: string): Promise<Record<string, number>> {
  const rows = await database.db
    .selectFrom('event_counters')
    .select('queue')
    .select((eb) => eb.fn.sum<number>('count').as('n'))
    .where('task_name', 'like', `${prefix}%`)
    .groupBy('queue')
    .execute();
  return Object.fromEntries(rows.map((row) => [row.queue, Number(row.n)]));
}

interface Status {
  updated_at: number;
  events_total: number;
  broker_connected: number;
  dropped: Record<string, number>;
}

async function collectorStatus(database: OpenDatabase): Promise<Status | undefined> {
  const row = await database.db
    .selectFrom('collector_status')
    .select(['updated_at', 'events_total', 'broker_connected', 'dropped'])
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    updated_at: Number(row.updated_at),
    events_total: Number(row.events_total),
    broker_connected: Number(row.broker_connected),
    dropped: JSON.parse(row.dropped ?? '{}') as Record<string, number>,
  };
}

/** The state and time the timeline's events say the task is in: its winning event (the merge's state key). */
function winner(timeline: StoredTask['timeline']): { state: string; timestamp: number } {
  let best: { key: string; state: string; timestamp: number } | undefined;
  for (const event of timeline) {
    const state = stateForEvent(event.type);
    const key = stateKey(state, event.timestamp);
    if (!best || key > best.key) best = { key, state, timestamp: event.timestamp };
  }
  return best ?? { state: '', timestamp: Number.NaN };
}

/** Tasks whose row does not agree with its own timeline (described), at most `max` of them. */
function inconsistent(tasks: Iterable<StoredTask>, max = 5): string[] {
  const problems: string[] = [];
  for (const task of tasks) {
    const types = task.timeline.map((e) => e.type);
    const clocks = new Set(task.timeline.map((e) => e.clock));
    const expected = winner(task.timeline);
    const named = types.includes('task-sent') || types.includes('task-received');
    const wrong: string[] = [];
    if (task.timeline.length === 0) wrong.push('no timeline');
    if (clocks.size !== task.timeline.length) wrong.push('an event twice in its timeline');
    if (task.timeline.length > 4) wrong.push('more than four events');
    if (task.state !== expected.state || task.timestamp !== expected.timestamp)
      wrong.push(`state ${task.state}@${task.timestamp}, timeline says ${expected.state}@${expected.timestamp}`);
    if (named !== (task.name !== null)) wrong.push(`name ${task.name} with events ${types.join(',')}`);
    if (task.state === 'SUCCESS' && (task.result === null || task.runtime === null)) wrong.push('SUCCESS without result or runtime');
    if (task.state === 'FAILURE' && task.exception === null) wrong.push('FAILURE without exception');
    if (task.state !== 'SUCCESS' && task.result !== null) wrong.push(`result in state ${task.state}`);
    if (wrong.length > 0 && problems.length < max) problems.push(`${task.uuid}: ${wrong.join('; ')} (timeline ${types.join(',')})`);
  }
  return problems;
}

describe.each([
  { mode: 'spool', args: [] },
  { mode: 'shed', args: ['--max-spool-mb', '0'] },
] as const)('a collector on Redis past its buffer while the database is locked ($mode)', ({ mode, args }) => {
  let target: TestDatabase;
  let database: OpenDatabase;
  let collector: ManagedProcess;
  let lock: Sqlite.Database | undefined;
  let bundle: CollectorBundle | undefined;
  const prefix = `overload.${run}.${mode}.`;

  /** What the overload left, measured once (beforeAll) and asserted on by each test. */
  let stream: EventStream;
  let caughtUp: Status;
  let ours: StoredTask[];
  let strangers: string[];
  let named: Record<string, number>;
  let unnamed: Record<string, number>;
  let byQueue: Record<string, number>;
  let timelineEvents: number;
  let overload: number;
  /** Messages (one event each) the reader thread shed unread: they never reached the main thread. */
  let readerShed: number;

  beforeAll(async () => {
    try {
      await overloadScenario();
    } catch (error) {
      // A failing hook reports no test: show what the collector said.
      const output = collector
        ?.output()
        .split('\n')
        .filter((line) => !line.includes(' DEBUG '))
        .slice(-40)
        .join('\n');
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\n--- collector output (without debug lines) ---\n${output ?? ''}`,
      );
    }
  }, 150_000);

  async function overloadScenario(): Promise<void> {
    target = await createTestDatabase('sqlite');
    bundle = await buildCollectorBundle();
    collector = startBundledCollector('collector', bundle, [
      '--broker',
      BROKER,
      '--db',
      target.url,
      '--no-enable-events',
      '--queue-poll-interval',
      '0',
      '--max-task-age',
      '0',
      '--max-buffer-mb',
      String(BUFFER_MB),
      '--lease',
      'off',
      '--log-level',
      'debug',
      ...args,
    ]);
    await collector.waitForOutput(/subscribed to \/3\.celeryev\/\*/, 30_000);
    // Migrated by the collector; this connection only reads.
    database = await openTestConnection(target.url);

    // The write lock, as another process's long transaction would hold it.
    lock = new Sqlite(target.url);
    lock.pragma('busy_timeout = 10000');
    lock.exec('BEGIN IMMEDIATE');
    const lockedAt = Date.now();
    stream = new EventStream(await RespPublisher.open(BROKER, 4 * 1024 * 1024), (n) => `${prefix}t${n % 4}`, OVERLOAD_TASKS, OVERLOAD_RATE);
    await stream.finished();
    const publishMs = Date.now() - lockedAt;
    // Held on purpose: the collector goes on retrying (5 s busy timeout each try) while nothing can be written.
    await new Promise((resolve) => setTimeout(resolve, Math.max(LOCK_MS - publishMs, LOCK_AFTER_PUBLISHING_MS)));
    const collectorExit = collector.exitInfo();
    lock.exec('COMMIT');
    const releasedAt = Date.now();
    if (collectorExit) throw new Error(`the collector exited during the overload (${JSON.stringify(collectorExit)})`);

    // Publishing ended seconds before the release, and decoding never waits for the database: what
    // reached the collector's main thread (folded or shed) is all in the first status row written after
    // the release, in the same transaction as the counters of the flush that holds the last of it.
    const published = stream.events;
    let last: { status: Status | undefined; counted: number } = { status: undefined, counted: 0 };
    caughtUp = await waitFor(
      async () => {
        const status = await collectorStatus(database);
        const counts = await countedByType(database, prefix);
        const counted = [...Object.values(counts.named), ...Object.values(counts.unnamed)].reduce((a, b) => a + b, 0);
        last = { status, counted };
        // With a spool, the collector is still taking events in for a while after the release.
        const whole = mode === 'shed' || status?.events_total === published;
        return status && status.updated_at * 1000 > releasedAt && counted === status.events_total && whole ? status : undefined;
      },
      45_000,
      `the collector to write what it kept`,
      500,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last status ${JSON.stringify(last.status)}, counted ${last.counted}`);
    });
    const caughtUpMs = Date.now() - releasedAt;

    const tasks = await storedTasks(database, prefix);
    ours = [...tasks.values()].filter((t) => stream.uuids.has(t.uuid));
    strangers = [...tasks.keys()].filter((uuid) => !stream.uuids.has(uuid));
    ({ named, unnamed } = await countedByType(database, prefix));
    byQueue = await countedByQueue(database, prefix);
    timelineEvents = ours.reduce((n, t) => n + t.timeline.length, 0);
    overload = caughtUp.dropped.overload ?? 0;
    readerShed = published - caughtUp.events_total;
    console.log(
      `overload: published ${stream.tasks} tasks / ${published} events in ${publishMs} ms (lock held ${releasedAt - lockedAt} ms, budget ${BUFFER_MB} MiB); ` +
        `stored ${ours.length} tasks (${ours.filter((t) => t.timeline.length === 4).length} whole) with ${timelineEvents} timeline events; ` +
        `shed ${overload} events (dropped as overload; ${readerShed} of them messages unread by the reader thread); ` +
        `counted by name ${JSON.stringify(named)}, under no name ${JSON.stringify(unnamed)}, by queue ${JSON.stringify(byQueue)}; ` +
        `written ${caughtUpMs} ms after the release (status every 5 s); dropped ${JSON.stringify(caughtUp.dropped)}`,
    );
  }

  afterAll(async () => {
    if (lock?.inTransaction) lock.exec('ROLLBACK');
    lock?.close();
    await stopAllProcesses();
    await database?.close();
    await target?.drop();
    bundle?.remove();
  });

  it('keeps its broker connection and keeps running', () => {
    expect(collector.output()).toMatch(/database unavailable: database is locked/);
    expect(collector.output()).not.toMatch(/lost connection to/);
    expect(collector.output()).not.toMatch(/redis reader thread exited|store thread exited/);
    expect(collector.exitInfo()).toBeNull();
    expect(caughtUp.broker_connected).toBe(1);
  });

  const outcome =
    mode === 'spool'
      ? 'spools past the budget instead of shedding: every task stored whole, nothing dropped'
      : 'sheds past the budget on the main thread (the reader hands every message over): fewer tasks stored than published, every event stored or dropped as overload';
  it(outcome, () => {
    expect(strangers.slice(0, 5), 'tasks nobody published').toEqual([]);
    // 20,000 messages/s decode well within the reader's backlog bound (a third of the budget, at least 4 MiB).
    expect(readerShed, 'messages shed unread by the reader thread').toBe(0);
    if (mode === 'spool') {
      expect(collector.output()).toMatch(/spooling events to disk/);
      expect(caughtUp.dropped).toEqual({});
      expect(ours.length).toBe(stream.tasks);
      expect(ours.filter((task) => task.timeline.length !== 4).slice(0, 5), 'tasks without their four events').toEqual([]);
      expect(timelineEvents).toBe(stream.events);
    } else {
      expect(overload).toBeGreaterThan(0);
      expect(ours.length).toBeGreaterThan(0);
      expect(ours.length).toBeLessThan(stream.tasks);
      // Each event is in a timeline, or was shed and counted as such.
      expect(timelineEvents + overload).toBe(stream.events);
    }
  });

  it('counts every event that reached it exactly once, per type, shed or kept', () => {
    const expected = Object.fromEntries(TYPES.map((type) => [type, stream.published.get(type) ?? 0]));
    const counted = Object.fromEntries(TYPES.map((type) => [type, (named[type] ?? 0) + (unnamed[type] ?? 0)]));
    expect(
      Object.values(counted).reduce((a, b) => a + b, 0),
      'counted events (all types)',
    ).toBe(caughtUp.events_total);
    if (readerShed === 0) {
      expect(counted).toEqual(expected);
    } else {
      // Messages shed unread have no known type: per type, the counts can only fall short of what was published.
      for (const type of TYPES) expect(counted[type], type).toBeLessThanOrEqual(expected[type]!);
    }
  });

  it("counts every event under its task's name and queue", () => {
    expect(unnamed, 'events counted under no task name').toEqual({});
    // Every task of this run was sent to the 'celery' queue.
    expect(byQueue, 'events of this run counted per queue label').toEqual({ celery: caughtUp.events_total });
  });

  it('stores only tasks whose row agrees with their timeline', () => {
    expect(inconsistent(ours)).toEqual([]);
  });

  it('stores a later stream whole once the database is back, and sheds nothing more', async () => {
    const afterPrefix = `${prefix}after.`;
    const after = new EventStream(await RespPublisher.open(BROKER), () => `${afterPrefix}t`, AFTER_TASKS, AFTER_RATE);
    await after.finished();
    const afterTasks = await waitFor(
      async () => {
        const stored = await storedTasks(database, afterPrefix);
        const whole = [...after.uuids].filter(
          (uuid) => stored.get(uuid)?.timeline.length === 4 && ['SUCCESS', 'FAILURE'].includes(stored.get(uuid)!.state),
        );
        return whole.length === AFTER_TASKS ? stored : undefined;
      },
      30_000,
      `all ${AFTER_TASKS} tasks published after the release stored whole`,
    );
    expect([...afterTasks.keys()].filter((uuid) => !after.uuids.has(uuid))).toEqual([]);
    expect(inconsistent(afterTasks.values())).toEqual([]);
    const afterExpected = Object.fromEntries(TYPES.map((type) => [type, after.published.get(type) ?? 0]).filter(([, n]) => n !== 0));
    const afterCounted = await waitFor(
      async () => {
        const { named: counted } = await countedByType(database, afterPrefix);
        return TYPES.every((type) => (counted[type] ?? 0) === (afterExpected[type] ?? 0)) ? counted : undefined;
      },
      10_000,
      'the after stream counted exactly',
    );
    expect(afterCounted).toEqual(afterExpected);
    expect(await countedByQueue(database, afterPrefix)).toEqual({ celery: after.events });
    const finalStatus = await waitFor(
      async () => {
        const status = await collectorStatus(database);
        return status && status.events_total === stream.events + after.events ? status : undefined;
      },
      15_000,
      'the status row to count the after stream',
    );
    expect(finalStatus.dropped.overload ?? 0).toBe(overload);
    console.log(`after the release: ${AFTER_TASKS} tasks / ${after.events} events published at ${AFTER_RATE} tasks/s, all stored whole`);
  }, 60_000);
});
