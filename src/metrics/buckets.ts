// The runtime histogram's bucket bounds, Flower's `task_runtime_metric_buckets`
// (`--task-runtime-metric-buckets 1,5,10,inf`). The collector stores counts
// for a fixed union of bounds (src/shared/histograms.ts), and /metrics sums
// them into the bounds asked for; a bound outside the union would need counts
// that were never kept, so it is refused when the program starts.

import { formatLe, PROMETHEUS_DEFAULT_BUCKETS, STORED_BUCKETS } from '../shared/histograms';

/** Flower's default (prometheus_client's Histogram.DEFAULT_BUCKETS), also celery-exporter's. */
export const DEFAULT_RUNTIME_BUCKETS: readonly number[] = PROMETHEUS_DEFAULT_BUCKETS;

export class BucketOptionError extends Error {
  override name = 'BucketOptionError';
}

/**
 * Comma-separated bounds in seconds, in any order; `inf`/`+Inf` may be given
 * and is always implied (as Flower appends it). '' gives the default. Each
 * finite bound must be one the collector stores.
 */
export function parseRuntimeBuckets(text: string, option = '--task-runtime-metric-buckets'): number[] {
  const trimmed = text.trim();
  if (trimmed === '') return [...DEFAULT_RUNTIME_BUCKETS];
  const bounds = new Set<number>();
  for (const part of trimmed.split(',')) {
    const item = part.trim();
    if (/^\+?inf(inity)?$/i.test(item)) continue;
    const value = Number(item);
    if (item === '' || !Number.isFinite(value) || value <= 0) {
      throw new BucketOptionError(`${option}: '${item}' is not a positive number of seconds (or inf)`);
    }
    if (!STORED_BUCKETS.includes(value)) {
      throw new BucketOptionError(
        `${option}: ${item} is not a stored bucket bound; choose among ${STORED_BUCKETS.map(formatLe).join(', ')} (and inf)`,
      );
    }
    bounds.add(value);
  }
  if (bounds.size === 0) throw new BucketOptionError(`${option}: give at least one finite bound besides inf`);
  return [...bounds].sort((a, b) => a - b);
}
