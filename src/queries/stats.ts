// Reads of the time-bucketed task statistics (tables task_stats,
// task_stats_all, task_stats_exceptions and queue_stats, written by the
// collector; see src/shared/schema.ts). The collector adds every event to
// its minute row and its hour row, per name and for all names, so a read is
// a range of one key: an hourly answer reads hour rows, a minute answer
// minute rows, the "all tasks" series task_stats_all, never a GROUP BY over
// thousands of rows.
//
// Windows: a stored row is in [from, to) when its bucket START is (an hour
// row of an hour that `from` cuts is left out of an hourly answer; the last
// hour row may hold events after `to`).
//
// Minute answers over hours whose minutes retention has already deleted
// (older than --stats-minutes-hours): such an hour is answered as one bucket
// at the hour's start holding the whole hour, so the window's sums stay
// those of the stored events. (Exactly: the part of an hour row its stored
// minutes do not account for is put at the hour's start.)
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
const HOUR = 3600;
const DAY = 86_400;
/** Task-type and failure tables over windows up to this long read minutes, up to TABLE_HOURS_MAX hours, beyond that days. */
const TABLE_MINUTES_MAX = 6 * 3600;
const TABLE_HOURS_MAX = 7 * DAY;

/** What the task-type and failure tables may be read by: minutes, hours, or (UTC) days. */
export type TableStep = StatsStep | typeof DAY;

function checkStep(step: number): StatsStep {
  if (!(STATS_STEPS as readonly number[]).includes(step)) throw new RangeError(`step must be 60 or 3600, not ${step}`);
  return step as StatsStep;
}

const columnList = (columns: readonly string[]) =>
  sql.join(
    columns.map((c) => sql.ref(c)),
    sql`, `,
  );

function sums(columns: readonly string[]): RawBuilder<unknown> {
  return sql.join(
    columns.map((c) => sql`SUM(${sql.ref(c)}) AS ${sql.ref(c)}`),
    sql`, `,
  );
}

type Row = Record<string, unknown>;

/** One stored or answered bucket: a name, a start, and TASK_STATS_VALUE_COLUMNS' values. */
interface Cell {
  name: string;
  t: number;
  values: number[];
}

/** Rows of one step with bucket in [from, to), of one name, of every name, or of all names together (task_stats_all). */
async function readCells(
  db: Kysely<Database>,
  who: { name?: string | undefined; all?: boolean },
  step: StatsStep,
  from: number,
  to: number,
): Promise<Cell[]> {
  const table = who.all ? sql.table('task_stats_all') : sql.table('task_stats');
  const nameColumn = who.all ? sql`'*' AS task_name` : sql`task_name`;
  const name = who.name === undefined || who.all ? sql`` : sql` AND task_name = ${who.name}`;
  const order = who.all ? sql`bucket` : sql`task_name, bucket`;
  const { rows } = await sql<Row>`SELECT ${nameColumn}, bucket, ${columnList(TASK_STATS_VALUE_COLUMNS)}
    FROM ${table} WHERE step = ${sql.lit(step)} AND bucket >= ${Math.floor(from)} AND bucket < ${Math.ceil(to)}${name}
    ORDER BY ${order}`.execute(db);
  return rows.map((row) => ({
    name: String(row.task_name),
    t: num(row.bucket),
    values: TASK_STATS_VALUE_COLUMNS.map((c) => num(row[c])),
  }));
}

/**
 * The cells of a window at `step`. Hours are read as stored. Minutes are
 * read as stored, plus, for each hour row starting in the window, whatever
 * part of it its stored minutes do not account for (minutes deleted by
 * retention), as a bucket at the hour's start.
 */
async function windowCells(
  db: Kysely<Database>,
  who: { name?: string | undefined; all?: boolean },
  q: { from: number; to: number; step: StatsStep },
): Promise<Cell[]> {
  const step = checkStep(q.step);
  if (step === HOUR) return readCells(db, who, HOUR, q.from, q.to);
  // Minutes up to the end of the last hour, so that its hour row is matched against all of them.
  const lastHourEnd = Math.ceil(q.to / HOUR) * HOUR;
  const [minutes, hours] = await Promise.all([readCells(db, who, 60, q.from, lastHourEnd), readCells(db, who, HOUR, q.from, q.to)]);
  const accounted = new Map<string, number[]>();
  for (const m of minutes) {
    const key = `${m.name}\0${m.t - (m.t % HOUR)}`;
    const sum = accounted.get(key);
    if (!sum) accounted.set(key, [...m.values]);
    else for (let i = 0; i < sum.length; i++) sum[i]! += m.values[i]!;
  }
  const byKey = new Map<string, Cell>();
  for (const m of minutes) if (m.t < q.to) byKey.set(`${m.name}\0${m.t}`, m);
  for (const h of hours) {
    const sum = accounted.get(`${h.name}\0${h.t}`);
    const rest = sum ? h.values.map((v, i) => Math.max(0, v - sum[i]!)) : h.values;
    if (!rest.some((v) => v > 0)) continue;
    const key = `${h.name}\0${h.t}`;
    const there = byKey.get(key);
    if (there) byKey.set(key, { ...there, values: there.values.map((v, i) => v + rest[i]!) });
    else byKey.set(key, { name: h.name, t: h.t, values: rest });
  }
  return [...byKey.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.t - b.t));
}

const RUNTIME_AT = STATS_COUNTS.length;
const WAIT_AT = RUNTIME_AT + STATS_BIN_COUNT;

function bucketOf(cell: Cell): StatsBucket {
  const v = cell.values;
  const bucket = { t: cell.t } as StatsBucket;
  STATS_COUNTS.forEach((count, i) => {
    bucket[count] = v[i]!;
  });
  const runtime = v.slice(RUNTIME_AT, WAIT_AT);
  bucket.runtime_p50 = binQuantile(runtime, 0.5);
  bucket.runtime_p95 = binQuantile(runtime, 0.95);
  bucket.runtime_p99 = binQuantile(runtime, 0.99);
  bucket.queue_wait_p95 = binQuantile(v.slice(WAIT_AT, WAIT_AT + STATS_BIN_COUNT), 0.95);
  return bucket;
}

/** One series per task name with events in the window (or just `name`), names in order, buckets oldest first. */
export async function taskStatsSeries(db: Kysely<Database>, q: StatsWindow): Promise<StatsAnswer> {
  const step = checkStep(q.step);
  const series: StatsSeries[] = [];
  let current: StatsSeries | undefined;
  for (const cell of await windowCells(db, { name: q.name }, { ...q, step })) {
    if (current?.name !== cell.name) {
      current = { name: cell.name, buckets: [] };
      series.push(current);
    }
    current.buckets.push(bucketOf(cell));
  }
  return { step, series };
}

/** All names summed into one series named '*' (for the "all tasks" charts); with `name`, that name's series under '*'. */
export async function totalStatsSeries(db: Kysely<Database>, q: StatsWindow): Promise<StatsSeries> {
  const who = q.name === undefined ? { all: true } : { name: q.name };
  const cells = await windowCells(db, who, q);
  return { name: '*', buckets: cells.map(bucketOf) };
}

/** The step the task-type and failure tables read a window in, unless told: minutes up to 6 h, hours up to 7 days, days beyond. */
export function tableStep(from: number, to: number, step?: TableStep): TableStep {
  if (step !== undefined) return step === DAY ? DAY : checkStep(step);
  const span = to - from;
  return span <= TABLE_MINUTES_MAX ? 60 : span <= TABLE_HOURS_MAX ? HOUR : DAY;
}

/**
 * One row per task name with events in [from, to): totals, failure ratio,
 * percentiles over the whole window, the last bucket with an event and a
 * sparkline of `slices` equal parts of the window (each a whole number of
 * steps; a row counts in the part its bucket starts in). Read from minute
 * rows (`step` 60), hour rows (3600) or UTC day rows (86400); by default
 * minutes for windows up to 6 h, hours up to 7 days, days beyond (pass a
 * step when minutes may be gone: defaultStep's answer).
 */
export async function taskTypeStats(
  db: Kysely<Database>,
  q: { from: number; to: number; slices: number; step?: TableStep },
): Promise<TaskTypeStats[]> {
  const step = tableStep(q.from, q.to, q.step);
  const from = Math.floor(q.from);
  const slices = Math.max(1, Math.floor(q.slices));
  const width = Math.max(step, Math.ceil((q.to - from) / slices / step) * step);
  const offset = sql`(bucket - ${sql.lit(from)})`;
  const part = sql<number>`(${offset} - ${offset} % ${sql.lit(width)})`;
  const { rows } = await sql<Row>`SELECT task_name, ${part} AS part, MAX(bucket) AS last_seen, ${sums(TASK_STATS_VALUE_COLUMNS)}
    FROM task_stats WHERE step = ${sql.lit(step)} AND bucket >= ${from} AND bucket < ${Math.ceil(q.to)}
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

/**
 * Failures by (task name, exception class) in [from, to), most frequent
 * first, at most `limit`. First and last seen are bucket starts: minutes, or
 * hours when read by the hour (same default as taskTypeStats).
 */
export async function exceptionStats(
  db: Kysely<Database>,
  q: { from: number; to: number; name?: string; limit: number; step?: TableStep },
): Promise<ExceptionStats[]> {
  const step = tableStep(q.from, q.to, q.step);
  const limit = Math.max(0, Math.floor(q.limit));
  const name = q.name === undefined ? sql`` : sql` AND task_name = ${q.name}`;
  const { rows } =
    await sql<Row>`SELECT task_name, exception, SUM(${sql.ref('count')}) AS total, MIN(bucket) AS first_seen, MAX(bucket) AS last_seen
    FROM task_stats_exceptions WHERE step = ${sql.lit(step)} AND bucket >= ${Math.floor(q.from)} AND bucket < ${Math.ceil(q.to)}${name}
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
 * length the collector measured in it. A minute answer over hours whose
 * minutes are gone has the hour's largest at the hour's start. Queues in
 * name order.
 */
export async function queueLengthSeries(
  db: Kysely<Database>,
  q: { from: number; to: number; step: StatsStep },
): Promise<QueueLengthSeries[]> {
  const step = checkStep(q.step);
  const read = async (s: StatsStep) =>
    (
      await sql<Row>`SELECT queue, bucket, ${sql.ref('length')} AS len FROM queue_stats
        WHERE step = ${sql.lit(s)} AND bucket >= ${Math.floor(q.from)} AND bucket < ${Math.ceil(q.to)} ORDER BY queue, bucket`.execute(db)
    ).rows.map((r) => ({ queue: String(r.queue), t: num(r.bucket), length: num(r.len) }));
  let points = await read(step);
  if (step === 60) {
    const minuteHours = new Set(points.map((p) => `${p.queue}\0${p.t - (p.t % HOUR)}`));
    const gone = (await read(HOUR)).filter((h) => !minuteHours.has(`${h.queue}\0${h.t}`));
    if (gone.length > 0) points = [...points, ...gone].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : a.t - b.t));
  }
  const out: QueueLengthSeries[] = [];
  let current: QueueLengthSeries | undefined;
  for (const p of points) {
    if (current?.queue !== p.queue) {
      current = { queue: p.queue, points: [] };
      out.push(current);
    }
    current.points.push({ t: p.t, length: p.length });
  }
  return out;
}
