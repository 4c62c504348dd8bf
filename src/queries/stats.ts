// Reads of the time-bucketed task statistics (tables task_stats,
// task_stats_exceptions and queue_stats, written by the collector; see
// src/shared/schema.ts). Every read is one grouped query over a range of the
// (step, bucket) key, summed by the database, so the rows that cross the
// wire are the answer's buckets, not the stored ones.
//
// Windows: a stored row is in [from, to) when its bucket START is. Minute
// rows (step 60) and hour rows (step 3600, what the rollup leaves after
// --stats-minutes-hours) are read together and re-bucketed to the asked
// step: an hour answer adds each hour's minutes to its hour row, so it is
// exact; a minute answer over a range that is already rolled up has one
// bucket per stored hour, at the hour's start, holding the whole hour (the
// minutes are no longer known). Window sums are the same either way.
//
// Buckets appear only where something happened (a missing bucket is zero).
//
// Percentiles are exact to the bin: the upper bound of the STORED_BUCKETS
// bin where the cumulative count reaches the quantile (binQuantile in
// src/shared/stats-bins.ts); past the largest bound, that bound.

import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Database } from '../shared/schema';
import { binQuantile, QUEUE_WAIT_BIN_COLUMNS, RUNTIME_BIN_COLUMNS, STATS_BIN_COUNT, TASK_STATS_VALUE_COLUMNS } from '../shared/stats-bins';
import {
  type ExceptionStats,
  type QueueLengthSeries,
  STATS_COUNTS,
  STATS_STEPS,
  type StatsAnswer,
  type StatsBucket,
  type StatsSeries,
  type StatsStep,
  type TaskTypeStats,
} from '../shared/stats';

export interface StatsWindow {
  /** Epoch seconds, inclusive. */
  from: number;
  /** Epoch seconds, exclusive. */
  to: number;
  step: StatsStep;
  /** One task name only. */
  name?: string;
}

/** Windows up to this long are drawn by the minute when minutes are still kept for all of them. */
const MINUTE_WINDOW_MAX = 24 * 3600;

/**
 * The step a chart of [from, to) reads best in: minutes for a window of at
 * most 24 h that starts after the rollup's threshold (`minuteHours` hours
 * before `now`), hours otherwise.
 */
export function defaultStep(from: number, to: number, now: number, minuteHours: number): StatsStep {
  return to - from <= MINUTE_WINDOW_MAX && from >= now - minuteHours * 3600 ? 60 : 3600;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

function checkStep(step: number): StatsStep {
  if (!(STATS_STEPS as readonly number[]).includes(step)) throw new RangeError(`step must be 60 or 3600, not ${step}`);
  return step as StatsStep;
}

/** `bucket` floored to `width` seconds (an integer literal: both dialects group by the same text). */
function floored(width: number): RawBuilder<number> {
  return sql<number>`(bucket - bucket % ${sql.lit(width)})`;
}

function sums(columns: readonly string[]): RawBuilder<unknown> {
  return sql.join(
    columns.map((c) => sql`SUM(${sql.ref(c)}) AS ${sql.ref(c)}`),
    sql`, `,
  );
}

function inWindow(q: { from: number; to: number; name?: string | undefined }): RawBuilder<unknown> {
  const from = Math.floor(q.from);
  const to = Math.ceil(q.to);
  const name = q.name === undefined ? sql`` : sql` AND task_name = ${q.name}`;
  return sql`step IN (60, 3600) AND bucket >= ${from} AND bucket < ${to}${name}`;
}

type Row = Record<string, unknown>;

function bins(row: Row, columns: readonly string[]): number[] {
  const out = new Array<number>(STATS_BIN_COUNT);
  for (let i = 0; i < columns.length; i++) out[i] = num(row[columns[i]!]);
  return out;
}

function bucketOf(row: Row): StatsBucket {
  const runtime = bins(row, RUNTIME_BIN_COLUMNS);
  const bucket = { t: num(row.t) } as StatsBucket;
  for (const count of STATS_COUNTS) bucket[count] = num(row[count]);
  bucket.runtime_p50 = binQuantile(runtime, 0.5);
  bucket.runtime_p95 = binQuantile(runtime, 0.95);
  bucket.runtime_p99 = binQuantile(runtime, 0.99);
  bucket.queue_wait_p95 = binQuantile(bins(row, QUEUE_WAIT_BIN_COLUMNS), 0.95);
  return bucket;
}

/** One series per task name with events in the window (or just `name`), names in order, buckets oldest first. */
export async function taskStatsSeries(db: Kysely<Database>, q: StatsWindow): Promise<StatsAnswer> {
  const step = checkStep(q.step);
  const t = floored(step);
  const { rows } = await sql<Row>`SELECT task_name, ${t} AS t, ${sums(TASK_STATS_VALUE_COLUMNS)}
    FROM task_stats WHERE ${inWindow(q)}
    GROUP BY task_name, ${t} ORDER BY task_name, ${t}`.execute(db);
  const series: StatsSeries[] = [];
  let current: StatsSeries | undefined;
  for (const row of rows) {
    const name = String(row.task_name);
    if (current?.name !== name) {
      current = { name, buckets: [] };
      series.push(current);
    }
    current.buckets.push(bucketOf(row));
  }
  return { step, series };
}

/** All names summed into one series named '*' (for the "all tasks" charts). */
export async function totalStatsSeries(db: Kysely<Database>, q: StatsWindow): Promise<StatsSeries> {
  const step = checkStep(q.step);
  const t = floored(step);
  const { rows } = await sql<Row>`SELECT ${t} AS t, ${sums(TASK_STATS_VALUE_COLUMNS)}
    FROM task_stats WHERE ${inWindow(q)}
    GROUP BY ${t} ORDER BY ${t}`.execute(db);
  return { name: '*', buckets: rows.map(bucketOf) };
}

/**
 * One row per task name with events in [from, to): totals, failure ratio,
 * percentiles over the whole window, the last bucket with an event and a
 * sparkline of `slices` equal parts of the window (each a whole number of
 * minutes; a row counts in the part its bucket starts in).
 */
export async function taskTypeStats(db: Kysely<Database>, q: { from: number; to: number; slices: number }): Promise<TaskTypeStats[]> {
  const from = Math.floor(q.from);
  const slices = Math.max(1, Math.floor(q.slices));
  const width = Math.max(60, Math.ceil((q.to - from) / slices / 60) * 60);
  const offset = sql`(bucket - ${sql.lit(from)})`;
  const part = sql<number>`(${offset} - ${offset} % ${sql.lit(width)})`;
  const { rows } = await sql<Row>`SELECT task_name, ${part} AS part, MAX(bucket) AS last_seen, ${sums(TASK_STATS_VALUE_COLUMNS)}
    FROM task_stats WHERE ${inWindow(q)}
    GROUP BY task_name, ${part} ORDER BY task_name`.execute(db);

  interface Acc {
    row: TaskTypeStats;
    runtime: number[];
    wait: number[];
  }
  const byName = new Map<string, Acc>();
  for (const r of rows) {
    const name = String(r.task_name);
    let acc = byName.get(name);
    if (!acc) {
      acc = {
        row: {
          name,
          count: 0,
          succeeded: 0,
          failed: 0,
          retried: 0,
          failureRatio: null,
          runtimeP50: null,
          runtimeP95: null,
          queueWaitP95: null,
          lastSeen: null,
          spark: new Array<number>(slices).fill(0),
        },
        runtime: new Array<number>(STATS_BIN_COUNT).fill(0),
        wait: new Array<number>(STATS_BIN_COUNT).fill(0),
      };
      byName.set(name, acc);
    }
    const s = acc.row;
    const succeeded = num(r.succeeded);
    const failed = num(r.failed);
    s.succeeded += succeeded;
    s.failed += failed;
    s.retried += num(r.retried);
    s.count += succeeded + failed + num(r.revoked) + num(r.rejected);
    const last = num(r.last_seen);
    s.lastSeen = s.lastSeen === null ? last : Math.max(s.lastSeen, last);
    const index = Math.min(slices - 1, Math.max(0, Math.floor(num(r.part) / width)));
    s.spark[index]! += succeeded + failed;
    for (let i = 0; i < STATS_BIN_COUNT; i++) {
      acc.runtime[i]! += num(r[RUNTIME_BIN_COLUMNS[i]!]);
      acc.wait[i]! += num(r[QUEUE_WAIT_BIN_COLUMNS[i]!]);
    }
  }
  return [...byName.values()].map(({ row, runtime, wait }) => ({
    ...row,
    failureRatio: row.succeeded + row.failed === 0 ? null : row.failed / (row.succeeded + row.failed),
    runtimeP50: binQuantile(runtime, 0.5),
    runtimeP95: binQuantile(runtime, 0.95),
    queueWaitP95: binQuantile(wait, 0.95),
  }));
}

/** Failures by (task name, exception class) in [from, to), most frequent first, at most `limit`. */
export async function exceptionStats(
  db: Kysely<Database>,
  q: { from: number; to: number; name?: string; limit: number },
): Promise<ExceptionStats[]> {
  const limit = Math.max(0, Math.floor(q.limit));
  const { rows } =
    await sql<Row>`SELECT task_name, exception, SUM(${sql.ref('count')}) AS total, MIN(bucket) AS first_seen, MAX(bucket) AS last_seen
    FROM task_stats_exceptions WHERE ${inWindow(q)}
    GROUP BY task_name, exception ORDER BY total DESC, task_name, exception LIMIT ${sql.lit(limit)}`.execute(db);
  return rows.map((r) => ({
    name: String(r.task_name),
    exception: String(r.exception),
    count: num(r.total),
    firstSeen: num(r.first_seen),
    lastSeen: num(r.last_seen),
  }));
}

/**
 * Each queue's length over [from, to): per bucket of `step`, the largest
 * length measured in it (minute rows keep the largest of their samples, hour
 * rows the largest of their minutes). Queues in name order.
 */
export async function queueLengthSeries(
  db: Kysely<Database>,
  q: { from: number; to: number; step: StatsStep },
): Promise<QueueLengthSeries[]> {
  const step = checkStep(q.step);
  const t = floored(step);
  const { rows } = await sql<Row>`SELECT queue, ${t} AS t, MAX(${sql.ref('length')}) AS len
    FROM queue_stats WHERE step IN (60, 3600) AND bucket >= ${Math.floor(q.from)} AND bucket < ${Math.ceil(q.to)}
    GROUP BY queue, ${t} ORDER BY queue, ${t}`.execute(db);
  const out: QueueLengthSeries[] = [];
  let current: QueueLengthSeries | undefined;
  for (const r of rows) {
    const queue = String(r.queue);
    if (current?.queue !== queue) {
      current = { queue, points: [] };
      out.push(current);
    }
    current.points.push({ t: num(r.t), length: num(r.len) });
  }
  return out;
}
