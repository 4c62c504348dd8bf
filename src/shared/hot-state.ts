// The hot state the collector publishes (Redis or Upstash at the edge) and
// the web app reads, so the workers dashboard costs no SQL.

import type { WorkerRecord } from './workers';

/**
 * The web app's view of it: what the collector published on its last flush
 * (in-process locally, Redis or Upstash at the edge). Null when there is no
 * fresh snapshot: callers fall back to the database.
 */
export interface HotState {
  workers(): Promise<WorkerRecord[] | null>;
}

export const NO_HOT_STATE: HotState = { workers: async () => null };

export const HOT_WORKERS_KEY = 'stalk:workers';
/** Published state expires if the collector stops publishing. */
export const HOT_STATE_TTL_SECONDS = 60;
/** Readers ignore a snapshot older than this and ask the database instead. */
export const HOT_STATE_MAX_AGE_SECONDS = 30;
/**
 * The collector republishes at least this often while it runs, even when
 * only heartbeats changed (or nothing did), and publishes other changes
 * (a worker online or offline, tasks counted) within a second. A third of
 * HOT_STATE_MAX_AGE_SECONDS: a snapshot goes stale only after two missed
 * publishes in a row.
 */
export const HOT_STATE_REFRESH_SECONDS = 10;
/** Changes other than heartbeats are published no more often than this. */
export const HOT_STATE_MIN_INTERVAL_SECONDS = 1;

export interface WorkersSnapshot {
  /** Seconds since the epoch, collector clock. */
  updated_at: number;
  workers: WorkerRecord[];
}

/**
 * Parse a published snapshot; null when missing, malformed or stale. Its
 * heartbeat times may be up to HOT_STATE_REFRESH_SECONDS old, so each online
 * worker is judged alive as of the snapshot's time (`alive_as_of`): the
 * collector publishes a worker going offline within a second, and a
 * snapshot from a collector that stopped goes stale.
 */
export function readWorkersSnapshot(text: string | null | undefined, now: number): WorkerRecord[] | null {
  if (!text) return null;
  try {
    const snapshot = JSON.parse(text) as WorkersSnapshot;
    if (typeof snapshot.updated_at !== 'number' || !Array.isArray(snapshot.workers)) return null;
    if (now - snapshot.updated_at > HOT_STATE_MAX_AGE_SECONDS) return null;
    return snapshot.workers.map((worker) => (worker.status === 'online' ? { ...worker, alive_as_of: snapshot.updated_at } : worker));
  } catch {
    return null;
  }
}
