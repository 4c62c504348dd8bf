// Two real collectors (worker-collector/main.ts, child processes) with one
// lease on one database, fed Celery task events in the Redis wire format at
// a steady rate from this process. Both receive every event (Redis pub/sub);
// one writes, the other stands by. The active one is killed (SIGKILL), or
// frozen (SIGSTOP) past its lease and then woken: the standby must take over
// once the lease it renewed last runs out (--lease-ttl, 8 s, plus its 1 s
// poll), store what is published after that, and nothing may be counted
// twice, by either. Events published in the gap before the takeover
// are lost (pub/sub keeps nothing): measured and printed, not asserted.

import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { createConnection } from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { CLIENT, envelope, RespPublisher, taskFinished, taskReceived, taskSent, taskStarted, WORKER } from '../../bench/celery-wire';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { createTestDatabase, openTestConnection, type TestDatabase } from '../support/databases';
import { type ManagedProcess, printLogsOnFailure, spawnManaged, stopAllProcesses } from '../support/processes';
import { REPO_ROOT, waitFor } from '../support/stalk';
import { taskCountersByNameAndType } from '../support/counters';
import { LATE_MS } from '../support/timing';

/** This file's own Redis database: nobody else publishes events on it. */
const REDIS_DB = 5;
const BROKER = `redis://127.0.0.1:6379/${REDIS_DB}`;
const TASKS_PER_SECOND = 500;
const TICK_MS = 20;
/** The standby's poll for the lease (worker-collector/lease.ts). */
const LEASE_POLL_MS = 1_000;

printLogsOnFailure();

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  await stopAllProcesses();
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

function startCollector(name: string, db: string, lease: string): ManagedProcess {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env))
    if (key.startsWith('STALK_') || key.startsWith('FLOWER_') || key.startsWith('UPSTASH_') || key === 'CELERY_BROKER_URL') delete env[key];
  return spawnManaged(
    name,
    process.execPath,
    [
      '--import',
      'tsx',
      'worker-collector/main.ts',
      '--broker',
      BROKER,
      '--db',
      db,
      '--no-enable-events',
      '--queue-poll-interval',
      '0',
      '--lease-name',
      lease,
    ],
    { cwd: REPO_ROOT, env },
  );
}

interface PublishedTask {
  uuid: string;
  name: string;
  /** When its task-sent, and when its other three events, were published (ms). */
  sentAt: number;
  restAt: number;
}

/** Task events at a steady rate: each tick sends the due tasks' task-sent and the previous tick's tasks' other three events. */
class EventStream {
  readonly tasks: PublishedTask[] = [];
  /** `name \0 type` -> events published. */
  readonly published = new Map<string, number>();
  private running = true;
  private readonly loop: Promise<void>;
  private stopping: Promise<void> | undefined;

  private constructor(private readonly publisher: RespPublisher) {
    this.loop = this.run();
  }

  static async start(): Promise<EventStream> {
    return new EventStream(await RespPublisher.open(BROKER));
  }

  get eventCount(): number {
    let n = 0;
    for (const count of this.published.values()) n += count;
    return n;
  }

  private publish(key: string, body: string, hostname: string, name: string, type: string): boolean {
    this.published.set(`${name}\0${type}`, (this.published.get(`${name}\0${type}`) ?? 0) + 1);
    return this.publisher.publish(`/${REDIS_DB}.celeryev/${key}`, envelope(body, key, hostname));
  }

  private async run(): Promise<void> {
    const started = performance.now();
    let next = 0;
    let inFlight: { task: PublishedTask; n: number }[] = [];
    while (this.running || inFlight.length > 0) {
      const tickStart = performance.now();
      const due = this.running ? Math.floor(((tickStart - started) / 1000) * TASKS_PER_SECOND) : next;
      let ok = true;
      const now = Date.now();
      for (const { task, n } of inFlight) {
        ok = this.publish('task.received', taskReceived(task.uuid, n), WORKER, task.name, 'task-received') && ok;
        ok = this.publish('task.started', taskStarted(task.uuid), WORKER, task.name, 'task-started') && ok;
        const finished = n % 10 === 0 ? 'task-failed' : 'task-succeeded';
        ok = this.publish(finished.replace('-', '.'), taskFinished(task.uuid, n), WORKER, task.name, finished) && ok;
        task.restAt = now;
      }
      const starting: { task: PublishedTask; n: number }[] = [];
      for (; next < due; next++) {
        const task: PublishedTask = { uuid: randomUUID(), name: `bench.task_${next % 20}`, sentAt: now, restAt: Number.NaN };
        ok = this.publish('task.sent', taskSent(task.uuid, next), CLIENT, task.name, 'task-sent') && ok;
        this.tasks.push(task);
        starting.push({ task, n: next });
      }
      inFlight = starting;
      if (!ok) await this.publisher.drain();
      const spent = performance.now() - tickStart;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, TICK_MS - spent)));
    }
  }

  /** Stop starting tasks; finish the ones started; resolve when Redis has taken every message. */
  stop(): Promise<void> {
    this.running = false;
    this.stopping ??= (async () => {
      await this.loop;
      await this.publisher.settled();
      this.publisher.close();
    })();
    return this.stopping;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Stored {
  /** Task id -> its stored events' clocks, over all its timeline rows. */
  timelines: Map<string, number[]>;
  timelineEvents: number;
  /** Sum of the task-* counters. */
  counted: number;
  /** `name \0 type` -> counter. */
  counters: Map<string, number>;
  /** Task name ('' unknown) -> events in the timelines of its tasks, by JSON length. */
  timelineByName: Map<string, number>;
  countedByName: Map<string, number>;
  states: Map<string, string>;
}

async function readStored(database: OpenDatabase): Promise<Stored> {
  const db = database.db;
  const timelines = new Map<string, number[]>();
  let timelineEvents = 0;
  for (const row of await db.selectFrom('task_events').select(['task_id', 'events']).execute()) {
    const clocks = (JSON.parse(row.events) as { clock: number }[]).map((e) => e.clock);
    timelineEvents += clocks.length;
    timelines.set(row.task_id, (timelines.get(row.task_id) ?? []).concat(clocks));
  }
  const counters = new Map<string, number>();
  const countedByName = new Map<string, number>();
  let counted = 0;
  for (const row of await taskCountersByNameAndType(database)) {
    const n = row.count;
    counted += n;
    counters.set(`${row.task_name}\0${row.type}`, n);
    countedByName.set(row.task_name, (countedByName.get(row.task_name) ?? 0) + n);
  }
  // As bench/ingest.ts counts: each timeline row is a JSON array of one flush's events of one task.
  const length = database.dialect === 'mysql' ? sql`JSON_LENGTH(e.events)` : sql`json_array_length(e.events)`;
  const byName = await db
    .selectFrom('task_events as e')
    .leftJoin('tasks as t', 't.uuid', 'e.task_id')
    .select(sql<string>`coalesce(t.name, '')`.as('name'))
    .select(sql<number>`sum(${length})`.as('n'))
    .groupBy(sql`coalesce(t.name, '')`)
    .execute();
  const timelineByName = new Map(byName.map((r) => [r.name, Number(r.n)] as const));
  const states = new Map((await db.selectFrom('tasks').select(['uuid', 'state']).execute()).map((r) => [r.uuid, r.state] as const));
  return { timelines, timelineEvents, counted, counters, timelineByName, countedByName, states };
}

/** How many of `tasks` are stored whole (four events, a final state). */
async function storedWhole(database: OpenDatabase, tasks: PublishedTask[]): Promise<number> {
  let whole = 0;
  for (let i = 0; i < tasks.length; i += 500) {
    const uuids = tasks.slice(i, i + 500).map((t) => t.uuid);
    const rows = await database.db
      .selectFrom('tasks')
      .select('uuid')
      .where('uuid', 'in', uuids)
      .where('state', 'in', ['SUCCESS', 'FAILURE'])
      .execute();
    const events = await database.db.selectFrom('task_events').select(['task_id', 'events']).where('task_id', 'in', uuids).execute();
    const count = new Map<string, number>();
    for (const row of events) count.set(row.task_id, (count.get(row.task_id) ?? 0) + (JSON.parse(row.events) as unknown[]).length);
    whole += rows.filter((r) => count.get(r.uuid) === 4).length;
  }
  return whole;
}

/** Wait until some of the stream's tasks, finished `ms` ago or more, are stored whole: the active collector writes. */
async function storingFor(database: OpenDatabase, stream: EventStream, ms: number): Promise<void> {
  await waitFor(
    async () => {
      const old = stream.tasks.filter((t) => t.restAt < Date.now() - ms);
      return old.length > 0 && (await storedWhole(database, old.slice(-50))) > 0;
    },
    30_000,
    `tasks finished ${ms} ms ago stored`,
  );
}

/** Tasks sent after `since` whose four events are all published. */
function publishedSince(stream: EventStream, since: number): PublishedTask[] {
  return stream.tasks.filter((t) => t.sentAt > since && t.restAt > 0);
}

/** While the stream runs: wait until `atLeast` tasks sent after `since` are stored whole. */
async function storedSince(database: OpenDatabase, stream: EventStream, since: number, atLeast: number): Promise<void> {
  await waitFor(
    async () => (await storedWhole(database, publishedSince(stream, since))) >= atLeast,
    30_000,
    `${atLeast} tasks sent after the takeover stored whole`,
  );
}

/** Once the stream stopped: wait until every task sent after `since` is stored whole (what the test then asserts, with the rest). */
async function allStoredSince(database: OpenDatabase, stream: EventStream, since: number): Promise<void> {
  const tasks = publishedSince(stream, since);
  await waitFor(
    async () => (await storedWhole(database, tasks)) === tasks.length,
    30_000,
    `all ${tasks.length} tasks sent after the takeover stored whole`,
  );
}

/**
 * Every task that finished before `before` is stored whole. Waited for (not
 * assumed after a fixed delay) before the active collector is killed or
 * frozen: on a loaded machine its writes may lag by more than a second or two.
 */
async function finishedStored(database: OpenDatabase, stream: EventStream, before: number): Promise<PublishedTask[]> {
  const tasks = stream.tasks.filter((t) => t.restAt < before);
  await waitFor(
    async () => (await storedWhole(database, tasks)) === tasks.length,
    30_000,
    `all ${tasks.length} tasks finished before the kill or freeze stored whole`,
  );
  return tasks;
}

/** When the lease row says the lease runs out (epoch ms): once the active collector can renew no more, when the standby may take over. */
async function leaseRunsOut(database: OpenDatabase, lease: string): Promise<number> {
  const row = await database.db.selectFrom('collector_leases').select('expires_at').where('name', '=', lease).executeTakeFirstOrThrow();
  return Number(row.expires_at) * 1000;
}

/** The takeover came once the lease ran out, never before, and within a poll of it (with slack for a loaded machine). */
function expectTakeoverInTime(takeoverAt: number, runsOut: number): void {
  expect(takeoverAt, 'takeover after the lease ran out (ms)').toBeGreaterThanOrEqual(runsOut);
  expect(takeoverAt - runsOut, 'takeover after the lease ran out (ms)').toBeLessThan(LEASE_POLL_MS + LATE_MS);
}

/** Nothing counted twice, by either collector; every counter within what was published. */
function expectCountedOnce(stored: Stored, stream: EventStream): void {
  // One timeline entry per event: a second writer would have added the same event (same clock) again.
  const doubled = [...stored.timelines].filter(([, clocks]) => new Set(clocks).size !== clocks.length);
  expect(doubled.slice(0, 5), `${doubled.length} tasks with an event stored twice`).toEqual([]);
  for (const clocks of stored.timelines.values()) expect(clocks.length).toBeLessThanOrEqual(4);
  // Every counted event is in a timeline exactly once, name by name.
  expect(stored.counted).toBe(stored.timelineEvents);
  expect(Object.fromEntries(stored.countedByName)).toEqual(Object.fromEntries(stored.timelineByName));
  for (const [key, n] of stored.counters) {
    const [name, type] = key.split('\0');
    if (name === '') continue;
    expect(n, `${name} ${type}`).toBeLessThanOrEqual(stream.published.get(key) ?? 0);
  }
  expect(stored.timelineEvents).toBeLessThanOrEqual(stream.eventCount);
}

function expectComplete(stored: Stored, tasks: PublishedTask[], what: string): void {
  expect(tasks.length, `${what}: some tasks`).toBeGreaterThan(0);
  const incomplete = tasks.filter(
    (t) => stored.timelines.get(t.uuid)?.length !== 4 || !['SUCCESS', 'FAILURE'].includes(stored.states.get(t.uuid) ?? ''),
  );
  expect(incomplete.length, `${what}: ${incomplete.length} of ${tasks.length} tasks not stored whole, e.g. ${incomplete[0]?.uuid}`).toBe(0);
}

function report(label: string, stored: Stored, stream: EventStream, takeoverMs: number): void {
  const lost = stream.eventCount - stored.timelineEvents;
  console.log(
    `${label}: published ${stream.eventCount} events (${stream.tasks.length} tasks), stored ${stored.timelineEvents}, lost ${lost} ` +
      `(${((lost / stream.eventCount) * 100).toFixed(2)} %, about ${(lost / (TASKS_PER_SECOND * 4)).toFixed(1)} s of the stream); takeover seen ${takeoverMs} ms after the failure`,
  );
}

/** Start two collectors on one lease: the first holds it, the second stands by. */
async function activeAndStandby(db: string): Promise<{ active: ManagedProcess; standby: ManagedProcess; lease: string }> {
  const lease = `ha-${randomUUID().slice(0, 8)}`;
  const active = startCollector('collector A', db, lease);
  await active.waitForOutput(new RegExp(`acquired lease ${lease} as \\S+/${active.pid}/`), 30_000);
  await active.waitForOutput(/subscribed to/, 30_000);
  const standby = startCollector('collector B', db, lease);
  await standby.waitForOutput(new RegExp(`standby: lease ${lease} held by \\S+/${active.pid}/\\S+ until `), 30_000);
  await standby.waitForOutput(/subscribed to/, 30_000);
  return { active, standby, lease };
}

async function holderOf(database: OpenDatabase, lease: string): Promise<string | undefined> {
  return (await database.db.selectFrom('collector_leases').select('holder').where('name', '=', lease).executeTakeFirst())?.holder;
}

async function openTarget(kind: 'sqlite' | 'mariadb'): Promise<{ target: TestDatabase; database: OpenDatabase }> {
  const target = await createTestDatabase(kind);
  // Migrated by the first collector; the test reads through its own connection.
  const database = await openTestConnection(target.url);
  cleanups.push(async () => {
    await database.close();
    await target.drop();
  });
  return { target, database };
}

describe.each(['mariadb', 'sqlite'] as const)('two collectors on one lease, %s', (kind) => {
  it('the standby takes over once the lease runs out after a SIGKILL, stores what follows, and nothing is counted twice', async () => {
    const { target, database } = await openTarget(kind);
    const { active, standby, lease } = await activeAndStandby(target.url);
    const stream = await EventStream.start();
    try {
      await storingFor(database, stream, 2_500);
      const settled = await finishedStored(database, stream, Date.now() - 1_000);
      const killedAt = Date.now();
      active.signal('SIGKILL');
      await active.exited;
      const runsOut = await leaseRunsOut(database, lease);
      const match = await standby.waitForOutput(new RegExp(`took over lease ${lease} from (\\S+) as (\\S+)`), 30_000);
      const takeoverAt = Date.now();
      expectTakeoverInTime(takeoverAt, runsOut);
      expect(match[1]).toContain(`/${active.pid}/`);
      expect(match[2]).toContain(`/${standby.pid}/`);
      expect(await holderOf(database, lease)).toBe(match[2]);
      await storedSince(database, stream, takeoverAt, TASKS_PER_SECOND);
      await stream.stop();
      await allStoredSince(database, stream, takeoverAt);

      const stored = await readStored(database);
      report(`SIGKILL, ${kind}`, stored, stream, takeoverAt - killedAt);
      expectCountedOnce(stored, stream);
      // Written by the first before it died (and kept), and by the second after it took over.
      expectComplete(stored, settled, 'tasks stored whole before the kill');
      expectComplete(
        stored,
        stream.tasks.filter((t) => t.sentAt > takeoverAt),
        'tasks sent after the takeover',
      );
    } finally {
      await stream.stop();
    }
  }, 60_000);
});

/** Whether another session can lock the lease row now (MariaDB): not while a flush transaction holds it. */
async function leaseRowFree(url: string, lease: string): Promise<boolean> {
  const conn = await createConnection({ uri: url, charset: 'utf8mb4' });
  try {
    await conn.query('SET SESSION innodb_lock_wait_timeout = 1');
    await conn.beginTransaction();
    await conn.query('SELECT holder FROM collector_leases WHERE name = ? FOR UPDATE', [lease]);
    await conn.rollback();
    return true;
  } catch {
    return false;
  } finally {
    await conn.end();
  }
}

describe('two collectors on one lease, mariadb, the active one frozen', () => {
  it('a collector frozen past its lease (SIGSTOP) and woken writes nothing of what it held: the fence refuses it, and it stands by', async () => {
    const { target, database } = await openTarget('mariadb');
    const { active, standby, lease } = await activeAndStandby(target.url);
    const stream = await EventStream.start();
    try {
      await storingFor(database, stream, 2_500);
      const settled = await finishedStored(database, stream, Date.now() - 1_000);
      // Frozen between flushes: frozen inside one, it would hold the lease row's lock, and the
      // takeover would (rightly) wait for that transaction to end.
      await waitFor(
        async () => {
          active.signal('SIGSTOP');
          if (await leaseRowFree(target.url, lease)) return true;
          active.signal('SIGCONT');
          await sleep(100);
          return false;
        },
        15_000,
        'the active collector frozen outside a flush',
        0,
      );
      const frozenAt = Date.now();
      const runsOut = await leaseRunsOut(database, lease);
      const match = await standby.waitForOutput(new RegExp(`took over lease ${lease} from (\\S+) as (\\S+)`), 30_000);
      const takeoverAt = Date.now();
      expectTakeoverInTime(takeoverAt, runsOut);
      expect(match[1]).toContain(`/${active.pid}/`);
      // The new holder writes before the old one wakes.
      await storedSince(database, stream, takeoverAt, 1);
      // Woken, it still holds what it read before and during the freeze, and thinks it is active.
      active.signal('SIGCONT');
      await active.waitForOutput(new RegExp(`lost lease ${lease}`), 10_000);
      await storedSince(database, stream, takeoverAt, TASKS_PER_SECOND);
      await stream.stop();
      await allStoredSince(database, stream, takeoverAt);

      expect(await holderOf(database, lease)).toBe(match[2]);
      // It stood by: B's lease was valid all along after the takeover.
      expect(active.output()).not.toMatch(/took over lease/);
      const stored = await readStored(database);
      report('SIGSTOP, mariadb', stored, stream, takeoverAt - frozenAt);
      expectCountedOnce(stored, stream);
      expectComplete(
        stored,
        stream.tasks.filter((t) => t.sentAt > takeoverAt),
        'tasks sent after the takeover',
      );
      // What it wrote before the freeze stays (the fence refuses only what it held).
      expectComplete(stored, settled, 'tasks stored whole before the freeze');
    } finally {
      active.signal('SIGCONT');
      await stream.stop();
    }
  }, 60_000);
});
