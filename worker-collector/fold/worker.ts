// Pure folding of worker events, following Celery's Worker state: the last
// few heartbeats are kept in the collector's clock (local receive time), a
// worker is alive while its newest heartbeat is younger than twice its
// heartbeat interval, and worker-offline clears the heartbeats.

import type { WorkerEvent } from '../../src/shared/celery-events';
import type { WorkerRow } from '../../src/shared/schema';
import { heartbeatExpiry, storedNumberList } from '../../src/shared/workers';

export const HEARTBEATS_KEPT = 4;

export interface WorkerState {
  hostname: string;
  status: 'online' | 'offline';
  pid: number | null;
  freq: number | null;
  clock: number | null;
  active: number | null;
  processed: number | null;
  loadavg: number[] | null;
  sw_ident: string | null;
  sw_ver: string | null;
  sw_sys: string | null;
  utcoffset: number | null;
  heartbeats: number[];
  first_seen: number;
  offline_at: number | null;
}

export function newWorker(hostname: string, now: number): WorkerState {
  return {
    hostname,
    status: 'offline',
    pid: null,
    freq: null,
    clock: null,
    active: null,
    processed: null,
    loadavg: null,
    sw_ident: null,
    sw_ver: null,
    sw_sys: null,
    utcoffset: null,
    heartbeats: [],
    first_seen: now,
    offline_at: null,
  };
}

function withHeartbeat(heartbeats: number[], at: number): number[] {
  const next = [...heartbeats, at].sort((a, b) => a - b);
  return next.slice(Math.max(0, next.length - HEARTBEATS_KEPT));
}

/** When the newest heartbeat stops counting (the web app's rule: src/shared/workers.ts). */
export function heartbeatExpires(worker: WorkerState): number | null {
  const last = worker.heartbeats[worker.heartbeats.length - 1];
  return last === undefined ? null : heartbeatExpiry(last, worker.freq);
}

/** Apply a worker-online, worker-heartbeat or worker-offline event. */
export function foldWorkerEvent(previous: WorkerState | undefined, event: WorkerEvent): WorkerState {
  const worker = previous ?? newWorker(event.hostname, event.localReceived);
  const facts = {
    pid: event.pid ?? worker.pid,
    freq: event.freq ?? worker.freq,
    clock: Math.max(event.clock, worker.clock ?? 0),
    active: event.active ?? worker.active,
    processed: event.processed ?? worker.processed,
    loadavg: event.loadavg ?? worker.loadavg,
    sw_ident: event.sw_ident ?? worker.sw_ident,
    sw_ver: event.sw_ver ?? worker.sw_ver,
    sw_sys: event.sw_sys ?? worker.sw_sys,
    utcoffset: event.utcoffset ?? worker.utcoffset,
  };
  if (event.type === 'worker-offline') {
    return { ...worker, ...facts, status: 'offline', heartbeats: [], offline_at: event.localReceived };
  }
  return {
    ...worker,
    ...facts,
    status: 'online',
    heartbeats: withHeartbeat(worker.heartbeats, event.localReceived),
    offline_at: null,
  };
}

/** A task event from a worker is also a sign of life, as in Celery. */
export function touchWorker(previous: WorkerState | undefined, hostname: string, localReceived: number): WorkerState {
  const worker = previous ?? newWorker(hostname, localReceived);
  return { ...worker, status: 'online', heartbeats: withHeartbeat(worker.heartbeats, localReceived), offline_at: null };
}

/** Workers whose heartbeats expired by `now`, now marked offline. */
export function expireWorkers(workers: Iterable<WorkerState>, now: number): WorkerState[] {
  const expired: WorkerState[] = [];
  for (const worker of workers) {
    if (worker.status !== 'online') continue;
    const expires = heartbeatExpires(worker);
    if (expires === null || now >= expires) expired.push({ ...worker, status: 'offline', offline_at: now });
  }
  return expired;
}

export function workerToRow(worker: WorkerState): WorkerRow {
  return {
    hostname: worker.hostname,
    status: worker.status,
    pid: worker.pid,
    freq: worker.freq,
    clock: worker.clock,
    active: worker.active,
    processed: worker.processed,
    loadavg: worker.loadavg ? JSON.stringify(worker.loadavg) : null,
    sw_ident: worker.sw_ident,
    sw_ver: worker.sw_ver,
    sw_sys: worker.sw_sys,
    utcoffset: worker.utcoffset,
    heartbeats: JSON.stringify(worker.heartbeats),
    last_heartbeat: worker.heartbeats[worker.heartbeats.length - 1] ?? null,
    first_seen: worker.first_seen,
    offline_at: worker.offline_at,
  };
}

/** A stored list of numbers, without what is not a finite number (a heartbeat must be a time). */
function parseNumbers(text: string | null): number[] | null {
  return storedNumberList(text)?.filter(Number.isFinite) ?? null;
}

export function workerFromRow(row: WorkerRow): WorkerState {
  return {
    hostname: row.hostname,
    status: row.status === 'online' ? 'online' : 'offline',
    pid: row.pid,
    freq: row.freq,
    clock: row.clock,
    active: row.active,
    processed: row.processed,
    loadavg: parseNumbers(row.loadavg),
    sw_ident: row.sw_ident,
    sw_ver: row.sw_ver,
    sw_sys: row.sw_sys,
    utcoffset: row.utcoffset,
    heartbeats: parseNumbers(row.heartbeats) ?? [],
    first_seen: row.first_seen,
    offline_at: row.offline_at,
  };
}
