// The contract between the collector's time-bucketed task statistics and
// what reads them (/stats pages, /api/stats/tasks). The collector keeps, per
// task name and per minute (rolled up to hours after a while), event counts
// by type and runtime / queue-wait histograms on STORED_BUCKETS, so any
// window's percentiles are exact to the bucket.

/** Bucket widths, in seconds. */
export const STATS_STEPS = [60, 3600] as const;
export type StatsStep = (typeof STATS_STEPS)[number];

/** Event counts kept per bucket, in this order. */
export const STATS_COUNTS = ['sent', 'received', 'started', 'succeeded', 'failed', 'retried', 'revoked', 'rejected'] as const;
export type StatsCount = (typeof STATS_COUNTS)[number];

/** One bucket of one series, as /api/stats/tasks answers it. */
export type StatsBucket = { t: number } & Record<StatsCount, number> & {
    runtime_p50: number | null;
    runtime_p95: number | null;
    runtime_p99: number | null;
    queue_wait_p95: number | null;
  };

export interface StatsSeries {
  /** Task name ('' for tasks whose name was never seen). */
  name: string;
  buckets: StatsBucket[];
}

export interface StatsAnswer {
  step: StatsStep;
  series: StatsSeries[];
}

/** One row of the task types table for a window. */
export interface TaskTypeStats {
  name: string;
  /** Final outcomes in the window (succeeded + failed + revoked + rejected). */
  count: number;
  succeeded: number;
  failed: number;
  retried: number;
  /** failed / (succeeded + failed), null when both are 0. */
  failureRatio: number | null;
  runtimeP50: number | null;
  runtimeP95: number | null;
  queueWaitP95: number | null;
  /** Epoch seconds of the last bucket with any event. */
  lastSeen: number | null;
  /** Succeeded + failed per slice of the window, oldest first (for a sparkline). */
  spark: number[];
}

/** Failures of one exception class (of one task name) in a window. */
export interface ExceptionStats {
  name: string;
  exception: string;
  count: number;
  /** Epoch seconds of the first and last bucket the class was seen in. */
  firstSeen: number;
  lastSeen: number;
}

/** A queue's length over time, sampled by the collector's broker polling. */
export interface QueueLengthSeries {
  queue: string;
  points: { t: number; length: number }[];
}
