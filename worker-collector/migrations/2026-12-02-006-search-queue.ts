import { type Kysely, sql } from 'kysely';
import { FINAL, indexingTriggers, SEARCHED } from './2026-11-24-003-search';
import { columnTypes } from './dialect';

// SQLite's text index, off the write path. Migration 003 kept the FTS5 table
// in step with triggers that inserted one row per task: inside an upsert
// each of those inserts runs in its own statement savepoint, where FTS5
// writes out its pending terms, so a task cost about 60 µs to index
// (bench/store.ts). The triggers now only note which tasks need (re)indexing
// in `search_queue`; the store indexes them in bulk, one INSERT ... SELECT per
// chunk, after its flushes (about 9 µs a task; store/search-index.ts).
// Searches treat queued tasks as candidates (src/queries/tasks.ts), so
// nothing is missed while the index catches up.
//
// MySQL/MariaDB keep their FULLTEXT index (InnoDB maintains it at commit);
// the table exists there too, empty, so both dialects share one schema.

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('search_queue')
    // SQLite: `integer primary key` makes the task id the rowid itself; a
    // `bigint` key was a second B-tree beside the rowid, two inserts for each
    // task the triggers note inside the flush's upsert (bench/store.ts spent
    // about 8 % more CPU in all). Databases made before keep that layout,
    // which behaves the same.
    .addColumn('task_id', t.mysql ? t.bigint : 'integer', (c) => c.primaryKey())
    // 1: the task may be in the index already (its old row is deleted first).
    .addColumn('reindex', t.int, (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();
  if (t.mysql) return;
  const cols = SEARCHED.join(', ');
  const changed = SEARCHED.map((c) => `old.${c} IS NOT new.${c}`).join(' OR ');
  const statements = [
    'DROP TRIGGER IF EXISTS tasks_search_insert',
    'DROP TRIGGER IF EXISTS tasks_search_update',
    `CREATE TRIGGER tasks_search_queue_insert AFTER INSERT ON tasks WHEN new.state IN ${FINAL} BEGIN ` +
      'INSERT INTO search_queue(task_id, reindex) VALUES (new.id, 0) ON CONFLICT(task_id) DO NOTHING; END',
    // Leaving, entering or changing within the final states (as migration 003's trigger).
    `CREATE TRIGGER tasks_search_queue_update AFTER UPDATE OF state, ${cols} ON tasks ` +
      `WHEN (old.state IN ${FINAL}) <> (new.state IN ${FINAL}) OR (new.state IN ${FINAL} AND (${changed})) BEGIN ` +
      `INSERT INTO search_queue(task_id, reindex) VALUES (new.id, old.state IN ${FINAL}) ` +
      'ON CONFLICT(task_id) DO UPDATE SET reindex = MAX(reindex, excluded.reindex); END',
  ];
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (!columnTypes(db).mysql) {
    const cols = SEARCHED.join(', ');
    const statements = [
      'DROP TRIGGER IF EXISTS tasks_search_queue_insert',
      'DROP TRIGGER IF EXISTS tasks_search_queue_update',
      // What the queue still held goes into the index, as migration 003's triggers would have put it.
      'DELETE FROM tasks_search WHERE rowid IN (SELECT task_id FROM search_queue WHERE reindex = 1)',
      `INSERT INTO tasks_search(rowid, ${cols}) SELECT id, ${cols} FROM tasks WHERE id IN (SELECT task_id FROM search_queue) AND state IN ${FINAL}`,
      ...indexingTriggers(),
    ];
    for (const statement of statements) await sql.raw(statement).execute(db);
  }
  await db.schema.dropTable('search_queue').execute();
}
