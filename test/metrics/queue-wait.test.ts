// celery_task_queue_wait_time's observations, made by the collector when a
// task starts: from the task-sent of the same flush, from the collector's
// cache of earlier flushes, or from the database when the cache has the task
// no more; the eta, when later than the sending, is the baseline.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/log';
import type { TaskEvent } from '../../src/shared/celery-events';
import { EventBatch } from '../../worker-collector/fold/batch';
import { etaSeconds, type TaskRef } from '../../worker-collector/store/counters';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { buildFlushPayload } from '../../worker-collector/store/payload';
import { StoreWriter } from '../../worker-collector/store/writer';
import { received, sent, started, succeeded } from '../fixtures/events';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T = 1_900_000_000;
const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace('Z', '+00:00');

describe('etaSeconds', () => {
  it("reads Celery's ISO 8601 etas, taking one without a zone as UTC", () => {
    expect(etaSeconds('2030-03-17T17:46:40.250000+00:00')).toBe(1_900_000_000.25);
    expect(etaSeconds('2030-03-17T19:46:40+02:00')).toBe(1_900_000_000);
    expect(etaSeconds('2030-03-17T17:46:40Z')).toBe(1_900_000_000);
    expect(etaSeconds('2030-03-17T17:46:40.5')).toBe(1_900_000_000.5);
    expect(etaSeconds(null)).toBeNull();
    expect(etaSeconds('')).toBeNull();
    expect(etaSeconds('soon')).toBeNull();
  });
});

describe.each(DIALECTS)('queue wait on %s', (dialect) => {
  let database: OpenDatabase & { drop(): Promise<void> };
  let writer: StoreWriter;
  /** The collector's cache of task refs (collector.ts keeps an LRU of these). */
  const cache = new Map<string, TaskRef>();

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    writer = new StoreWriter(database, createLogger('test', 'error'));
  });
  afterAll(async () => {
    await database?.drop();
  });

  async function write(events: TaskEvent[], useCache: boolean) {
    const batch = new EventBatch();
    for (const event of events) batch.add(event, new Map());
    const { payload, learned } = buildFlushPayload(batch, (uuid) => (useCache ? cache.get(uuid) : undefined), new Map(), null);
    const result = await writer.write(payload);
    for (const [uuid, ref] of [...learned, ...result.resolved]) cache.set(uuid, ref);
    return { payload, result };
  }

  async function waits(name: string) {
    const rows = await database.db
      .selectFrom('histogram_buckets')
      .select(['le', 'count'])
      .where('metric', '=', 'queue_wait')
      .where('task_name', '=', name)
      .orderBy('le')
      .execute();
    const totals = await database.db
      .selectFrom('histogram_totals')
      .select(['sum', 'count'])
      .where('metric', '=', 'queue_wait')
      .where('task_name', '=', name)
      .execute();
    return { buckets: rows.map((r) => [r.le, Number(r.count)]), sum: Number(totals[0]?.sum ?? 0), count: Number(totals[0]?.count ?? 0) };
  }

  it('measures from a task-sent in the same flush', async () => {
    const s = { uuid: 'qw-same', name: 'qw.same' };
    await write([sent(s, T), received(s, T + 0.5), started(s, T + 0.7), succeeded(s, T + 1)], true);
    // Stored bounds are the union of every exporter's (src/shared/histograms.ts): 0.7 s lands in 0.75.
    expect(await waits('qw.same')).toMatchObject({ buckets: [['0.75', 1]], count: 1 });
    expect((await waits('qw.same')).sum).toBeCloseTo(0.7, 5);
  });

  it('measures from a task-sent of an earlier flush, through the cache', async () => {
    const s = { uuid: 'qw-cached', name: 'qw.cached' };
    await write([sent(s, T)], true);
    expect(cache.get('qw-cached')).toEqual({ name: 'qw.cached', queue: 'celery', sent: T, eta: null });
    const { payload } = await write([received(s, T + 20), started(s, T + 40)], true);
    expect(payload.unresolved).toEqual([]);
    expect(await waits('qw.cached')).toMatchObject({ buckets: [['60', 1]], sum: 40, count: 1 });
  });

  it('measures from the database when the cache has lost the task, eta included', async () => {
    const s = { uuid: 'qw-db', name: 'qw.db' };
    await write(
      [
        { ...sent(s, T), eta: iso(T + 100) },
        { ...received(s, T + 0.1), eta: iso(T + 100) },
      ],
      false,
    );
    // task-started names no task: without the cache the store looks it up.
    const { payload, result } = await write([started(s, T + 100.3)], false);
    expect(payload.unresolved.map((u) => u.uuid)).toEqual(['qw-db']);
    expect(result.resolved).toEqual([['qw-db', { name: 'qw.db', queue: 'celery', sent: T, eta: iso(T + 100) }]]);
    const got = await waits('qw.db');
    expect(got).toMatchObject({ buckets: [['0.5', 1]], count: 1 });
    expect(got.sum).toBeCloseTo(0.3, 5);
  });

  it('measures each run of a task retried within one flush from its own delivery', async () => {
    const s = { uuid: 'qw-retry', name: 'qw.retry' };
    // First run at once; the retry is sent again with an eta 10 s on, and starts 2 s after it.
    await write(
      [
        sent(s, T),
        received(s, T + 0.01),
        started(s, T + 0.02),
        { ...sent(s, T + 1), eta: iso(T + 11) },
        { ...received(s, T + 1.1), eta: iso(T + 11) },
        started(s, T + 13),
      ],
      true,
    );
    const got = await waits('qw.retry');
    expect(got).toMatchObject({
      buckets: [
        ['0.025', 1],
        ['2.5', 1],
      ],
      count: 2,
    });
    expect(got.sum).toBeCloseTo(2.02, 5);
  });

  it('observes nothing for tasks no client announced (no task-sent)', async () => {
    const s = { uuid: 'qw-unsent', name: 'qw.unsent' };
    await write([received(s, T), started(s, T + 5), succeeded(s, T + 6)], true);
    expect(await waits('qw.unsent')).toEqual({ buckets: [], sum: 0, count: 0 });
  });
});
