import type { Kysely } from 'kysely';
import { KEY } from '../../src/shared/schema';
import { columnTypes } from './dialect';

/** Cached inspect replies per worker, and the audit log of every control and task action. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  const id = t.mysql ? 'bigint' : 'integer';
  await db.schema
    .createTable('worker_inspect')
    .addColumn('hostname', t.key(KEY.id), (c) => c.primaryKey())
    .addColumn('replies', t.text, (c) => c.notNull())
    .addColumn('inspected_at', t.double, (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();
  await db.schema
    .createTable('audit_log')
    .addColumn('id', id, (c) => c.primaryKey().autoIncrement())
    .addColumn('at', t.double, (c) => c.notNull())
    .addColumn('user', t.key(KEY.id), (c) => c.notNull())
    .addColumn('action', t.key(KEY.type), (c) => c.notNull())
    .addColumn('target', t.key(KEY.id))
    .addColumn('arguments', t.text)
    .addColumn('ok', t.int, (c) => c.notNull())
    .addColumn('result', t.text)
    .modifyEnd(t.tableEnd)
    .execute();
  await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_log').ifExists().execute();
  await db.schema.dropTable('worker_inspect').ifExists().execute();
}
