// GET /metrics: Prometheus text exposition, built from stored state
// (src/metrics/registry.ts), with Flower's, celery-exporter's and Stalk's
// own metrics. Where services say so (the Worker), the collector's stored
// rendering is served while it is fresh (src/metrics/snapshot.ts), gzipped as
// stored when the scraper accepts it (Prometheus does); otherwise, or when
// it is stale, it is rendered per scrape. The X-Stalk-Metrics header says which.
//
// Access is decided by the auth middleware in src/app.tsx, not here: open
// when no auth is configured; with auth, open only with --metrics-open, or
// to a bearer --metrics-token (Prometheus' `authorization` setting).

import { type Context, Hono } from 'hono';
import { unavailable } from '../errors';
import {
  METRICS_SOURCE_HEADER,
  readMetricsSnapshot,
  renderMetrics,
  type StoredSnapshot,
  servable,
  snapshotOptionsKey,
} from '../metrics/snapshot';
import { readMetricsState } from '../queries/metrics';
import type { AppEnv } from '../services';
import { errorMessage } from '../shared/log';

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The stored rendering as the answer: its gzip as stored when accepted, else decompressed on the way out. */
function snapshotResponse(c: Context, snapshot: StoredSnapshot, age: number): Response {
  const headers = new Headers({
    'Content-Type': CONTENT_TYPE,
    'Cache-Control': 'no-store',
    Vary: 'Accept-Encoding',
    [METRICS_SOURCE_HEADER]: `snapshot; age=${Math.max(0, age).toFixed(1)}`,
  });
  if (/\bgzip\b/i.test(c.req.header('Accept-Encoding') ?? '')) {
    headers.set('Content-Encoding', 'gzip');
    // encodeBody 'manual': the Workers runtime sends the bytes as they are (already gzip); Node ignores it.
    return new Response(snapshot.gzip, { status: 200, headers, encodeBody: 'manual' } as ResponseInit);
  }
  const body = new Blob([snapshot.gzip]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(body, { status: 200, headers });
}

export const metricsRoutes = new Hono<AppEnv>().get('/metrics', async (c) => {
  const services = c.var.services;
  const options = { purgeOfflineWorkers: services.purgeOfflineWorkers, runtimeBuckets: services.metrics?.runtimeBuckets };
  let why = 'rendered per scrape';
  if (services.metrics?.snapshots) {
    let snapshot: StoredSnapshot | null = null;
    try {
      snapshot = await readMetricsSnapshot(services.db);
    } catch (error) {
      // No table yet (migration 008 not deployed), a part unreadable: render instead.
      services.log.warn(`/metrics: reading the stored rendering failed: ${errorMessage(error)}`);
    }
    const now = services.now();
    const refusal = snapshot ? servable(snapshot, now, snapshotOptionsKey(options)) : 'no stored rendering';
    if (snapshot && refusal === null) return snapshotResponse(c, snapshot, now - snapshot.takenAt);
    why = refusal ?? why;
  }
  let state;
  try {
    state = await readMetricsState(services.db);
  } catch (error) {
    // A failed scrape (Prometheus' up == 0) rather than numbers that look fine.
    services.log.warn(`/metrics: reading stored state failed: ${errorMessage(error)}`);
    throw unavailable('database unavailable');
  }
  const { text, contentType } = await renderMetrics(state, { now: services.now(), ...options });
  return c.body(text, 200, { 'Content-Type': contentType, 'Cache-Control': 'no-store', [METRICS_SOURCE_HEADER]: `live; ${why}` });
});
