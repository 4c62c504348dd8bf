// Read-only worker queries, and the worker record the dashboard shows
// (the same shape the collector publishes as hot state).

import type { Kysely } from 'kysely';
import type { CollectorStatusTable, Database, WorkerRow } from '../shared/schema';

/** Celery's default heartbeat interval for a worker that never said its own. */
const DEFAULT_FREQ = 60;

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

export interface WorkerSummary extends WorkerRecord {
  /** Online and heard from within twice its heartbeat interval (Celery's `alive`). */
  alive: boolean;
}

export function isWorkerAlive(row: Pick<WorkerRecord, 'status' | 'last_heartbeat' | 'freq' | 'alive_as_of'>, now: number): boolean {
  if (row.status !== 'online' || row.last_heartbeat === null) return false;
  const at = row.alive_as_of === undefined ? now : Math.min(now, row.alive_as_of);
  return at < row.last_heartbeat + (row.freq ?? DEFAULT_FREQ) * 2;
}

function numbers(text: string | null): number[] | null {
  if (!text) return null;
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.map(Number) : null;
  } catch {
    return null;
  }
}

/** Databases reached over HTTP return BIGINT as strings: every number is read through this. */
function num(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

export function workerRecordFromRow(row: WorkerRow, events: Record<string, number>): WorkerRecord {
  return {
    hostname: row.hostname,
    status: row.status,
    pid: num(row.pid),
    freq: num(row.freq),
    clock: num(row.clock),
    active: num(row.active),
    processed: num(row.processed),
    loadavg: numbers(row.loadavg),
    sw_ident: row.sw_ident,
    sw_ver: row.sw_ver,
    sw_sys: row.sw_sys,
    utcoffset: num(row.utcoffset),
    heartbeats: numbers(row.heartbeats) ?? [],
    last_heartbeat: num(row.last_heartbeat),
    first_seen: Number(row.first_seen),
    offline_at: num(row.offline_at),
    events,
  };
}

/** Events counted per worker and type (Flower's per-worker counter). */
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

/** Every known worker with its counts, from the database. */
export async function workerRecords(db: Kysely<Database>, hostname?: string): Promise<WorkerRecord[]> {
  let query = db.selectFrom('workers').selectAll().orderBy('hostname');
  if (hostname !== undefined) query = query.where('hostname', '=', hostname);
  const [rows, counts] = await Promise.all([query.execute(), eventCountsByWorker(db)]);
  return rows.map((row) => workerRecordFromRow(row, counts.get(row.hostname) ?? {}));
}

/**
 * Records as the dashboard shows them: `alive` decided now, and offline
 * workers silent for longer than `purgeOfflineAfter` seconds left out
 * (Flower's purge_offline_workers; 0 keeps them all).
 */
export function summarize(records: WorkerRecord[], now: number, purgeOfflineAfter = 0): WorkerSummary[] {
  const summaries: WorkerSummary[] = [];
  for (const record of records) {
    const alive = isWorkerAlive(record, now);
    if (!alive && purgeOfflineAfter > 0) {
      const last = record.last_heartbeat ?? record.offline_at ?? record.first_seen;
      if (now - last > purgeOfflineAfter) continue;
    }
    summaries.push({ ...record, alive });
  }
  return summaries.sort((a, b) => a.hostname.localeCompare(b.hostname));
}

export interface TaskCountsByName {
  name: string;
  received: number;
  succeeded: number;
  failed: number;
  retried: number;
}

/** How many tasks of each name a worker received, finished and retried (from the counters). */
export async function taskCountsForWorker(db: Kysely<Database>, hostname: string): Promise<TaskCountsByName[]> {
  const rows = await db
    .selectFrom('event_counters')
    .select(['task_name', 'type'])
    .select((eb) => eb.fn.sum<number>('count').as('n'))
    .where('hostname', '=', hostname)
    .where('type', 'in', ['task-received', 'task-succeeded', 'task-failed', 'task-retried'])
    .groupBy(['task_name', 'type'])
    .execute();
  const byName = new Map<string, TaskCountsByName>();
  for (const row of rows) {
    const entry = byName.get(row.task_name) ?? { name: row.task_name, received: 0, succeeded: 0, failed: 0, retried: 0 };
    const key = row.type.slice('task-'.length) as 'received' | 'succeeded' | 'failed' | 'retried';
    entry[key] = Number(row.n);
    byName.set(row.task_name, entry);
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** The collector's published snapshot when fresh, else the database. */
export async function currentWorkerRecords(db: Kysely<Database>, hot: { workers(): Promise<WorkerRecord[] | null> }): Promise<WorkerRecord[]> {
  return (await hot.workers()) ?? (await workerRecords(db));
}

export async function collectorStatuses(db: Kysely<Database>): Promise<CollectorStatusTable[]> {
  return db.selectFrom('collector_status').selectAll().orderBy('updated_at', 'desc').execute();
}
