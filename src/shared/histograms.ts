// Histogram bucket bounds stored by the collector and exported by /metrics.
// The collector stores non-cumulative counts for the union of every bound any
// exporter needs, so Flower's buckets, celery-exporter's buckets and a user's
// own (a subset of the union) can all be summed from the same rows.

/** prometheus_client's Histogram.DEFAULT_BUCKETS, which Flower and celery-exporter use for runtimes. */
export const PROMETHEUS_DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** celery-exporter's queue wait buckets. */
export const QUEUE_WAIT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** Longer tails for slow tasks, so a user's coarse buckets still have a bound to land on. */
const LONG_TAIL = [30, 60, 120, 300, 600, 1800, 3600];

export const STORED_BUCKETS = unionBounds(PROMETHEUS_DEFAULT_BUCKETS, QUEUE_WAIT_BUCKETS, LONG_TAIL);

export function unionBounds(...lists: number[][]): number[] {
  return [...new Set(lists.flat().filter((n) => Number.isFinite(n) && n > 0))].sort((a, b) => a - b);
}

export function formatLe(bound: number): string {
  return bound === Number.POSITIVE_INFINITY ? '+Inf' : String(bound);
}

export function parseLe(text: string): number {
  return text === '+Inf' ? Number.POSITIVE_INFINITY : Number(text);
}
