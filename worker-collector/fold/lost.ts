// Which workers a LOST sweep judges (store/lost.ts does the marking): pure,
// from the collector's worker registry.

import type { LostSweep, OfflineWorker } from '../store/lost';
import type { WorkerState } from './worker';

/** How often the lease holder sweeps even when no worker went offline (workers offline at start, --lost-after). */
export const LOST_SWEEP_EVERY_MS = 15_000;

/**
 * The offline workers, each with when and how it went: a worker-offline
 * event clears the heartbeats (fold/worker.ts), an expiry keeps them.
 * Null when there is nothing to judge.
 */
export function lostSweep(workers: Iterable<WorkerState>, lostAfter: number, now: number): LostSweep | null {
  const offline: OfflineWorker[] = [];
  for (const w of workers) {
    if (w.status !== 'offline') continue;
    const at = w.offline_at ?? w.heartbeats[w.heartbeats.length - 1] ?? w.first_seen;
    offline.push({ hostname: w.hostname, at, how: w.heartbeats.length === 0 ? 'event' : 'heartbeat' });
  }
  if (offline.length === 0 && lostAfter <= 0) return null;
  return { offline, lostAfter, now };
}
