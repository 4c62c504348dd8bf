// Read-only worker queries.

import type { Kysely } from 'kysely';
import type { CollectorStatusTable, Database, WorkerRow } from '../shared/schema';

/** Celery's default heartbeat interval for a worker that never said its own. */
const DEFAULT_FREQ = 60;

export interface WorkerView extends WorkerRow {
  /** Online and heard from within twice its heartbeat interval (Celery's `alive`). */
  alive: boolean;
}

export function isWorkerAlive(row: WorkerRow, now: number): boolean {
  if (row.status !== 'online' || row.last_heartbeat === null) return false;
  return now < row.last_heartbeat + (row.freq ?? DEFAULT_FREQ) * 2;
}

export async function listWorkers(db: Kysely<Database>, now: number, hostname?: string): Promise<WorkerView[]> {
  let query = db.selectFrom('workers').selectAll().orderBy('hostname');
  if (hostname !== undefined) query = query.where('hostname', '=', hostname);
  const rows = await query.execute();
  return rows.map((row) => ({ ...row, alive: isWorkerAlive(row, now) }));
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

export async function collectorStatuses(db: Kysely<Database>): Promise<CollectorStatusTable[]> {
  return db.selectFrom('collector_status').selectAll().orderBy('updated_at', 'desc').execute();
}
