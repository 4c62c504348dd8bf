import type { Kysely } from 'kysely';
import { KEY } from '../../src/shared/schema';
import { columnTypes } from './dialect';

/**
 * LOST tasks (worker-collector/store/lost.ts): the reason the collector set
 * that state, on the task row (null whenever an event's state holds), and
 * how many tasks of each name it moved to LOST, for the
 * `stalk_tasks_lost_total` counter. The table comes last: it is the marker.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema.alterTable('tasks').addColumn('state_reason', t.text).execute();
  await db.schema
    .createTable('lost_counters')
    .addColumn('task_name', t.key(KEY.name), (c) => c.primaryKey())
    .addColumn('count', t.bigint, (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('lost_counters').ifExists().execute();
  await db.schema.alterTable('tasks').dropColumn('state_reason').execute();
}
