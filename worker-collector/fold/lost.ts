// What a LOST sweep judges (store/lost.ts does the marking), decided from
// the collector's worker registry; pure, no I/O.
//
// A worker whose heartbeats stopped may not be dead: the collector may have
// fallen behind (a backlog, a restart of its own), or the network between
// the worker and the broker may have dropped for a while. When such a worker
// is heard again and it is the same process (the same pid, and no
// worker-online, which a restarted worker sends first), its tasks were never
// lost: the sweep gives them back the state they had (a `revived` entry).
// A worker that said worker-offline, or came back as a new process, lost
// them for good; later events for them still converge as usual.

import type { CeleryEvent } from '../../src/shared/celery-events';
import type { WorkerState } from './worker';

/** How often the lease holder sweeps even when no worker went offline (workers offline at start, --lost-after). */
export const LOST_SWEEP_EVERY_MS = 15_000;
/** Expired workers remembered (autoscaled workers each have a new name): the oldest are forgotten first. */
const EXPIRED_KEPT = 10_000;

/** An offline worker, as the collector judged it. */
export interface OfflineWorker {
  hostname: string;
  /** When it went offline (collector clock, seconds). */
  at: number;
  /** 'event': it said so (worker-offline); 'heartbeat': its heartbeats stopped. */
  how: 'event' | 'heartbeat';
}

/** What one sweep checks, built by the collector (only while it holds the lease). */
export interface LostSweep {
  offline: OfflineWorker[];
  /** Workers heard again, same process: their tasks LOST with exactly `reason` get their state back. */
  revived: { hostname: string; reason: string }[];
  /** Seconds a sent task may wait to be received (0: never LOST for that). */
  lostAfter: number;
  /** The collector's clock, seconds. */
  now: number;
}

/** `2026-12-02 07:10:03 UTC` */
export function formatUtc(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** 3600 -> '1h', 90 -> '90s', 1.5 -> '1500ms': the duration syntax of the options. */
export function formatDuration(seconds: number): string {
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (seconds >= size && Number.isInteger(seconds / size)) return `${seconds / size}${unit}`;
  }
  return `${Math.round(seconds * 1000)}ms`;
}

export function offlineReason(worker: OfflineWorker): string {
  const how = worker.how === 'event' ? 'worker-offline event' : 'heartbeats stopped';
  return `worker ${worker.hostname} went offline at ${formatUtc(worker.at)} (${how})`;
}

export function neverReceivedReason(sent: number, lostAfter: number): string {
  return `sent at ${formatUtc(sent)}, never received within ${formatDuration(lostAfter)}`;
}

/** When the worker went offline, and how: a worker-offline event clears the heartbeats (fold/worker.ts), an expiry keeps them. */
function offlineFacts(w: WorkerState): OfflineWorker {
  const at = w.offline_at ?? w.heartbeats[w.heartbeats.length - 1] ?? w.first_seen;
  return { hostname: w.hostname, at, how: w.heartbeats.length === 0 ? 'event' : 'heartbeat' };
}

/**
 * The offline workers, each with when and how it went; null when there is
 * nothing to judge.
 */
export function lostSweep(workers: Iterable<WorkerState>, lostAfter: number, now: number): LostSweep | null {
  const offline: OfflineWorker[] = [];
  for (const w of workers) if (w.status === 'offline') offline.push(offlineFacts(w));
  if (offline.length === 0 && lostAfter <= 0) return null;
  return { offline, revived: [], lostAfter, now };
}

/** When sweeps are due, and which expired workers came back as the same process. */
export class LostTracker {
  /** Workers this collector saw expire: the pid they had, the reason their tasks got, and the pid of the first heartbeat since. */
  private readonly expired = new Map<string, { pid: number; reason: string; heard?: number | null }>();
  private due = true;
  private lastSweepAt = 0;

  constructor(private readonly lostAfter: number) {}

  /** A worker's heartbeats expired (the collector's check). */
  workerExpired(worker: WorkerState): void {
    this.due = true;
    if (worker.pid === null) return;
    this.expired.delete(worker.hostname);
    this.expired.set(worker.hostname, { pid: worker.pid, reason: offlineReason(offlineFacts(worker)) });
    if (this.expired.size > EXPIRED_KEPT) this.expired.delete(this.expired.keys().next().value!);
  }

  /** Every event the collector folds (before it is folded). */
  event(event: CeleryEvent): void {
    // Task events of an expired worker say nothing of its process; they converge their own tasks.
    if (event.kind !== 'worker') return;
    if (event.type === 'worker-offline') this.due = true;
    const expired = this.expired.get(event.hostname);
    if (!expired) return;
    // A new process (or one that says it is going): its tasks stay LOST.
    if (event.type !== 'worker-heartbeat') this.expired.delete(event.hostname);
    else if (expired.heard === undefined) {
      expired.heard = event.pid;
      this.due = true;
    }
  }

  /** The sweep for this flush, when one is due (`nowMs`: the collector's clock). */
  sweep(workers: Map<string, WorkerState>, nowMs: number): LostSweep | null {
    if (!this.due && nowMs - this.lastSweepAt < LOST_SWEEP_EVERY_MS) return null;
    this.due = false;
    this.lastSweepAt = nowMs;
    const revived: LostSweep['revived'] = [];
    for (const [hostname, was] of this.expired) {
      if (was.heard === undefined) continue;
      this.expired.delete(hostname);
      if (was.heard === was.pid) revived.push({ hostname, reason: was.reason });
    }
    const sweep = lostSweep(workers.values(), this.lostAfter, nowMs / 1000);
    if (!sweep && revived.length === 0) return null;
    return { ...(sweep ?? { offline: [], lostAfter: this.lostAfter, now: nowMs / 1000 }), revived };
  }
}
