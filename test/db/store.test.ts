// The store against real SQLite and MariaDB: the SQL merge must agree with
// the in-memory fold, writes are atomic, bad rows are isolated, retention prunes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/shared/celery-events';
import type { NewTaskRow } from '../../src/shared/schema';
import { EventBatch } from '../../worker-collector/fold/batch';
import { foldTaskEvent } from '../../worker-collector/fold/task';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { pruneOnce } from '../../worker-collector/store/retention';
import { buildFlushRows } from '../../worker-collector/store/rows';
import { StoreWriter, writeRows } from '../../worker-collector/store/writer';
import { createLogger } from '../../src/shared/log';
import { retryingTask, seededRandom, shuffled, succeedingTask, workerEvent, revoked, received, started, failed } from '../fixtures/events';
import { DIALECTS, openTestDatabase } from '../support/databases';

const quiet = createLogger('test', 'error');

function batchOf(events: TaskEvent[], workers = new Map<string, WorkerState>()): EventBatch {
  const batch = new EventBatch();
  for (const event of events) batch.add(event, workers);
  return batch;
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
    const stream = shuffled(lifecycles.flat().flatMap((e) => (random() < 0.2 ? [e, e] : [e])), random);
    const writer = new StoreWriter(database, quiet);
    let batch = new EventBatch();
    const workers = new Map<string, WorkerState>();
    for (const event of stream) {
      batch.add(event, workers);
      if (random() < 0.15) {
        await writer.write(batch, workers, undefined);
        batch = new EventBatch();
      }
    }
    await writer.write(batch, workers, undefined);

    const stored = await database.db.selectFrom('tasks').selectAll().where('uuid', 'like', 'merge-%').execute();
    expect(stored).toHaveLength(lifecycles.length);
    for (const events of lifecycles) {
      const { id: _id, ...row } = stored.find((r) => r.uuid === events[0]!.uuid)!;
      expect(row).toEqual(expectedRow(events));
    }
  });

  it('stores the timeline, workers, counters and runtime histogram', async () => {
    const workers = new Map<string, WorkerState>();
    const events = [...succeedingTask({ uuid: 'tl-1', name: 'tasks.timeline' }, 5000)];
    const batch = batchOf(events, workers);
    batch.add(workerEvent('worker-online', 'w1@host', 5000.5), workers);
    await new StoreWriter(database, quiet).write(batch, workers, undefined);

    const timeline = await database.db.selectFrom('task_events').selectAll().where('task_id', '=', 'tl-1').orderBy('timestamp').execute();
    expect(timeline.map((e) => e.type)).toEqual(['task-sent', 'task-received', 'task-started', 'task-succeeded']);
    expect(JSON.parse(timeline[3]!.data!)).toEqual({ runtime: 0.01 });

    const worker = await database.db.selectFrom('workers').selectAll().where('hostname', '=', 'w1@host').executeTakeFirstOrThrow();
    expect(worker).toMatchObject({ status: 'online', sw_ident: 'py-celery', freq: 2 });

    const counters = await database.db.selectFrom('event_counters').selectAll().where('task_name', '=', 'tasks.timeline').orderBy('type').execute();
    expect(counters.map((c) => [c.hostname, c.type, Number(c.count), c.queue])).toEqual([
      ['w1@host', 'task-received', 1, 'celery'],
      ['client@app', 'task-sent', 1, 'celery'],
      ['w1@host', 'task-started', 1, 'celery'],
      ['w1@host', 'task-succeeded', 1, 'celery'],
    ]);
    const bucket = await database.db.selectFrom('histogram_buckets').selectAll().where('task_name', '=', 'tasks.timeline').execute();
    expect(bucket.map((b) => [b.metric, b.le, Number(b.count)])).toEqual([['runtime', '0.01', 1]]);
  });

  it('names events of tasks whose first events were written in an earlier flush', async () => {
    const [s, r, st, done] = succeedingTask({ uuid: 'late-name', name: 'tasks.named.early' }, 6000);
    const writer = new StoreWriter(database, quiet);
    await writer.write(batchOf([s!, r!]), new Map(), undefined);
    // A fresh writer has no cache: the name must come from the database.
    await new StoreWriter(database, quiet).write(batchOf([st!, done!]), new Map(), undefined);
    const counted = await database.db
      .selectFrom('event_counters')
      .select(['type'])
      .where('task_name', '=', 'tasks.named.early')
      .orderBy('type')
      .execute();
    expect(counted.map((c) => c.type)).toEqual(['task-received', 'task-sent', 'task-started', 'task-succeeded']);
  });

  it('writes a flush atomically: a failing statement leaves nothing behind', async () => {
    const rows = buildFlushRows(batchOf(succeedingTask({ uuid: 'atomic-1' }, 7000)), new Map(), new Map(), undefined);
    // A counter row with a NULL key column violates NOT NULL in both dialects.
    rows.counters.push({ hostname: null as unknown as string, task_name: 'x', queue: '', type: 'task-x', exception: '', count: 1 });
    await expect(writeRows(database.db, database, rows)).rejects.toThrow();
    const found = await database.db.selectFrom('tasks').select('uuid').where('uuid', '=', 'atomic-1').execute();
    expect(found).toEqual([]);
  });

  it('drops only the rows the database refuses, and writes the rest', async () => {
    const batch = new EventBatch();
    for (let i = 0; i < 20; i++) for (const e of succeedingTask({ uuid: `iso-${i}` }, 8000 + i)) batch.add(e, new Map());
    // One corrupt timeline row (NOT NULL column left empty) among 80 good ones.
    batch.timeline.splice(37, 0, { task_id: 'iso-bad', type: 'task-started', timestamp: null as unknown as number, hostname: 'h', clock: 1, data: null });
    const result = await new StoreWriter(database, quiet).write(batch, new Map(), undefined);
    expect(result.rejectedRows).toBe(1);
    const tasks = await database.db.selectFrom('tasks').select('uuid').where('uuid', 'like', 'iso-%').execute();
    expect(tasks).toHaveLength(20);
    const events = await database.db.selectFrom('task_events').select('id').where('task_id', 'like', 'iso-%').execute();
    expect(events).toHaveLength(80);
  });

  it('prunes by count and by age, taking the task events along', async () => {
    const now = 1_900_000_000;
    const batch = new EventBatch();
    for (let i = 0; i < 30; i++) for (const e of succeedingTask({ uuid: `old-${String(i).padStart(2, '0')}` }, now - 1000 + i)) batch.add(e, new Map());
    await new StoreWriter(database, quiet).write(batch, new Map(), undefined);
    const count = async () =>
      Number((await database.db.selectFrom('tasks').select((eb) => eb.fn.countAll().as('n')).where('uuid', 'like', 'old-%').executeTakeFirstOrThrow()).n);

    const total = Number((await database.db.selectFrom('tasks').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    await pruneOnce(database.db, { maxTasks: total - 10, maxAgeSeconds: 0, intervalMs: 0 }, now);
    // The 10 oldest tasks overall are the oldest of this batch or older ones from earlier tests.
    const afterCount = Number((await database.db.selectFrom('tasks').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
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
