import { type Kysely, sql } from 'kysely';
import { columnTypes } from './dialect';

// Text search over tasks, backed by an index rather than a scan, with the
// same meaning in both dialects: words are found by prefix (a search term
// must start where a word starts), and queries confirm each candidate with
// LIKE (src/queries/tasks.ts).
//
// MySQL/MariaDB/PlanetScale: an InnoDB FULLTEXT index.
// SQLite: a contentless FTS5 table kept in step by triggers. An FTS5 insert
// costs about 35 us a row (measured), the biggest single cost of a flush, so
// only tasks in a final state are indexed, once; the few tasks still in
// flight are searched through the (state, timestamp) index instead.

export const SEARCHED = ['uuid', 'name', 'worker', 'args', 'kwargs', 'result', 'exception'];
export const FINAL = "('SUCCESS', 'FAILURE', 'REVOKED')";

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  if (t.mysql) {
    // Stopwords off for this index where the server lets us, so that "for"
    // or "with" are indexed too. Optional: a PlanetScale deploy request (or a
    // server that refuses the setting) builds the index with InnoDB's default
    // stopwords, and searches never look a stopword up in the index
    // (src/queries/tasks.ts). `--print` shows it commented out.
    await sql`SET SESSION innodb_ft_enable_stopword = OFF`.execute(db).catch(() => undefined);
    await sql.raw(`ALTER TABLE \`tasks\` ADD FULLTEXT INDEX \`tasks_search\` (${SEARCHED.map((c) => `\`${c}\``).join(', ')})`).execute(db);
    return;
  }
  const cols = SEARCHED.join(', ');
  const statements = [
    `CREATE VIRTUAL TABLE tasks_search USING fts5(${cols}, tokenize="unicode61 tokenchars '_'", content='', contentless_delete=1)`,
    `INSERT INTO tasks_search(rowid, ${cols}) SELECT id, ${cols} FROM tasks WHERE state IN ${FINAL}`,
    ...indexingTriggers(),
    `CREATE TRIGGER tasks_search_delete AFTER DELETE ON tasks WHEN old.state IN ${FINAL} BEGIN DELETE FROM tasks_search WHERE rowid = old.id; END`,
  ];
  for (const statement of statements) await sql.raw(statement).execute(db);
}

/** The triggers that index a task as it reaches (or changes in) a final state; migration 006 replaces them. */
export function indexingTriggers(): string[] {
  const cols = SEARCHED.join(', ');
  const add = (row: 'new') =>
    `INSERT INTO tasks_search(rowid, ${cols}) VALUES (${row}.id, ${SEARCHED.map((c) => `${row}.${c}`).join(', ')});`;
  const changed = SEARCHED.map((c) => `old.${c} IS NOT new.${c}`).join(' OR ');
  return [
    `CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks WHEN new.state IN ${FINAL} BEGIN ${add('new')} END`,
    // Leaving, entering or changing within the final states.
    `CREATE TRIGGER tasks_search_update AFTER UPDATE OF state, ${cols} ON tasks ` +
      `WHEN (old.state IN ${FINAL}) <> (new.state IN ${FINAL}) OR (new.state IN ${FINAL} AND (${changed})) BEGIN ` +
      `DELETE FROM tasks_search WHERE rowid = old.id AND old.state IN ${FINAL}; ` +
      `INSERT INTO tasks_search(rowid, ${cols}) SELECT new.id, ${SEARCHED.map((c) => `new.${c}`).join(', ')} WHERE new.state IN ${FINAL}; END`,
  ];
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (columnTypes(db).mysql) {
    await sql`ALTER TABLE tasks DROP INDEX tasks_search`.execute(db);
    return;
  }
  for (const trigger of ['tasks_search_insert', 'tasks_search_update', 'tasks_search_delete'])
    await sql.raw(`DROP TRIGGER IF EXISTS ${trigger}`).execute(db);
  await sql`DROP TABLE IF EXISTS tasks_search`.execute(db);
}
