import type { Kysely } from 'kysely';
import { KEY } from '../../src/shared/schema';
import { columnTypes } from './dialect';

/**
 * The collector's lease (worker-collector/lease.ts): one row per lease name,
 * naming the collector that may write and until when. Times are epoch
 * seconds as doubles, like every other time in the schema.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('collector_leases')
    .addColumn('name', t.key(KEY.name), (c) => c.primaryKey())
    .addColumn('holder', t.key(KEY.id), (c) => c.notNull())
    .addColumn('acquired_at', t.double, (c) => c.notNull())
    .addColumn('expires_at', t.double, (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('collector_leases').ifExists().execute();
}
