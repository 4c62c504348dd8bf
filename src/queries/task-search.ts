// The search language (src/shared/search.ts) compiled to SQL on the tasks
// table: free text through each database's text index where it helps
// (MySQL/MariaDB FULLTEXT over every task, SQLite FTS5 over final tasks,
// migrations 003 and 006), confirmed with LIKE; dense terms (matching more
// than DENSE_TERM tasks) tested on the newest rows directly, which ones are
// dense looked up once per query text a minute (a module-level cache).

import { type Expression, type ExpressionBuilder, type Kysely, type SqlBool, sql } from 'kysely';
import type { Database, SqlDialect } from '../shared/schema';
import type { SearchNode } from '../shared/search';
import { FINAL_STATES } from '../shared/task-states';

type TaskExpressions = ExpressionBuilder<Database, 'tasks'>;

/** A WHERE condition on tasks. */
export type TaskCondition = (eb: TaskExpressions) => Expression<SqlBool>;

/** Columns the text index covers (migration 003); free text searches them all. */
const SEARCHED_COLUMNS = ['uuid', 'name', 'worker', 'args', 'kwargs', 'result', 'exception'] as const;

// '!' escapes LIKE wildcards in both dialects (a backslash means different
// things in SQLite and MySQL string literals).
function likePattern(text: string): string {
  return text.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`);
}

function contains(column: string, text: string): Expression<SqlBool> {
  return sql<SqlBool>`LOWER(${sql.ref(`tasks.${column}`)}) LIKE ${`%${likePattern(text)}%`} ESCAPE '!'`;
}

/** Words as the text indexes split them (letters, digits, underscore). */
function words(text: string): string[] {
  return text.split(/[^\p{L}\p{N}_]+/u).filter((w) => w.length > 0);
}

/**
 * InnoDB's default stopword list (INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD;
 * the same in MySQL 8 and MariaDB). Migration 003 turns stopwords off where
 * the server lets it, but a PlanetScale deploy request cannot carry that
 * session setting, so an index may lack these words: they are never the word
 * looked up in it (LIKE still matches them).
 */
const INNODB_STOPWORDS = new Set(
  'a about an are as at be by com de en for from how i in is it la of on or that the this to und was what when where who will with www'.split(
    ' ',
  ),
);

/**
 * Tasks the SQLite text index leaves out: it covers final tasks (migration
 * 003), so every other state is searched through the state index, custom
 * states that Celery apps invent (PROGRESS, ...) as much as Celery's own.
 * The states present are walked one index seek each (a loose index scan: a
 * handful of states in a million rows), the final ones left out. Final tasks
 * not indexed yet wait in search_queue (migration 006), a small table
 * searched directly.
 */
function notFinalState(): Expression<SqlBool> {
  const final = sql.join(FINAL_STATES.map((state) => sql.lit(state)));
  return sql<SqlBool>`tasks.state IN (
    WITH RECURSIVE present(state) AS (
      SELECT MIN(lowest.state) FROM tasks AS lowest
      UNION ALL
      SELECT (SELECT MIN(higher.state) FROM tasks AS higher WHERE higher.state > present.state) FROM present WHERE present.state IS NOT NULL
    )
    SELECT state FROM present WHERE state NOT IN (${final}))`;
}

/** The index query for a text term, or null when it has no word to look up. */
function indexQuery(
  family: SqlDialect,
  column: (typeof SEARCHED_COLUMNS)[number] | 'any',
  text: string,
  extraWords: string[] = [],
): string | null {
  const termWords = [...words(text), ...extraWords];
  if (family === 'mysql') {
    // One word, the longest (usually the rarest): InnoDB intersects word
    // lists slowly when one of them is long, and LIKE confirms the rest.
    // Words shorter than innodb_ft_min_token_size (3) are not indexed, nor
    // are stopwords in an index built with them (see INNODB_STOPWORDS).
    const longest = termWords.filter((w) => w.length >= 3 && !INNODB_STOPWORDS.has(w.toLowerCase())).sort((a, b) => b.length - a.length)[0];
    if (longest === undefined) return null;
    // MariaDB indexes words lowercased and matches the query as written;
    // MySQL 8 keeps the case of a binary collation (utf8mb4_bin) in the index.
    // Lower, Capitalised and UPPER spellings cover both (LIKE confirms).
    const lower = longest.toLowerCase();
    const spellings = new Set([lower, lower.charAt(0).toUpperCase() + lower.slice(1), longest.toUpperCase(), longest]);
    return `+(${[...spellings].map((w) => `${w}*`).join(' ')})`;
  }
  if (termWords.length === 0) return null;
  // FTS5: the words in a row, the last one as a prefix; within a column when qualified.
  const phrase = `"${termWords.join(' ')}"*`;
  return column === 'any' ? phrase : `${column} : ${phrase}`;
}

function indexCondition(family: SqlDialect, query: string): Expression<SqlBool> {
  if (family === 'mysql') {
    const columns = sql.join(SEARCHED_COLUMNS.map((c) => sql.ref(`tasks.${c}`)));
    return sql<SqlBool>`MATCH(${columns}) AGAINST (${query} IN BOOLEAN MODE)`;
  }
  return sql<SqlBool>`tasks.id IN (SELECT rowid FROM tasks_search WHERE tasks_search MATCH ${query})`;
}

/**
 * Terms matching more than this many tasks are searched by walking the
 * newest-first index and testing each row: matches are dense, so a page fills
 * after a few hundred rows, while fetching every index hit and sorting them
 * would read them all.
 */
const DENSE_TERM = 1_000;
const denseQueries = new Map<string, { dense: boolean; at: number }>();

async function isDense(db: Kysely<Database>, family: SqlDialect, query: string): Promise<boolean> {
  const key = `${family}\0${query}`;
  const known = denseQueries.get(key);
  if (known && Date.now() - known.at < 60_000) return known.dense;
  const hits = db
    .selectFrom('tasks')
    .select('tasks.id')
    .where(indexCondition(family, query))
    .limit(DENSE_TERM + 1);
  const row = await db
    .selectFrom(hits.as('hits'))
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  const dense = Number(row?.n ?? 0) > DENSE_TERM;
  if (denseQueries.size > 1_000) denseQueries.clear();
  denseQueries.set(key, { dense, at: Date.now() });
  return dense;
}

/** Which of a search's index queries are dense (looked up once per query text a minute). */
async function denseTerms(
  db: Kysely<Database>,
  family: SqlDialect,
  node: SearchNode | null | undefined,
  found = new Set<string>(),
): Promise<Set<string>> {
  if (!node) return found;
  if (node.kind === 'and' || node.kind === 'or') {
    for (const child of node.children) await denseTerms(db, family, child, found);
    return found;
  }
  const query =
    node.kind === 'kwarg'
      ? node.key.length >= 3
        ? indexQuery(family, 'kwargs', node.key, words(node.value))
        : null
      : node.field === 'state'
        ? null
        : indexQuery(family, node.field, node.value);
  if (query !== null && (await isDense(db, family, query))) found.add(query);
  return found;
}

/**
 * Tasks whose text contains `text` (in `column`, or anywhere), each confirmed
 * with LIKE. Rare terms go through the text index (words by prefix: the term
 * must start where a word starts; migration 003); dense terms are tested on
 * the newest rows directly.
 */
function textMatch(
  eb: TaskExpressions,
  family: SqlDialect,
  dense: Set<string>,
  column: (typeof SEARCHED_COLUMNS)[number] | 'any',
  text: string,
  extraWords: string[] = [],
): Expression<SqlBool> {
  const like = column === 'any' ? eb.or(SEARCHED_COLUMNS.map((c) => contains(c, text))) : contains(column, text);
  const query = indexQuery(family, column, text, extraWords);
  if (query === null || dense.has(query)) return like;
  if (family === 'mysql') return eb.and([indexCondition(family, query), like]);
  // SQLite's index holds final tasks only; the few in flight are found by state, the few not indexed yet by the queue.
  const queued = sql<SqlBool>`tasks.id IN (SELECT task_id FROM search_queue)`;
  return eb.and([like, eb.or([indexCondition(family, query), notFinalState(), queued])]);
}

/**
 * kwargs are stored as Celery's repr (`{'note': 'x', 'n': 3}`); a `key=value`
 * term matches that pair whether the value is quoted or bare, in repr or
 * JSON spelling, and not as a prefix of a longer value.
 */
function kwargPatterns(key: string, value: string): string[] {
  const k = likePattern(key);
  const v = likePattern(value);
  const patterns: string[] = [];
  for (const q of ["'", '"']) {
    const name = `${q}${k}${q}: `;
    patterns.push(`%${name}'${v}'%`, `%${name}"${v}"%`, `%${name}${v},%`, `%${name}${v}}%`);
  }
  return patterns;
}

function searchCondition(eb: TaskExpressions, node: SearchNode, family: SqlDialect, dense: Set<string>): Expression<SqlBool> {
  switch (node.kind) {
    case 'and':
      return eb.and(node.children.map((child) => searchCondition(eb, child, family, dense)));
    case 'or':
      return eb.or(node.children.map((child) => searchCondition(eb, child, family, dense)));
    case 'kwarg': {
      const pair = eb.or(
        kwargPatterns(node.key, node.value).map((p) => sql<SqlBool>`LOWER(${sql.ref('tasks.kwargs')}) LIKE ${p} ESCAPE '!'`),
      );
      // The key (as written in the repr) narrows the candidates through the index first.
      if (node.key.length < 3) return pair;
      return eb.and([textMatch(eb, family, dense, 'kwargs', node.key, words(node.value)), pair]);
    }
    case 'term':
      if (node.field === 'state') return eb('tasks.state', '=', node.value);
      return textMatch(eb, family, dense, node.field, node.value);
  }
}

/** A search as a condition on tasks, or null without one (dense terms are looked up first). */
export async function compileSearch(
  db: Kysely<Database>,
  family: SqlDialect,
  node: SearchNode | null | undefined,
): Promise<TaskCondition | null> {
  if (!node) return null;
  const dense = await denseTerms(db, family, node);
  return (eb) => searchCondition(eb, node, family, dense);
}
