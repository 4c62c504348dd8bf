import type { Kysely } from 'kysely';
import { KEY } from '../../src/shared/schema';
import { TASK_STATS_VALUE_COLUMNS } from '../../src/shared/stats-bins';
import { columnTypes } from './dialect';

// Time-bucketed task statistics (src/shared/schema.ts, TaskStatsTable):
// minute and hour rows written by each flush, per name (task_stats) and for
// all names (task_stats_all); retention deletes old minutes, then old hours.
// The primary keys lead with (step, bucket), so a window over every task
// name is one range of the clustered index (MySQL) or of the key (SQLite);
// a second index serves one name's window. The histogram bins are columns
// (rt_0 ..., qw_0 ...), so a window's distribution is a SUM over its rows.
//
// Note: the bin columns follow STORED_BUCKETS as it is at this migration;
// changing those bounds needs a migration that adds columns.

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  let stats = db.schema
    .createTable('task_stats')
    .addColumn('step', t.int, (c) => c.notNull())
    .addColumn('bucket', t.bigint, (c) => c.notNull())
    .addColumn('task_name', t.key(KEY.name), (c) => c.notNull());
  for (const column of TASK_STATS_VALUE_COLUMNS) stats = stats.addColumn(column, t.bigint, (c) => c.notNull().defaultTo(0));
  await stats.addPrimaryKeyConstraint('task_stats_pk', ['step', 'bucket', 'task_name']).modifyEnd(t.tableEnd).execute();
  await db.schema.createIndex('task_stats_name').on('task_stats').columns(['task_name', 'step', 'bucket']).execute();

  let all = db.schema
    .createTable('task_stats_all')
    .addColumn('step', t.int, (c) => c.notNull())
    .addColumn('bucket', t.bigint, (c) => c.notNull());
  for (const column of TASK_STATS_VALUE_COLUMNS) all = all.addColumn(column, t.bigint, (c) => c.notNull().defaultTo(0));
  await all.addPrimaryKeyConstraint('task_stats_all_pk', ['step', 'bucket']).modifyEnd(t.tableEnd).execute();

  await db.schema
    .createTable('task_stats_exceptions')
    .addColumn('step', t.int, (c) => c.notNull())
    .addColumn('bucket', t.bigint, (c) => c.notNull())
    .addColumn('task_name', t.key(KEY.name), (c) => c.notNull())
    .addColumn('exception', t.key(KEY.exception), (c) => c.notNull())
    .addColumn('count', t.bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('task_stats_exceptions_pk', ['step', 'bucket', 'task_name', 'exception'])
    .modifyEnd(t.tableEnd)
    .execute();

  await db.schema
    .createTable('queue_stats')
    .addColumn('step', t.int, (c) => c.notNull())
    .addColumn('bucket', t.bigint, (c) => c.notNull())
    .addColumn('queue', t.key(KEY.name), (c) => c.notNull())
    .addColumn('length', t.bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('queue_stats_pk', ['step', 'bucket', 'queue'])
    .modifyEnd(t.tableEnd)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['queue_stats', 'task_stats_exceptions', 'task_stats_all', 'task_stats'])
    await db.schema.dropTable(table).ifExists().execute();
}
