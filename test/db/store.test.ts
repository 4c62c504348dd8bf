// The store against real SQLite and MariaDB: the SQL merge must agree with
// the in-memory fold, writes are atomic, bad rows are isolated, retention prunes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/shared/celery-events';
import type { NewTaskRow } from '../../src/shared/schema';
import { EventBatch } from '../../worker-collector/fold/batch';
import { foldTaskEvent } from '../support/fold';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { pruneOnce } from '../../worker-collector/store/retention';
import { buildFlushPayload } from '../../worker-collector/store/payload';
import { StoreWriter } from '../../worker-collector/store/writer';
import { BulkWrite, newerAssignments } from '../../worker-collector/store/upsert';
import { taskTimeline } from '../../src/queries/tasks';
import { createLogger } from '../../src/shared/log';
import { retryingTask, seededRandom, shuffled, succeedingTask, workerEvent, revoked, received, started, failed } from '../fixtures/events';
import { DIALECTS, openTestDatabase } from '../support/databases';

const quiet = createLogger('test', 'error');

function batchOf(events: TaskEvent[], workers = new Map<string, WorkerState>()): EventBatch {
  const batch = new EventBatch();
  for (const event of events) batch.add(event, workers);
  return batch;
}

/** What the collector would hand the store for this batch (no names cached from earlier flushes). */
function payloadOf(batch: EventBatch, workers = new Map<string, WorkerState>()) {
  return buildFlushPayload(batch, () => undefined, workers, null).payload;
}

function expectedRow(events: TaskEvent[]): NewTaskRow {
  let row: NewTaskRow | undefined;
  for (const e of events) row = foldTaskEvent(row, e);
  return row!;
}

describe.each(DIALECTS)('store on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('merges in SQL exactly as the fold merges in memory, across any flush split', async () => {
    const random = seededRandom(dialect.length);
    const lifecycles: TaskEvent[][] = [];
    for (let i = 0; i < 40; i++) {
      const story = { uuid: `merge-${i}`, name: `tasks.t${i % 3}` };
      const kind = i % 4;
      if (kind === 0) lifecycles.push(succeedingTask(story, 1000 + i));
      else if (kind === 1) lifecycles.push(retryingTask(story, 1000 + i));
      else if (kind === 2) lifecycles.push([received(story, 1000 + i), started(story, 1001 + i), revoked(story, 1002 + i, true)]);
      else lifecycles.push([received(story, 1000 + i), started(story, 1001 + i), failed(story, 1002 + i)]);
    }
    // Shuffle every event, duplicate some, and cut the stream into flushes.
    const stream = shuffled(
      lifecycles.flat().flatMap((e) => (random() < 0.2 ? [e, e] : [e])),
      random,
    );
    const writer = new StoreWriter(database, quiet);
    let batch = new EventBatch();
    const workers = new Map<string, WorkerState>();
    for (const event of stream) {
      batch.add(event, workers);
      if (random() < 0.15) {
        await writer.write(payloadOf(batch, workers));
        batch = new EventBatch();
      }
    }
    await writer.write(payloadOf(batch, workers));

    const stored = await database.db.selectFrom('tasks').selectAll().where('uuid', 'like', 'merge-%').execute();
    expect(stored).toHaveLength(lifecycles.length);
    for (const events of lifecycles) {
      const { id: _id, ...row } = stored.find((r) => r.uuid === events[0]!.uuid)!;
      // retried_from is not the events' to set (a retry's link, written by the collector's retry).
      expect(row).toEqual({ ...expectedRow(events), retried_from: null });
    }
  });

  it('stores the timeline, workers, counters and runtime histogram', async () => {
    const workers = new Map<string, WorkerState>();
    const events = [...succeedingTask({ uuid: 'tl-1', name: 'tasks.timeline' }, 5000)];
    const batch = batchOf(events, workers);
    batch.add(workerEvent('worker-online', 'w1@host', 5000.5), workers);
    await new StoreWriter(database, quiet).write(payloadOf(batch, workers));

    const timeline = await taskTimeline(database.db, 'tl-1');
    expect(timeline.map((e) => e.type)).toEqual(['task-sent', 'task-received', 'task-started', 'task-succeeded']);
    expect(timeline[3]).toMatchObject({ hostname: 'w1@host', timestamp: 5000.05, data: { runtime: 0.01 } });
    expect(timeline[1]?.data).toEqual({ retries: 0 });

    const worker = await database.db.selectFrom('workers').selectAll().where('hostname', '=', 'w1@host').executeTakeFirstOrThrow();
    expect(worker).toMatchObject({ status: 'online', sw_ident: 'py-celery', freq: 2 });

    const counters = await database.db
      .selectFrom('event_counters')
      .selectAll()
      .where('task_name', '=', 'tasks.timeline')
      .orderBy('type')
      .execute();
    expect(counters.map((c) => [c.hostname, c.type, Number(c.count), c.queue])).toEqual([
      ['w1@host', 'task-received', 1, 'celery'],
      ['client@app', 'task-sent', 1, 'celery'],
      ['w1@host', 'task-started', 1, 'celery'],
      ['w1@host', 'task-succeeded', 1, 'celery'],
    ]);
    const buckets = await database.db
      .selectFrom('histogram_buckets')
      .selectAll()
      .where('task_name', '=', 'tasks.timeline')
      .orderBy('metric')
      .execute();
    // Runtime 0.01 s lands in the 0.01 bucket; sent at 5000, started at 5000.02: 0.02 s queue wait, in the 0.025 bucket.
    expect(buckets.map((b) => [b.metric, b.le, Number(b.count)])).toEqual([
      ['queue_wait', '0.025', 1],
      ['runtime', '0.01', 1],
    ]);
  });

  it('names events of tasks whose first events were written in an earlier flush', async () => {
    const [s, r, st, done] = succeedingTask({ uuid: 'late-name', name: 'tasks.named.early' }, 6000);
    const writer = new StoreWriter(database, quiet);
    await writer.write(payloadOf(batchOf([s!, r!])));
    // No name cached: the store must look it up in the database.
    const later = payloadOf(batchOf([st!, done!]));
    expect(later.unresolved).toHaveLength(1);
    const result = await writer.write(later);
    // The name, queue and sent time come from the database; this task had no eta.
    expect(result.resolved).toEqual([['late-name', { name: 'tasks.named.early', queue: 'celery', sent: 6000, eta: null }]]);
    const counted = await database.db
      .selectFrom('event_counters')
      .select(['type'])
      .where('task_name', '=', 'tasks.named.early')
      .orderBy('type')
      .execute();
    expect(counted.map((c) => c.type)).toEqual(['task-received', 'task-sent', 'task-started', 'task-succeeded']);
  });

  it('keeps tasks when only the collector rows of a flush are refused, and writes those atomically', async () => {
    const payload = payloadOf(batchOf(succeedingTask({ uuid: 'atomic-1', name: 'tasks.atomic' }, 7000)));
    // A counter row with a NULL key column violates NOT NULL in both dialects.
    payload.counters.push({ hostname: null as unknown as string, task_name: 'x', queue: '', type: 'task-x', exception: '', count: 1 });
    const result = await new StoreWriter(database, quiet).write(payload);
    expect(result.rejectedRows).toBe(1);
    const found = await database.db.selectFrom('tasks').select('uuid').where('uuid', '=', 'atomic-1').execute();
    expect(found).toEqual([{ uuid: 'atomic-1' }]);
    // The good counters of the refused group went down with it: one transaction.
    const counters = await database.db.selectFrom('event_counters').select('type').where('task_name', '=', 'tasks.atomic').execute();
    expect(counters).toEqual([]);
  });

  it('drops only the rows the database refuses, and writes the rest', async () => {
    const batch = new EventBatch();
    for (let i = 0; i < 20; i++) for (const e of succeedingTask({ uuid: `iso-${i}` }, 8000 + i)) batch.add(e, new Map());
    const payload = payloadOf(batch);
    // One corrupt timeline row (NOT NULL column left empty) among 20 good ones.
    payload.timelines.splice(13, 0, ['iso-bad', null as unknown as string]);
    const result = await new StoreWriter(database, quiet).write(payload);
    expect(result.rejectedRows).toBe(1);
    const tasks = await database.db.selectFrom('tasks').select('uuid').where('uuid', 'like', 'iso-%').execute();
    expect(tasks).toHaveLength(20);
    const timelines = await database.db.selectFrom('task_events').select('task_id').where('task_id', 'like', 'iso-%').execute();
    expect(timelines).toHaveLength(20);
  });

  it('keeps the newer inspect reply when a slower, older one is written after it', async () => {
    const write = new BulkWrite(database.db, database.dialect, 'worker_inspect', ['hostname', 'replies', 'inspected_at'], {
      columns: ['hostname'],
      assignments: newerAssignments('inspected_at', ['replies', 'inspected_at']),
    });
    const stored = () =>
      database.db
        .selectFrom('worker_inspect')
        .select(['replies', 'inspected_at'])
        .where('hostname', '=', 'slow@host')
        .executeTakeFirstOrThrow();
    await write.run(database.db, [['slow@host', 'first', 100]]);
    await write.run(database.db, [['slow@host', 'newer', 200]]);
    expect(await stored()).toEqual({ replies: 'newer', inspected_at: 200 });
    await write.run(database.db, [['slow@host', 'older', 150]]);
    expect(await stored()).toEqual({ replies: 'newer', inspected_at: 200 });
    await write.run(database.db, [['slow@host', 'same time', 200]]);
    expect(await stored()).toEqual({ replies: 'same time', inspected_at: 200 });
  });

  it('prunes by count and by age, taking the task events along', async () => {
    const now = 1_900_000_000;
    const batch = new EventBatch();
    for (let i = 0; i < 30; i++)
      for (const e of succeedingTask({ uuid: `old-${String(i).padStart(2, '0')}` }, now - 1000 + i)) batch.add(e, new Map());
    await new StoreWriter(database, quiet).write(payloadOf(batch));
    const count = async () =>
      Number(
        (
          await database.db
            .selectFrom('tasks')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('uuid', 'like', 'old-%')
            .executeTakeFirstOrThrow()
        ).n,
      );

    const total = Number(
      (
        await database.db
          .selectFrom('tasks')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
    await pruneOnce(database.db, { maxTasks: total - 10, maxAgeSeconds: 0, intervalMs: 0 }, now);
    // The 10 oldest tasks overall are the oldest of this batch or older ones from earlier tests.
    const afterCount = Number(
      (
        await database.db
          .selectFrom('tasks')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
    expect(afterCount).toBe(total - 10);

    await pruneOnce(database.db, { maxTasks: 0, maxAgeSeconds: 1000 - 19.5, intervalMs: 0 }, now);
    expect(await count()).toBe(10);
    const orphans = await database.db
      .selectFrom('task_events')
      .select('task_id')
      .where('task_id', 'like', 'old-%')
      .where('task_id', '<', 'old-20')
      .execute();
    expect(orphans).toEqual([]);
  });
});
