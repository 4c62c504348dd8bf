// GET /metrics: Prometheus text exposition, built per scrape from stored
// state (src/metrics/registry.ts), with Flower's, celery-exporter's and
// Stalk's own metrics.
//
// Access is decided by the auth middleware in src/app.tsx, not here: open
// when no auth is configured; with auth, open only with --metrics-open, or
// to a bearer --metrics-token (Prometheus' `authorization` setting).

import { Hono } from 'hono';
import { unavailable } from '../errors';
import { buildMetricsRegistry } from '../metrics/registry';
import { readMetricsState } from '../queries/metrics';
import type { AppEnv } from '../services';
import { errorMessage } from '../shared/log';

export const metricsRoutes = new Hono<AppEnv>().get('/metrics', async (c) => {
  const services = c.var.services;
  let state;
  try {
    state = await readMetricsState(services.db);
  } catch (error) {
    // A failed scrape (Prometheus' up == 0) rather than numbers that look fine.
    services.log.warn(`/metrics: reading stored state failed: ${errorMessage(error)}`);
    throw unavailable('database unavailable');
  }
  const registry = buildMetricsRegistry(state, {
    now: services.now(),
    purgeOfflineWorkers: services.purgeOfflineWorkers,
    runtimeBuckets: services.metrics?.runtimeBuckets,
  });
  const body = await registry.metrics();
  return c.body(body, 200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
});
