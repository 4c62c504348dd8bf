// One prom-client Registry per scrape, filled from stored state: nothing
// lives in memory between scrapes, so every process and Worker isolate
// answers with the same numbers, and a restart loses nothing.

import { Registry } from 'prom-client';
import type { MetricsState } from '../queries/metrics';
import { DEFAULT_RUNTIME_BUCKETS } from './buckets';
import { addCeleryExporterMetrics } from './celery-exporter';
import { addFlowerMetrics } from './flower';
import { SeriesScope } from './series';
import { addStalkMetrics } from './stalk';

export interface MetricsOptions {
  /** Bounds of both runtime histograms (Flower's task_runtime_metric_buckets); a subset of the stored bounds. */
  runtimeBuckets?: readonly number[];
  /** Serve the collector's stored rendering while it is fresh (the Worker; src/metrics/snapshot.ts). */
  snapshots?: boolean;
}

export function buildMetricsRegistry(
  state: MetricsState,
  {
    now,
    purgeOfflineWorkers,
    runtimeBuckets = DEFAULT_RUNTIME_BUCKETS,
  }: { now: number; purgeOfflineWorkers: number; runtimeBuckets?: readonly number[] },
): Registry {
  const registry = new Registry();
  const scope = new SeriesScope(state.workers, now, purgeOfflineWorkers);
  addFlowerMetrics(registry, state, scope, runtimeBuckets);
  addCeleryExporterMetrics(registry, state, scope, runtimeBuckets);
  addStalkMetrics(registry, state, now);
  return registry;
}
