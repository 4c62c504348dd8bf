import type { Kysely } from 'kysely';
import { KEY } from '../../src/shared/schema';
import { columnTypes } from './dialect';

/** Queue lengths as the collector last measured them (the broker page and metrics). */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('queues')
    .addColumn('name', t.key(KEY.name), (c) => c.primaryKey())
    .addColumn('messages', t.bigint, (c) => c.notNull())
    .addColumn('ready', t.bigint)
    .addColumn('unacked', t.bigint)
    .addColumn('consumers', t.int)
    .addColumn('measured_at', t.double, (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('queues').ifExists().execute();
}
