// The hot state the collector publishes (Redis or Upstash at the edge) and
// the web app reads, so the workers dashboard costs no SQL.

import type { WorkerRecord } from '../queries/workers';

export const HOT_WORKERS_KEY = 'stalk:workers';
/** Published state expires if the collector stops publishing. */
export const HOT_STATE_TTL_SECONDS = 60;
/** Readers ignore a snapshot older than this and ask the database instead. */
export const HOT_STATE_MAX_AGE_SECONDS = 30;

export interface WorkersSnapshot {
  /** Seconds since the epoch, collector clock. */
  updated_at: number;
  workers: WorkerRecord[];
}

/** Parse a published snapshot; null when missing, malformed or stale. */
export function readWorkersSnapshot(text: string | null | undefined, now: number): WorkerRecord[] | null {
  if (!text) return null;
  try {
    const snapshot = JSON.parse(text) as WorkersSnapshot;
    if (typeof snapshot.updated_at !== 'number' || !Array.isArray(snapshot.workers)) return null;
    if (now - snapshot.updated_at > HOT_STATE_MAX_AGE_SECONDS) return null;
    return snapshot.workers;
  } catch {
    return null;
  }
}
