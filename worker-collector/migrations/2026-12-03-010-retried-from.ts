import { type Kysely, sql } from 'kysely';
import { KEY } from '../../src/shared/schema';
import { columnTypes } from './dialect';

// A retry's link to the task it retried (POST /api/task/retry): written by
// the collector when it sends the retry, never by the event upsert, so the
// new task's events (before or after) leave it alone. The index finds the
// retries of a task for its page; most tasks are no retry, so SQLite leaves
// them out of it (MySQL has no partial indexes).

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema.alterTable('tasks').addColumn('retried_from', t.key(KEY.id)).execute();
  let index = db.schema.createIndex('tasks_retried_from').on('tasks').column('retried_from');
  if (!t.mysql) index = index.where(sql.ref('retried_from'), 'is not', null);
  await index.execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('tasks_retried_from').on('tasks').execute();
  await db.schema.alterTable('tasks').dropColumn('retried_from').execute();
}
