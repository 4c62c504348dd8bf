import type { Kysely } from 'kysely';
import { KEY } from '../../src/shared/schema';
import { columnTypes } from './dialect';

/**
 * Alerts (worker-collector/alerts/): the rules as the collector loaded them
 * (the web app cannot read the --alerts file), each alert instance that is
 * pending or firing (read back at start, so a restart or a failover does not
 * notify again), and the history of firings and resolutions (pruned to 30
 * days and 10,000 rows).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  const id = t.mysql ? 'bigint' : 'integer';
  await db.schema
    .createTable('alert_rules')
    .addColumn('name', t.key(KEY.name), (c) => c.primaryKey())
    .addColumn('position', t.int, (c) => c.notNull())
    .addColumn('kind', t.key(KEY.type), (c) => c.notNull())
    .addColumn('definition', t.text, (c) => c.notNull())
    .addColumn('loaded_at', t.double, (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();
  await db.schema
    .createTable('alert_state')
    .addColumn('alert', t.key(KEY.name), (c) => c.notNull())
    .addColumn('labels_key', t.key(KEY.id), (c) => c.notNull())
    .addColumn('labels', t.text, (c) => c.notNull())
    .addColumn('status', t.key(16), (c) => c.notNull())
    .addColumn('since', t.double, (c) => c.notNull())
    .addColumn('value', t.double, (c) => c.notNull())
    .addColumn('threshold', t.double, (c) => c.notNull())
    .addColumn('updated_at', t.double, (c) => c.notNull())
    .addPrimaryKeyConstraint('alert_state_pk', ['alert', 'labels_key'])
    .modifyEnd(t.tableEnd)
    .execute();
  await db.schema
    .createTable('alert_history')
    .addColumn('id', id, (c) => c.primaryKey().autoIncrement())
    .addColumn('at', t.double, (c) => c.notNull())
    .addColumn('alert', t.key(KEY.name), (c) => c.notNull())
    .addColumn('kind', t.key(KEY.type), (c) => c.notNull())
    .addColumn('labels', t.text, (c) => c.notNull())
    .addColumn('status', t.key(16), (c) => c.notNull())
    .addColumn('since', t.double, (c) => c.notNull())
    .addColumn('value', t.double, (c) => c.notNull())
    .addColumn('threshold', t.double, (c) => c.notNull())
    .addColumn('delivery', t.text)
    .modifyEnd(t.tableEnd)
    .execute();
  await db.schema.createIndex('alert_history_at').on('alert_history').column('at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('alert_history').ifExists().execute();
  await db.schema.dropTable('alert_state').ifExists().execute();
  await db.schema.dropTable('alert_rules').ifExists().execute();
}
