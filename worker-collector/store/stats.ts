// Time-bucketed task statistics, summed in memory per flush and added to the
// stored rows by the flush's upsert (migration 007): each minute's counts go
// to its minute row AND to its hour row, per task name and for all names
// together (task_stats_all), and per name to its UTC day row, so an hourly
// read never sums minutes, an "all tasks" read never sums names, and a
// 30-day table of task types sums days. Retention later deletes the old minute
// rows (the "rollup": their hours already hold them). Fed by
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

export const MINUTE = 60;
export const HOUR = 3600;
export const DAY = 86_400;
const STEPS = [MINUTE, HOUR] as const;
/** Per-name rows (counts and failures) are also kept by the (UTC) day, for the task-type and failure tables of long windows. */
const NAMED_STEPS = [MINUTE, HOUR, DAY] as const;

/** task_stats columns in the order StatsTally's rows hold them. */
export const TASK_STATS_COLUMNS: readonly string[] = ['step', 'bucket', 'task_name', ...TASK_STATS_VALUE_COLUMNS];
export const TASK_STATS_KEY = ['step', 'bucket', 'task_name'];
export const TASK_STATS_ALL_COLUMNS: readonly string[] = ['step', 'bucket', ...TASK_STATS_VALUE_COLUMNS];
export const TASK_STATS_ALL_KEY = ['step', 'bucket'];
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
  /** task_stats rows (minutes and hours) as arrays in TASK_STATS_COLUMNS order. */
  taskStats: unknown[][];
  /** task_stats_all rows (minutes and hours) as arrays in TASK_STATS_ALL_COLUMNS order. */
  taskStatsAll: unknown[][];
  taskStatsExceptions: TaskStatsExceptionsTable[];
}

/** Whether a StatsCount names a counted event type (`task-sent` -> sent). */
export function countedType(type: string): StatsCount | undefined {
  const i = COUNT_INDEX.get(type);
  return i === undefined ? undefined : STATS_COUNTS[i];
}

export class StatsTally {
  /** name -> minute -> cell (names are the fold's shared strings: no key is built per event). */
  private readonly byName = new Map<string, Map<number, Cell>>();
  private readonly exceptions = new Map<string, TaskStatsExceptionsTable>();
  // A task's events mostly share a minute: the last cell is kept at hand.
  private last: Cell | undefined;

  private cell(name: string, timestamp: number): Cell | undefined {
    if (!Number.isFinite(timestamp)) return undefined;
    const bucket = Math.floor(timestamp / MINUTE) * MINUTE;
    const last = this.last;
    if (last !== undefined && last.bucket === bucket && last.name === name) return last;
    let minutes = this.byName.get(name);
    if (!minutes) {
      minutes = new Map();
      this.byName.set(name, minutes);
    }
    let found = minutes.get(bucket);
    if (!found) {
      found = { bucket, name, values: new Array<number>(TASK_STATS_VALUE_COLUMNS.length).fill(0) };
      minutes.set(bucket, found);
    }
    this.last = found;
    return found;
  }

  private *cells(): IterableIterator<Cell> {
    for (const minutes of this.byName.values()) yield* minutes.values();
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
    for (const theirs of other.cells()) {
      const mine = this.cell(theirs.name, theirs.bucket);
      if (!mine) continue;
      for (let i = 0; i < theirs.values.length; i++) mine.values[i]! += theirs.values[i]!;
    }
    for (const e of other.exceptions.values()) this.addException(e.bucket, e.task_name, e.exception, e.count);
  }

  /**
   * Rows for the store: each minute's row, and the same counts added to its
   * hour's row, per name and for all names; names and exception classes cut
   * to their key columns (rows that then collide are merged).
   */
  deltas(): StatsDeltas {
    const rows = new Map<string, unknown[]>();
    const totals = new Map<string, unknown[]>();
    const addTo = (map: Map<string, unknown[]>, id: string, head: unknown[], values: number[]) => {
      const existing = map.get(id);
      if (!existing) {
        map.set(id, [...head, ...values]);
        return;
      }
      const offset = head.length;
      for (let i = 0; i < values.length; i++) (existing[offset + i] as number) += values[i]!;
    };
    for (const cell of this.cells()) {
      const name = cutText(cell.name, KEY.name);
      for (const step of NAMED_STEPS) {
        const bucket = Math.floor(cell.bucket / step) * step;
        addTo(rows, `${step}\0${bucket}\0${name}`, [step, bucket, name], cell.values);
        if (step !== DAY) addTo(totals, `${step}\0${bucket}`, [step, bucket], cell.values);
      }
    }
    const exceptions = new Map<string, TaskStatsExceptionsTable>();
    for (const e of this.exceptions.values()) {
      const taskName = cutText(e.task_name, KEY.name);
      const exception = cutText(e.exception, KEY.exception);
      for (const step of NAMED_STEPS) {
        const bucket = Math.floor(e.bucket / step) * step;
        const id = `${step}\0${bucket}\0${taskName}\0${exception}`;
        const existing = exceptions.get(id);
        if (existing) existing.count += e.count;
        else exceptions.set(id, { step, bucket, task_name: taskName, exception, count: e.count });
      }
    }
    return { taskStats: [...rows.values()], taskStatsAll: [...totals.values()], taskStatsExceptions: [...exceptions.values()] };
  }
}

/** queue_stats: each minute and each hour keeps the largest length measured in it. */
export function queueStatsWrite(db: Kysely<Database>, dialect: SqlDialect): BulkWrite {
  return new BulkWrite(db, dialect, 'queue_stats', ['step', 'bucket', 'queue', 'length'], {
    columns: ['step', 'bucket', 'queue'],
    assignments: maxAssignments(['length']),
  });
}

/** The queue_stats rows (its minute's and its hour's) of one measurement taken at `at` (epoch seconds). */
export function queueStatsRows(lengths: { name: string; messages: number }[], at: number): unknown[][] {
  return STEPS.flatMap((step) => {
    const bucket = Math.floor(at / step) * step;
    return lengths.map((q) => [step, bucket, cutText(q.name, KEY.name), q.messages]);
  });
}
