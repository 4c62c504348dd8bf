import { type Kysely, sql } from 'kysely';
import { columnTypes } from './dialect';

/**
 * /metrics rendered ahead of time (worker-collector/metrics-snapshot.ts):
 * the exposition text, gzipped and cut into parts of at most 512 KiB (one
 * row each, so no row nears a database's packet or row limits), all parts
 * of one rendering written in one transaction. The Worker serves it while
 * it is fresh instead of rendering every scrape (src/metrics/snapshot.ts).
 * Times are epoch seconds as doubles, like every other time in the schema.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('metrics_snapshot')
    .addColumn('part', t.int, (c) => c.primaryKey())
    .addColumn('parts', t.int, (c) => c.notNull())
    .addColumn('taken_at', t.double, (c) => c.notNull())
    .addColumn('interval_seconds', t.double, (c) => c.notNull())
    .addColumn('options', t.key(255), (c) => c.notNull())
    .addColumn('text_bytes', t.bigint, (c) => c.notNull())
    .addColumn('body', t.mysql ? sql.raw('mediumblob') : 'blob', (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('metrics_snapshot').ifExists().execute();
}
