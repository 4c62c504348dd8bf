// /metrics rendered ahead of time. At tens of thousands of series a scrape
// costs hundreds of milliseconds of CPU to render, more than a Worker may
// spend; so the collector renders the exposition text once per interval
// (worker-collector/metrics-snapshot.ts, on a thread of its own), from the
// same stored state and with the same renderer as a live scrape, and stores
// it gzipped (table metrics_snapshot, migration 008). The Worker serves that
// text while it is younger than two intervals and was rendered with the
// Worker's own options; otherwise it renders live, as before.

import type { Kysely } from 'kysely';
import type { MetricsState } from '../queries/metrics';
import type { Database, MetricsSnapshotTable } from '../shared/schema';
import { DEFAULT_RUNTIME_BUCKETS } from './buckets';
import { buildMetricsRegistry } from './registry';

/** A stored rendering is cut into rows of at most this many gzipped bytes. */
export const SNAPSHOT_PART_BYTES = 512 * 1024;

/** Response header saying how /metrics was answered: `snapshot; age=<s>` or `live; <why>`. */
export const METRICS_SOURCE_HEADER = 'X-Stalk-Metrics';

export interface RenderOptions {
  now: number;
  purgeOfflineWorkers: number;
  runtimeBuckets?: readonly number[] | undefined;
}

/** The exposition text of a state, as every /metrics answers it. */
export async function renderMetrics(state: MetricsState, options: RenderOptions): Promise<{ text: string; contentType: string }> {
  const registry = buildMetricsRegistry(state, {
    now: options.now,
    purgeOfflineWorkers: options.purgeOfflineWorkers,
    runtimeBuckets: options.runtimeBuckets ?? DEFAULT_RUNTIME_BUCKETS,
  });
  return { text: await registry.metrics(), contentType: registry.contentType };
}

/** What a rendering depends on besides the state: a stored one is served only where these are the same. */
export function snapshotOptionsKey(options: Omit<RenderOptions, 'now'>): string {
  return JSON.stringify({ purge: options.purgeOfflineWorkers, buckets: options.runtimeBuckets ?? DEFAULT_RUNTIME_BUCKETS });
}

export interface StoredSnapshot {
  takenAt: number;
  intervalSeconds: number;
  options: string;
  textBytes: number;
  /** The gzipped exposition text. */
  gzip: Uint8Array<ArrayBuffer>;
}

/** The rows of one rendering, gzipped text cut into parts. */
export function snapshotRows(snapshot: StoredSnapshot): MetricsSnapshotTable[] {
  const parts = Math.max(1, Math.ceil(snapshot.gzip.byteLength / SNAPSHOT_PART_BYTES));
  return Array.from({ length: parts }, (_, part) => ({
    part,
    parts,
    taken_at: snapshot.takenAt,
    interval_seconds: snapshot.intervalSeconds,
    options: snapshot.options,
    text_bytes: snapshot.textBytes,
    body: snapshot.gzip.subarray(part * SNAPSHOT_PART_BYTES, (part + 1) * SNAPSHOT_PART_BYTES),
  }));
}

/** Bytes as the drivers hand a BLOB over: Buffer, Uint8Array, or (never expected) text. */
function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return new TextEncoder().encode(value);
  throw new TypeError('metrics_snapshot.body is not binary');
}

/** The stored rendering in one query; null when there is none or its parts do not belong together. */
export async function readMetricsSnapshot(db: Kysely<Database>): Promise<StoredSnapshot | null> {
  const rows = await db.selectFrom('metrics_snapshot').selectAll().orderBy('part').execute();
  const first = rows[0];
  if (!first) return null;
  const parts = Number(first.parts);
  const takenAt = Number(first.taken_at);
  // Written in one transaction, so always whole; checked anyway (a hand-edited table, a driver's surprise).
  if (rows.length !== parts || rows.some((r, i) => Number(r.part) !== i || Number(r.taken_at) !== takenAt)) return null;
  const chunks = rows.map((r) => bytesOf(r.body));
  const gzip = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    gzip.set(chunk, at);
    at += chunk.byteLength;
  }
  return {
    takenAt,
    intervalSeconds: Number(first.interval_seconds),
    options: first.options,
    textBytes: Number(first.text_bytes),
    gzip,
  };
}

/** Whether a stored rendering may answer a scrape now: young enough (two intervals) and rendered with these options. */
export function servable(snapshot: StoredSnapshot, now: number, optionsKey: string): string | null {
  if (snapshot.options !== optionsKey) return 'rendered with other options';
  const age = now - snapshot.takenAt;
  // A clock a little ahead on the collector's side is no reason to refuse.
  if (age < -5 || age >= 2 * snapshot.intervalSeconds) return `stale (${age.toFixed(1)} s old)`;
  return null;
}
