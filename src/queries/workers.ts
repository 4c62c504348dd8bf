// Read-only worker queries. The worker record and its rules are the
// collector's and the web app's contract (src/shared/workers.ts).

import type { Kysely } from 'kysely';
import type { CollectorStatusTable, Database } from '../shared/schema';
import type { HotState } from '../shared/hot-state';
import { eventCountsByWorker, judgeWorkers, type WorkerRecord, workerRecordFromRow, type WorkerSummary } from '../shared/workers';
import type { TaskCountsByName } from '../ui/views';

/** Every known worker with its counts, from the database. */
export async function workerRecords(db: Kysely<Database>, hostname?: string): Promise<WorkerRecord[]> {
  let query = db.selectFrom('workers').selectAll().orderBy('hostname');
  if (hostname !== undefined) query = query.where('hostname', '=', hostname);
  const [rows, counts] = await Promise.all([query.execute(), eventCountsByWorker(db)]);
  return rows.map((row) => workerRecordFromRow(row, counts.get(row.hostname) ?? {}));
}

/**
 * Records as the dashboard shows them: `alive` decided now, offline workers
 * silent for longer than `purgeOfflineAfter` seconds left out (Flower's
 * purge_offline_workers; 0 keeps them all), sorted by name.
 */
export function summarize(records: WorkerRecord[], now: number, purgeOfflineAfter = 0): WorkerSummary[] {
  return judgeWorkers(records, now, purgeOfflineAfter).sort((a, b) => a.hostname.localeCompare(b.hostname));
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
export async function currentWorkerRecords(db: Kysely<Database>, hot: HotState): Promise<WorkerRecord[]> {
  return (await hot.workers()) ?? (await workerRecords(db));
}

export async function collectorStatuses(db: Kysely<Database>): Promise<CollectorStatusTable[]> {
  return db.selectFrom('collector_status').selectAll().orderBy('updated_at', 'desc').execute();
}
