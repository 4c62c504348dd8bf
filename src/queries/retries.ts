// The retries of a task (POST /api/task/retry links each to its original by
// tasks.retried_from; migration 010 indexes it).

import type { Kysely } from 'kysely';
import type { Database } from '../shared/schema';

/** The newest retries shown on a task's page. */
export const RETRIES_SHOWN = 20;

/** The ids of the tasks that retry `uuid`, newest first. */
export async function retriesOf(db: Kysely<Database>, uuid: string, limit = RETRIES_SHOWN): Promise<string[]> {
  const rows = await db.selectFrom('tasks').select('uuid').where('retried_from', '=', uuid).orderBy('id', 'desc').limit(limit).execute();
  return rows.map((r) => r.uuid);
}
