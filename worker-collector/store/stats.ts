// Time-bucketed task statistics, summed in memory per flush and added to the
// stored minute rows by the flush's upsert (migration 007). Fed by
// MetricTally.taskEvents (counters.ts), so every place that counts a task's
// events for the metrics (the flush payload, the store's name lookups, the
// overload shed path) counts them here too, under the same name: each event
// in the minute of its own timestamp, a runtime in its task-succeeded's
// minute, a queue wait in its task-started's minute.

import type { Kysely } from 'kysely';
import { type Database, KEY, type SqlDialect, type TaskStatsExceptionsTable } from '../../src/shared/schema';
import { STATS_COUNTS, type StatsCount } from '../../src/shared/stats';
import { binIndex, type StatsMetric, TASK_STATS_VALUE_COLUMNS } from '../../src/shared/stats-bins';
import { cutText } from '../../src/shared/text';
import { BulkWrite, maxAssignments } from './upsert';

/** Minute rows: the collector writes nothing else; the rollup makes hour rows. */
export const MINUTE = 60;

/** task_stats columns in the order StatsTally's rows hold them. */
export const TASK_STATS_COLUMNS: readonly string[] = ['step', 'bucket', 'task_name', ...TASK_STATS_VALUE_COLUMNS];
export const TASK_STATS_KEY = ['step', 'bucket', 'task_name'];
export const TASK_STATS_EXCEPTION_COLUMNS = ['step', 'bucket', 'task_name', 'exception', 'count'];
export const TASK_STATS_EXCEPTION_KEY = ['step', 'bucket', 'task_name', 'exception'];

const COUNT_INDEX = new Map<string, number>(STATS_COUNTS.map((c, i) => [`task-${c}`, i]));
const COUNTS = STATS_COUNTS.length;
const BINS_AT: Record<StatsMetric, number> = { runtime: COUNTS, queue_wait: COUNTS + (TASK_STATS_VALUE_COLUMNS.length - COUNTS) / 2 };

interface Cell {
  bucket: number;
  name: string;
  /** TASK_STATS_VALUE_COLUMNS order: the counts, then runtime bins, then queue-wait bins. */
  values: number[];
}

export interface StatsDeltas {
  /** task_stats rows as arrays in TASK_STATS_COLUMNS order. */
  taskStats: unknown[][];
  taskStatsExceptions: TaskStatsExceptionsTable[];
}

/** Whether a StatsCount names a counted event type (`task-sent` -> sent). */
export function countedType(type: string): StatsCount | undefined {
  const i = COUNT_INDEX.get(type);
  return i === undefined ? undefined : STATS_COUNTS[i];
}

export class StatsTally {
  private readonly cells = new Map<string, Cell>();
  private readonly exceptions = new Map<string, TaskStatsExceptionsTable>();
  // A task's events mostly share a minute: the last cell is kept at hand.
  private last: Cell | undefined;

  private cell(name: string, timestamp: number): Cell | undefined {
    if (!Number.isFinite(timestamp)) return undefined;
    const bucket = Math.floor(timestamp / MINUTE) * MINUTE;
    const last = this.last;
    if (last !== undefined && last.bucket === bucket && last.name === name) return last;
    const key = `${bucket}\0${name}`;
    let found = this.cells.get(key);
    if (!found) {
      found = { bucket, name, values: new Array<number>(TASK_STATS_VALUE_COLUMNS.length).fill(0) };
      this.cells.set(key, found);
    }
    this.last = found;
    return found;
  }

  /** One event of a task named `name` ('' when unknown); `exception`: the class of a task-failed, else ''. */
  event(name: string, type: string, timestamp: number, exception: string): void {
    const index = COUNT_INDEX.get(type);
    if (index === undefined) return;
    const cell = this.cell(name, timestamp);
    if (!cell) return;
    cell.values[index]! += 1;
    if (index === 4 /* failed */) this.addException(cell.bucket, name, exception, 1);
  }

  observe(metric: StatsMetric, name: string, timestamp: number, value: number): void {
    const cell = this.cell(name, timestamp);
    if (cell) cell.values[BINS_AT[metric] + binIndex(value)]! += 1;
  }

  private addException(bucket: number, name: string, exception: string, n: number): void {
    const key = `${bucket}\0${name}\0${exception}`;
    const found = this.exceptions.get(key);
    if (found) found.count += n;
    else this.exceptions.set(key, { step: MINUTE, bucket, task_name: name, exception, count: n });
  }

  /** Add another tally's counts to this one's. */
  absorb(other: StatsTally): void {
    for (const theirs of other.cells.values()) {
      const mine = this.cell(theirs.name, theirs.bucket);
      if (!mine) continue;
      for (let i = 0; i < theirs.values.length; i++) mine.values[i]! += theirs.values[i]!;
    }
    for (const e of other.exceptions.values()) this.addException(e.bucket, e.task_name, e.exception, e.count);
  }

  /** Rows for the store, names and exception classes cut to their key columns (rows that then collide are merged). */
  deltas(): StatsDeltas {
    const rows = new Map<string, unknown[]>();
    for (const cell of this.cells.values()) {
      const name = cutText(cell.name, KEY.name);
      const id = `${cell.bucket}\0${name}`;
      const existing = rows.get(id);
      if (!existing) {
        rows.set(id, [MINUTE, cell.bucket, name, ...cell.values]);
        continue;
      }
      for (let i = 0; i < cell.values.length; i++) (existing[3 + i] as number) += cell.values[i]!;
    }
    const exceptions = new Map<string, TaskStatsExceptionsTable>();
    for (const e of this.exceptions.values()) {
      const row = { ...e, task_name: cutText(e.task_name, KEY.name), exception: cutText(e.exception, KEY.exception) };
      const id = `${row.bucket}\0${row.task_name}\0${row.exception}`;
      const existing = exceptions.get(id);
      if (existing) existing.count += row.count;
      else exceptions.set(id, row);
    }
    return { taskStats: [...rows.values()], taskStatsExceptions: [...exceptions.values()] };
  }
}

/** queue_stats: each minute keeps the largest length measured in it (the hour rollup keeps the largest minute). */
export function queueStatsWrite(db: Kysely<Database>, dialect: SqlDialect): BulkWrite {
  return new BulkWrite(db, dialect, 'queue_stats', ['step', 'bucket', 'queue', 'length'], {
    columns: ['step', 'bucket', 'queue'],
    assignments: maxAssignments(['length']),
  });
}

/** The queue_stats rows of one measurement taken at `at` (epoch seconds). */
export function queueStatsRows(lengths: { name: string; messages: number }[], at: number): unknown[][] {
  const bucket = Math.floor(at / MINUTE) * MINUTE;
  return lengths.map((q) => [MINUTE, bucket, cutText(q.name, KEY.name), q.messages]);
}
