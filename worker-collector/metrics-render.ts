// One /metrics rendering, stored (metrics-snapshot.ts runs it on its own
// thread; the benchmark and tests call it directly): read the state, render
// it with the web app's renderer, gzip it, replace the stored parts.

import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Kysely } from 'kysely';
import { renderMetrics, snapshotOptionsKey, snapshotRows } from '../src/metrics/snapshot';
import { readMetricsState } from '../src/queries/metrics';
import type { Database } from '../src/shared/schema';

const gzipAsync = promisify(gzip);

export interface MetricsSnapshotSettings {
  /** Seconds between renderings (0: none). */
  intervalSeconds: number;
  /** As the Worker's PURGE_OFFLINE_WORKERS and TASK_RUNTIME_METRIC_BUCKETS: a rendering with other options is not served. */
  purgeOfflineWorkers: number;
  runtimeBuckets: readonly number[];
}

export interface SnapshotFigures {
  /** Reading the state, and rendering it (the CPU a live scrape costs). */
  readMs: number;
  renderMs: number;
  textBytes: number;
  gzipBytes: number;
  parts: number;
}

/** One rendering, stored: read the state, render, gzip, replace the stored parts in one transaction. */
export async function storeMetricsSnapshot(
  db: Kysely<Database>,
  settings: MetricsSnapshotSettings,
  now = Date.now() / 1000,
): Promise<SnapshotFigures> {
  const started = performance.now();
  const state = await readMetricsState(db);
  const read = performance.now();
  const options = { purgeOfflineWorkers: settings.purgeOfflineWorkers, runtimeBuckets: settings.runtimeBuckets };
  const { text } = await renderMetrics(state, { now, ...options });
  const rendered = performance.now();
  const zipped = await gzipAsync(text, { level: 6 });
  const rows = snapshotRows({
    takenAt: now,
    intervalSeconds: settings.intervalSeconds,
    options: snapshotOptionsKey(options),
    textBytes: Buffer.byteLength(text),
    gzip: new Uint8Array(zipped.buffer, zipped.byteOffset, zipped.byteLength) as Uint8Array<ArrayBuffer>,
  });
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('metrics_snapshot').execute();
    for (const row of rows) await trx.insertInto('metrics_snapshot').values(row).execute();
  });
  return {
    readMs: read - started,
    renderMs: rendered - read,
    textBytes: Buffer.byteLength(text),
    gzipBytes: zipped.byteLength,
    parts: rows.length,
  };
}
