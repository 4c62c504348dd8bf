// The task statistics through the real store and retention, on SQLite and
// MariaDB: what flushes add equals the events they stored (each in its own
// minute), whichever way the stream is cut into flushes and whether names
// come from the batch or the database; the rollup turns old minute rows into
// hour rows with the same sums and the same percentiles to the bin, once,
// even when two run at the same time; and retention deletes what is too old.

import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exceptionStats, queueLengthSeries, taskStatsSeries, totalStatsSeries } from '../../src/queries/stats';
import type { TaskEvent } from '../../src/shared/celery-events';
import { createLogger } from '../../src/shared/log';
import { STATS_COUNTS } from '../../src/shared/stats';
import { exceptionClass } from '../../worker-collector/fold/task';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { buildFlushPayload, type TaskRef } from '../../worker-collector/store/payload';
import { queueStatsRows, queueStatsWrite } from '../../worker-collector/store/stats';
import { statsRetentionOnce } from '../../worker-collector/store/stats-retention';
import { StoreWriter } from '../../worker-collector/store/writer';
import { failed, received, retried, revoked, seededRandom, sent, started, succeeded } from '../fixtures/events';
import { DIALECTS, openTestDatabase } from '../support/databases';
import { seedExceptions, seedStats } from '../support/stats';

const quiet = createLogger('test', 'error');
const H = 1_800_000_000 - (1_800_000_000 % 3600);

/** A mix of lifecycles over about 40 minutes: successes, failures of two classes, retries, revocations. */
function workload(prefix: string, random: () => number): TaskEvent[][] {
  const out: TaskEvent[][] = [];
  for (let i = 0; i < 120; i++) {
    const story = { uuid: `${prefix}-${i}`, name: `tasks.kind${i % 4}` };
    const at = H + Math.floor(random() * 2400) + random();
    const runtime = random() * 3;
    switch (i % 5) {
      case 0:
        out.push([sent(story, at), received(story, at + 0.5), started(story, at + 1), succeeded(story, at + 1 + runtime, '1', runtime)]);
        break;
      case 1:
        out.push([received(story, at), started(story, at + 2), failed(story, at + 70, "KeyError('k')")]);
        break;
      case 2:
        out.push([received(story, at), started(story, at + 0.2), failed(story, at + 0.4, 'ValueError()')]);
        break;
      case 3:
        out.push([
          sent(story, at),
          received(story, at + 0.1),
          started(story, at + 0.2),
          retried(story, at + 30),
          received(story, at + 59, 1),
          started(story, at + 61),
          succeeded(story, at + 65, '2', 4),
        ]);
        break;
      default:
        out.push([received(story, at), revoked(story, at + 100)]);
    }
  }
  return out;
}

/** Count, from the stored timelines, the events of each (minute, name, type); failures also by exception class. */
async function countStoredEvents(database: Awaited<ReturnType<typeof openTestDatabase>>, prefix: string) {
  const rows = await database.db
    .selectFrom('task_events')
    .innerJoin('tasks', 'tasks.uuid', 'task_events.task_id')
    .select(['tasks.name', 'task_events.events'])
    .where('tasks.uuid', 'like', `${prefix}-%`)
    .execute();
  const counts = new Map<string, number>();
  const exceptions = new Map<string, number>();
  for (const row of rows) {
    for (const e of JSON.parse(row.events) as { type: string; timestamp: number; data: { exception?: string } | null }[]) {
      const minute = Math.floor(e.timestamp / 60) * 60;
      const key = `${minute}|${row.name}|${e.type.replace('task-', '')}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (e.type === 'task-failed') {
        const k = `${row.name}|${exceptionClass(e.data?.exception)}`;
        exceptions.set(k, (exceptions.get(k) ?? 0) + 1);
      }
    }
  }
  return { counts, exceptions };
}

describe.each(DIALECTS)('task statistics on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('add up, per minute and name, to exactly the events the flushes stored', async () => {
    const random = seededRandom(11);
    const lifecycles = workload('w', random);
    // Events arrive in time order (each task's in its own order), tasks interleaved.
    const stream = lifecycles.flat().sort((a, b) => a.timestamp - b.timestamp);
    const writer = new StoreWriter(database, quiet);
    const workers = new Map<string, WorkerState>();
    // A name cache like the collector's, but forgetful: some later events are named by the database.
    const cache = new Map<string, TaskRef>();
    let batch = new EventBatch();
    const flush = async () => {
      const { payload, learned } = buildFlushPayload(batch, (uuid) => cache.get(uuid), workers, null);
      for (const [uuid, ref] of learned) if (random() < 0.5) cache.set(uuid, ref);
      await writer.write(payload);
      batch = new EventBatch();
    };
    for (const event of stream) {
      batch.add(event, workers);
      if (random() < 0.05) await flush();
    }
    await flush();

    const { counts, exceptions } = await countStoredEvents(database, 'w');
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(stream.length);
    const answer = await taskStatsSeries(database.db, { from: H, to: H + 3 * 3600, step: 60 });
    const answered = new Map<string, number>();
    for (const series of answer.series) {
      for (const bucket of series.buckets) {
        for (const c of STATS_COUNTS) if (bucket[c] > 0) answered.set(`${bucket.t}|${series.name}|${c}`, bucket[c]);
      }
    }
    expect(Object.fromEntries([...answered].sort())).toEqual(Object.fromEntries([...counts].sort()));

    // Failures by class: case 1 raised KeyError, case 2 ValueError, 24 tasks each, over four names.
    const byClass = await exceptionStats(database.db, { from: H, to: H + 3 * 3600, limit: 100 });
    expect(Object.fromEntries(byClass.map((e) => [`${e.name}|${e.exception}`, e.count]))).toEqual(Object.fromEntries(exceptions));
    expect(byClass.reduce((n, e) => n + e.count, 0)).toBe(48);

    // Runtimes: one per task-succeeded, in the succeeded event's minute.
    const total = await totalStatsSeries(database.db, { from: H, to: H + 3 * 3600, step: 3600 });
    const succeededCount = total.buckets.reduce((n, b) => n + b.succeeded, 0);
    expect(succeededCount).toBe(48);
    const [bins] = (
      await sql<{
        n: unknown;
      }>`SELECT SUM(${sql.raw(Array.from({ length: 22 }, (_, i) => `rt_${i}`).join(' + '))}) AS n FROM task_stats WHERE step = 60`.execute(
        database.db,
      )
    ).rows;
    expect(Number(bins?.n)).toBe(48);
  });

  it('hold each flush in hours and in the all-names rows too', async () => {
    const window = { from: H, to: H + 3 * 3600 };
    const minutes = await taskStatsSeries(database.db, { ...window, step: 60 });
    const hours = await taskStatsSeries(database.db, { ...window, step: 3600 });
    const total = (answer: { series: { buckets: Record<string, number | null>[] }[] }) => {
      const out: Record<string, number> = {};
      for (const series of answer.series)
        for (const b of series.buckets) for (const c of STATS_COUNTS) out[c] = (out[c] ?? 0) + (b[c] as number);
      return out;
    };
    expect(total(hours)).toEqual(total(minutes));
    expect(hours.series.map((s) => s.name)).toEqual(minutes.series.map((s) => s.name));
    // The all-names rows: the same sums, bucket by bucket.
    for (const step of [60, 3600] as const) {
      const all = await totalStatsSeries(database.db, { ...window, step });
      const perName = step === 60 ? minutes : hours;
      const summed = new Map<number, number>();
      for (const series of perName.series)
        for (const b of series.buckets) summed.set(b.t, (summed.get(b.t) ?? 0) + b.received + b.succeeded + b.failed);
      expect(new Map(all.buckets.map((b) => [b.t, b.received + b.succeeded + b.failed]))).toEqual(summed);
    }
  });

  it('roll up by deleting old minutes: the same sums and percentiles, once, even two at once; then delete past retention', async () => {
    for (const table of ['task_stats', 'task_stats_all', 'task_stats_exceptions', 'queue_stats'])
      await sql`DELETE FROM ${sql.table(table)}`.execute(database.db);
    const random = seededRandom(5);
    const seeds: Parameters<typeof seedStats>[1] = [];
    // Three days of minutes for two names, most minutes busy.
    const start = H - 72 * 3600;
    for (let m = 0; m < 72 * 60; m++) {
      for (const name of ['x', 'y']) {
        if (random() < 0.3) continue;
        seeds.push({
          bucket: start + m * 60,
          name,
          counts: { received: 3, started: 3, succeeded: 2, failed: 1, retried: Math.floor(random() * 2) },
          runtimes: [random() * 2, random() * 20],
          queueWaits: [random()],
        });
      }
    }
    await seedStats(database.db, seeds);
    const failures = [];
    for (let m = 0; m < 72 * 60; m += 7)
      failures.push({ bucket: start + m * 60, name: 'x', exception: m % 2 ? 'A' : 'B', count: 1 + (m % 3) });
    await seedExceptions(database.db, failures);
    // Queue lengths as the collector writes them: two samples a minute, every thirtieth minute.
    const queues = queueStatsWrite(database.db, database.dialect);
    for (let m = 0; m < 72 * 60; m += 30) {
      await database.db.transaction().execute(async (trx) => {
        await queues.run(trx, queueStatsRows([{ name: 'celery', messages: m % 50 }], start + m * 60 + 1));
        await queues.run(trx, queueStatsRows([{ name: 'celery', messages: (m % 50) + 1 }], start + m * 60 + 30));
      });
    }

    const window = { from: start, to: H + 3600 };
    const read = async () => ({
      hours: await taskStatsSeries(database.db, { ...window, step: 3600 }),
      minutes: await taskStatsSeries(database.db, { ...window, step: 60 }),
      total: await totalStatsSeries(database.db, { ...window, step: 3600 }),
      exceptions: await exceptionStats(database.db, { ...window, limit: 10, step: 3600 }),
      queues: await queueLengthSeries(database.db, { ...window, step: 3600 }),
      queueMinutes: await queueLengthSeries(database.db, { ...window, step: 60 }),
    });
    const before = await read();
    expect(before.queueMinutes[0]!.points.slice(0, 2)).toEqual([
      { t: start, length: 1 },
      { t: start + 1800, length: 31 },
    ]);
    expect(before.queues[0]!.points[0]).toEqual({ t: start, length: 31 });

    const now = H + 0.5 * 3600;
    const threshold = H - 48 * 3600;
    const minuteRows = async () => {
      let n = 0;
      for (const table of ['task_stats', 'task_stats_all', 'task_stats_exceptions', 'queue_stats'])
        n += Number(
          (
            await sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM ${sql.table(table)} WHERE step = 60 AND bucket < ${threshold}`.execute(
              database.db,
            )
          ).rows[0]!.n,
        );
      return n;
    };
    const old = await minuteRows();
    expect(old).toBeGreaterThan(0);
    // Two at once (two collectors): each minute row is deleted once.
    const runs = await Promise.allSettled([
      statsRetentionOnce(database.db, { minutesHours: 48, retentionDays: 90 }, now),
      statsRetentionOnce(database.db, { minutesHours: 48, retentionDays: 90 }, now),
    ]);
    const done = runs.filter((r) => r.status === 'fulfilled');
    expect(done.length).toBeGreaterThan(0);
    const more = await statsRetentionOnce(database.db, { minutesHours: 48, retentionDays: 90 }, now);
    expect(done.reduce((n, r) => n + r.value.rolledUp, 0) + more.rolledUp).toBe(old);
    expect(await minuteRows()).toBe(0);
    expect(await statsRetentionOnce(database.db, { minutesHours: 48, retentionDays: 90 }, now)).toEqual({ rolledUp: 0, deleted: 0 });

    const after = await read();
    expect(after.hours).toEqual(before.hours);
    expect(after.total).toEqual(before.total);
    expect(after.exceptions).toEqual(before.exceptions);
    expect(after.queues).toEqual(before.queues);
    // A minute answer over rolled-up hours: one bucket per hour at its start, the same sums.
    const sumOf = (a: typeof after.minutes) =>
      a.series.map((s) => [s.name, ...STATS_COUNTS.map((c) => s.buckets.reduce((n, b) => n + b[c], 0))]);
    expect(sumOf(after.minutes)).toEqual(sumOf(before.minutes));
    const x = after.minutes.series[0]!.buckets;
    expect(x[0]!.t).toBe(start);
    expect(x[1]!.t).toBe(start + 3600);
    expect(x.filter((b) => b.t >= threshold).map((b) => b.t)).toEqual(
      before.minutes.series[0]!.buckets.filter((b) => b.t >= threshold).map((b) => b.t),
    );
    // The hour buckets of the minute answer carry the hour's percentiles.
    expect(x[0]).toEqual(before.hours.series[0]!.buckets[0]);
    expect(after.queueMinutes[0]!.points[0]).toEqual({ t: start, length: 31 });

    // Retention: a day kept, then everything older goes.
    const report = await statsRetentionOnce(database.db, { minutesHours: 48, retentionDays: 1 }, now);
    expect(report.deleted).toBeGreaterThan(0);
    for (const table of ['task_stats', 'task_stats_all', 'task_stats_exceptions', 'queue_stats'] as const) {
      const { rows } = await sql<{ lo: unknown }>`SELECT MIN(bucket) AS lo FROM ${sql.table(table)}`.execute(database.db);
      expect(Number(rows[0]!.lo)).toBeGreaterThanOrEqual(now - 86400);
    }
  }, 90_000);
});
