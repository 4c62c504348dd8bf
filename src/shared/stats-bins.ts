// How the task statistics store their histograms: one integer column per bin
// of STORED_BUCKETS (plus +Inf) and per metric, in the task_stats row itself,
// so a window's distribution is a SUM of columns over the rows it covers and
// a read never joins a second table. Bin i counts the observations in
// (bound[i-1], bound[i]]; the last bin counts those above the largest bound.

import { STORED_BUCKETS } from './histograms';
import { STATS_COUNTS } from './stats';

/** Upper bounds of the stored bins (seconds); the bin after the last is +Inf. */
export const STATS_BOUNDS: readonly number[] = STORED_BUCKETS;
export const STATS_BIN_COUNT = STATS_BOUNDS.length + 1;

export const STATS_METRICS = ['runtime', 'queue_wait'] as const;
export type StatsMetric = (typeof STATS_METRICS)[number];

const PREFIX: Record<StatsMetric, string> = { runtime: 'rt_', queue_wait: 'qw_' };

/** Column names of one metric's bins, in bound order (`rt_0` ... `rt_21`, `qw_0` ...). */
export function binColumns(metric: StatsMetric): string[] {
  return Array.from({ length: STATS_BIN_COUNT }, (_, i) => `${PREFIX[metric]}${i}`);
}

export const RUNTIME_BIN_COLUMNS = binColumns('runtime');
export const QUEUE_WAIT_BIN_COLUMNS = binColumns('queue_wait');

/** Every value column of task_stats, in the order the collector writes them. */
export const TASK_STATS_VALUE_COLUMNS: readonly string[] = [...STATS_COUNTS, ...RUNTIME_BIN_COLUMNS, ...QUEUE_WAIT_BIN_COLUMNS];

/** The bin an observation falls in (a value on a bound counts in that bound's bin, like Prometheus' `le`). */
export function binIndex(value: number): number {
  let lo = 0;
  let hi = STATS_BOUNDS.length;
  // First bound >= value; NaN and values past the last bound land in +Inf.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (value <= STATS_BOUNDS[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The q-quantile of a binned distribution: the upper bound of the bin where
 * the cumulative count first reaches q x total. When that is the +Inf bin,
 * the largest finite bound (as Prometheus' histogram_quantile does): the
 * answer then reads "at least that". Null when there is no observation.
 */
export function binQuantile(bins: readonly number[], q: number): number | null {
  let total = 0;
  for (const n of bins) total += n;
  if (total <= 0) return null;
  const rank = q * total;
  let cumulative = 0;
  for (let i = 0; i < bins.length; i++) {
    cumulative += bins[i]!;
    if (cumulative >= rank && cumulative > 0) return STATS_BOUNDS[Math.min(i, STATS_BOUNDS.length - 1)]!;
  }
  return STATS_BOUNDS[STATS_BOUNDS.length - 1]!;
}

/** Seconds since the epoch floored to the start of its bucket. */
export function bucketStart(seconds: number, step: number): number {
  return Math.floor(seconds / step) * step;
}
