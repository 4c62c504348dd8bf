// The statistics reads (src/queries/stats.ts) against real SQLite and
// MariaDB, over rows seeded as the collector and the rollup leave them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultStep, exceptionStats, queueLengthSeries, taskStatsSeries, taskTypeStats, totalStatsSeries } from '../../src/queries/stats';
import { DIALECTS, openTestDatabase } from '../support/databases';
import { seedExceptions, seedQueueLengths, seedStats } from '../support/stats';

// An hour boundary, so minute and hour rows line up.
const H = 1_764_597_600;

describe('defaultStep', () => {
  it('reads minutes for a short recent window and hours otherwise', () => {
    const now = H + 100 * 3600;
    expect(defaultStep(now - 3600, now, now, 48)).toBe(60);
    expect(defaultStep(now - 24 * 3600, now, now, 48)).toBe(60);
    expect(defaultStep(now - 24 * 3600 - 60, now, now, 48)).toBe(3600);
    // Recent enough in length, but starting before the minutes kept.
    expect(defaultStep(now - 50 * 3600, now - 49 * 3600, now, 48)).toBe(3600);
    expect(defaultStep(now - 7 * 86400, now, now, 48)).toBe(3600);
  });
});

describe.each(DIALECTS)('stats queries on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    await seedStats(database.db, [
      // Hour H: its minutes deleted by retention already, for a.
      {
        bucket: H + 600,
        name: 'a',
        counts: { succeeded: 10, failed: 2, started: 12 },
        runtimes: [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 4],
        minuteGone: true,
      },
      // Hour H+1: minutes.
      {
        bucket: H + 3600,
        name: 'a',
        counts: { sent: 3, received: 3, started: 3, succeeded: 3 },
        runtimes: [0.02, 0.02, 0.7],
        queueWaits: [0.5, 0.5, 20],
      },
      { bucket: H + 3660, name: 'a', counts: { received: 1, started: 1, failed: 1, retried: 1 } },
      { bucket: H + 3660, name: 'b', counts: { received: 2, revoked: 1, rejected: 1 } },
      { bucket: H + 7140, name: 'b', counts: { succeeded: 5 }, runtimes: [5000, 5000, 5000, 5000, 5000] },
      // The minute at H+2h (the end of the test window, which is exclusive).
      { bucket: H + 7200, name: 'a', counts: { succeeded: 100 } },
    ]);
    await seedExceptions(database.db, [
      { bucket: H + 600, name: 'a', exception: 'KeyError', count: 2, minuteGone: true },
      { bucket: H + 3660, name: 'a', exception: 'ValueError', count: 1 },
      { bucket: H + 3720, name: 'a', exception: 'KeyError', count: 1 },
      { bucket: H + 3720, name: 'b', exception: 'OSError', count: 4 },
    ]);
    await seedQueueLengths(database.db, [
      { bucket: H + 120, queue: 'celery', length: 40, minuteGone: true },
      { bucket: H + 3600, queue: 'celery', length: 7 },
      { bucket: H + 3660, queue: 'celery', length: 9 },
      { bucket: H + 3660, queue: 'slow', length: 1 },
    ]);
  });
  afterAll(async () => {
    await database?.drop();
  });

  const window = { from: H, to: H + 7200 };

  it('answers minutes where minutes are kept and one bucket per stored hour elsewhere', async () => {
    const answer = await taskStatsSeries(database.db, { ...window, step: 60 });
    expect(answer.step).toBe(60);
    expect(answer.series.map((s) => s.name)).toEqual(['a', 'b']);
    const a = answer.series[0]!;
    expect(a.buckets.map((b) => b.t)).toEqual([H, H + 3600, H + 3660]);
    expect(a.buckets[0]).toMatchObject({
      succeeded: 10,
      failed: 2,
      started: 12,
      sent: 0,
      runtime_p50: 0.5,
      runtime_p95: 5,
      runtime_p99: 5,
    });
    expect(a.buckets[0]!.queue_wait_p95).toBeNull();
    expect(a.buckets[1]).toMatchObject({ sent: 3, received: 3, succeeded: 3, runtime_p50: 0.025, runtime_p95: 0.75, queue_wait_p95: 30 });
    expect(a.buckets[2]).toMatchObject({ failed: 1, retried: 1, runtime_p50: null });
    const b = answer.series[1]!;
    expect(b.buckets.map((x) => [x.t, x.revoked, x.rejected, x.succeeded])).toEqual([
      [H + 3660, 1, 1, 0],
      [H + 7140, 0, 0, 5],
    ]);
    // Past the largest bound: the largest bound.
    expect(b.buckets[1]!.runtime_p50).toBe(3600);
  });

  it('sums minutes into hours exactly, and filters by name', async () => {
    const answer = await taskStatsSeries(database.db, { ...window, step: 3600, name: 'a' });
    expect(answer.series).toHaveLength(1);
    expect(answer.series[0]!.buckets).toEqual([
      expect.objectContaining({ t: H, succeeded: 10, failed: 2 }),
      expect.objectContaining({ t: H + 3600, sent: 3, received: 4, started: 4, succeeded: 3, failed: 1, retried: 1, runtime_p50: 0.025 }),
    ]);
    const none = await taskStatsSeries(database.db, { ...window, step: 3600, name: 'nope' });
    expect(none.series).toEqual([]);
  });

  it('sums every name into one series', async () => {
    const total = await totalStatsSeries(database.db, { ...window, step: 3600 });
    expect(total.name).toBe('*');
    expect(total.buckets.map((b) => [b.t, b.succeeded, b.failed, b.received, b.revoked])).toEqual([
      [H, 10, 2, 0, 0],
      [H + 3600, 8, 1, 6, 1],
    ]);
    const wider = await totalStatsSeries(database.db, { from: H, to: H + 7260, step: 60 });
    expect(wider.buckets.reduce((n, b) => n + b.succeeded, 0)).toBe(118);
  });

  it('tabulates task types with a sparkline over the window', async () => {
    const rows = await taskTypeStats(database.db, { ...window, slices: 2, step: 3600 });
    expect(rows.map((r) => r.name)).toEqual(['a', 'b']);
    expect(rows[0]).toEqual({
      name: 'a',
      count: 16,
      succeeded: 13,
      failed: 3,
      retried: 1,
      failureRatio: 3 / 16,
      runtimeP50: 0.5,
      runtimeP95: 5,
      queueWaitP95: 30,
      lastSeen: H + 3600,
      spark: [12, 4],
    });
    expect(rows[1]).toMatchObject({ count: 7, failureRatio: 0, lastSeen: H + 3600, spark: [0, 5], runtimeP50: 3600 });
    // By the day (the default past 7 days): the whole UTC day's row.
    const day = H - (H % 86_400);
    const days = await taskTypeStats(database.db, { from: day, to: day + 8 * 86_400, slices: 8 });
    expect(days.map((r) => [r.name, r.count, r.succeeded, r.failed, r.lastSeen, r.spark])).toEqual([
      ['a', 116, 113, 3, day, [116, 0, 0, 0, 0, 0, 0, 0]],
      ['b', 7, 5, 0, day, [5, 0, 0, 0, 0, 0, 0, 0]],
    ]);
    expect(await exceptionStats(database.db, { from: day, to: day + 8 * 86_400, limit: 1 })).toEqual([
      { name: 'b', exception: 'OSError', count: 4, firstSeen: day, lastSeen: day },
    ]);
    // By the minute (the default for short windows): the last hour's minutes.
    const minutes = await taskTypeStats(database.db, { from: H + 3600, to: H + 7200, slices: 60 });
    expect(minutes.map((r) => [r.name, r.count, r.lastSeen, r.spark.slice(0, 2), r.spark[59]])).toEqual([
      ['a', 4, H + 3660, [3, 1], 0],
      ['b', 7, H + 7140, [0, 0], 5],
    ]);
  });

  it('groups failures by exception class, most frequent first', async () => {
    const all = await exceptionStats(database.db, { ...window, limit: 10, step: 3600 });
    expect(all).toEqual([
      { name: 'b', exception: 'OSError', count: 4, firstSeen: H + 3600, lastSeen: H + 3600 },
      { name: 'a', exception: 'KeyError', count: 3, firstSeen: H, lastSeen: H + 3600 },
      { name: 'a', exception: 'ValueError', count: 1, firstSeen: H + 3600, lastSeen: H + 3600 },
    ]);
    expect(await exceptionStats(database.db, { ...window, name: 'a', limit: 1, step: 3600 })).toEqual([all[1]]);
    // By the minute: only what minutes still hold.
    expect(await exceptionStats(database.db, { ...window, limit: 10 })).toEqual([
      { name: 'b', exception: 'OSError', count: 4, firstSeen: H + 3720, lastSeen: H + 3720 },
      { name: 'a', exception: 'KeyError', count: 1, firstSeen: H + 3720, lastSeen: H + 3720 },
      { name: 'a', exception: 'ValueError', count: 1, firstSeen: H + 3660, lastSeen: H + 3660 },
    ]);
  });

  it('reads queue lengths as the largest per bucket', async () => {
    expect(await queueLengthSeries(database.db, { ...window, step: 3600 })).toEqual([
      {
        queue: 'celery',
        points: [
          { t: H, length: 40 },
          { t: H + 3600, length: 9 },
        ],
      },
      { queue: 'slow', points: [{ t: H + 3600, length: 1 }] },
    ]);
    const minutes = await queueLengthSeries(database.db, { from: H + 3600, to: H + 7200, step: 60 });
    expect(minutes[0]!.points).toEqual([
      { t: H + 3600, length: 7 },
      { t: H + 3660, length: 9 },
    ]);
    // Minutes asked where only the hour is left: the hour's largest at its start.
    const older = await queueLengthSeries(database.db, { ...window, step: 60 });
    expect(older[0]!.points).toEqual([{ t: H, length: 40 }, ...minutes[0]!.points]);
  });
});
