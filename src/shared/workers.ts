// The worker record: one worker as the collector publishes it (the hot
// state) and as the web app reads it (that hot state, or the workers table
// with the event counters), and the rules both programs apply to it: when a
// worker is alive, when an offline one leaves the views, and how its numbers
// are read back from a database.
//
// The other worker shapes are derived from this one where they are the same
// thing: WorkerSummary (a record judged alive or not at one time), the
// metrics' WorkerFacts (the few columns a scrape reads). Two stay apart on
// purpose: WorkerRow (schema.ts) is the table's row, lists as JSON text; the
// collector's WorkerState (worker-collector/fold/worker.ts) is the fold's
// state, heartbeats in the collector's clock.

import type { Kysely } from 'kysely';
import type { Database, WorkerRow } from './schema';

/** Celery's default heartbeat interval (`freq`) for a worker that never said its own. */
export const DEFAULT_HEARTBEAT_FREQ = 60;
/** Celery's HEARTBEAT_EXPIRE_WINDOW: a heartbeat is good for twice the interval. */
export const HEARTBEAT_EXPIRE_FACTOR = 2;

/** A worker's event-derived facts plus its events counted by type. */
export interface WorkerRecord {
  hostname: string;
  status: string;
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
  last_heartbeat: number | null;
  first_seen: number;
  offline_at: number | null;
  events: Record<string, number>;
  /** From a hot-state snapshot only: judge aliveness at this time (its heartbeat times may be seconds old; see readWorkersSnapshot). */
  alive_as_of?: number;
}

/** What the alive and purge rules read. */
export type WorkerLiveness = Pick<
  WorkerRecord,
  'hostname' | 'status' | 'freq' | 'last_heartbeat' | 'offline_at' | 'first_seen' | 'alive_as_of'
>;

/** A worker as a view shows it: judged alive or not at one time. */
export type Judged<T extends WorkerLiveness> = T & {
  /** Online and heard from within twice its heartbeat interval (Celery's `alive`). */
  alive: boolean;
};

/** The dashboard's worker: a record judged now. */
export type WorkerSummary = Judged<WorkerRecord>;

/**
 * When a worker was last heard from: its newest heartbeat, or for one that
 * said goodbye (worker-offline clears the heartbeats, as in Celery) the time
 * that came; null for a worker never heard from.
 */
export function lastSeen(worker: Pick<WorkerRecord, 'last_heartbeat' | 'offline_at'>): number | null {
  return worker.last_heartbeat ?? worker.offline_at;
}

/** Why a worker's actions are off, or null when it can act on them: an offline worker cannot answer. */
export function actionsOffReason(worker: { alive: boolean; hostname: string }): string | null {
  return worker.alive ? null : `${worker.hostname} is offline and cannot answer control commands`;
}

/** When a worker's last heartbeat stops counting (Celery's heartbeat_expires). */
export function heartbeatExpiry(lastHeartbeat: number, freq: number | null): number {
  return lastHeartbeat + (freq ?? DEFAULT_HEARTBEAT_FREQ) * HEARTBEAT_EXPIRE_FACTOR;
}

export function isWorkerAlive(worker: Pick<WorkerLiveness, 'status' | 'last_heartbeat' | 'freq' | 'alive_as_of'>, now: number): boolean {
  if (worker.status !== 'online' || worker.last_heartbeat === null) return false;
  const at = worker.alive_as_of === undefined ? now : Math.min(now, worker.alive_as_of);
  return at < heartbeatExpiry(worker.last_heartbeat, worker.freq);
}

/**
 * Whether a worker leaves the views: not alive, and silent for longer than
 * `purgeAfter` seconds (Flower's purge_offline_workers; 0 keeps them all).
 */
export function isPurged(worker: WorkerLiveness, alive: boolean, now: number, purgeAfter: number): boolean {
  if (alive || purgeAfter <= 0) return false;
  const last = worker.last_heartbeat ?? worker.offline_at ?? worker.first_seen;
  return now - last > purgeAfter;
}

/** Each worker judged at `now`, the purged ones left out; the order is kept. */
export function judgeWorkers<T extends WorkerLiveness>(workers: readonly T[], now: number, purgeAfter = 0): Judged<T>[] {
  const judged: Judged<T>[] = [];
  for (const worker of workers) {
    const alive = isWorkerAlive(worker, now);
    if (!isPurged(worker, alive, now, purgeAfter)) judged.push({ ...worker, alive });
  }
  return judged;
}

/** A number read back from a database: those reached over HTTP return BIGINT and DOUBLE as strings. */
export function storedNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** A list of numbers stored as JSON text (loadavg, heartbeats); null when absent or not a list. */
export function storedNumberList(text: string | null): number[] | null {
  if (!text) return null;
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.map(Number) : null;
  } catch {
    return null;
  }
}

export function workerRecordFromRow(row: WorkerRow, events: Record<string, number>): WorkerRecord {
  return {
    hostname: row.hostname,
    status: row.status,
    pid: storedNumber(row.pid),
    freq: storedNumber(row.freq),
    clock: storedNumber(row.clock),
    active: storedNumber(row.active),
    processed: storedNumber(row.processed),
    loadavg: storedNumberList(row.loadavg),
    sw_ident: row.sw_ident,
    sw_ver: row.sw_ver,
    sw_sys: row.sw_sys,
    utcoffset: storedNumber(row.utcoffset),
    heartbeats: storedNumberList(row.heartbeats) ?? [],
    last_heartbeat: storedNumber(row.last_heartbeat),
    first_seen: Number(row.first_seen),
    offline_at: storedNumber(row.offline_at),
    events,
  };
}

/**
 * Events counted per worker and type (Flower's per-worker counter). The web
 * app reads them into records; the collector reads them at start and on
 * taking the lease over, and counts on from there.
 */
export async function eventCountsByWorker(db: Kysely<Database>): Promise<Map<string, Record<string, number>>> {
  const rows = await db
    .selectFrom('event_counters')
    .select(['hostname', 'type'])
    .select((eb) => eb.fn.sum<number>('count').as('n'))
    .groupBy(['hostname', 'type'])
    .execute();
  const counts = new Map<string, Record<string, number>>();
  for (const row of rows) {
    const forWorker = counts.get(row.hostname) ?? {};
    forWorker[row.type] = Number(row.n);
    counts.set(row.hostname, forWorker);
  }
  return counts;
}
