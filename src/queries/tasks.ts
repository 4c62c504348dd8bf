// Read-only task queries. Filters map onto the indexes created by the first
// migration: (state|name|worker, timestamp), received, started, timestamp.

import { type Expression, type ExpressionBuilder, type Kysely, type SqlBool, SqliteAdapter, sql } from 'kysely';
import type { Database, TaskRow } from '../shared/schema';
import type { SearchNode } from '../shared/search';
import type { TimelineEvent } from '../ui/views';

export interface TaskFilters {
  state?: string | undefined;
  worker?: string | undefined;
  name?: string | undefined;
  /** Seconds since the epoch, inclusive bounds on `received`. */
  receivedStart?: number | undefined;
  receivedEnd?: number | undefined;
  search?: SearchNode | null | undefined;
}

/** Columns a list may be sorted by. */
export const SORTABLE_COLUMNS = [
  'name',
  'uuid',
  'state',
  'args',
  'kwargs',
  'result',
  'received',
  'started',
  'runtime',
  'worker',
  'timestamp',
  'succeeded',
  'failed',
  'retried',
  'revoked',
  'sent',
  'retries',
  'eta',
  'expires',
  'exception',
  'exchange',
  'routing_key',
  'queue',
] as const;
export type SortColumn = (typeof SORTABLE_COLUMNS)[number];

export interface TaskSort {
  column: SortColumn;
  descending: boolean;
}

export const DEFAULT_SORT: TaskSort = { column: 'timestamp', descending: true };

type TaskExpressions = ExpressionBuilder<Database, 'tasks'>;

export type SqlFamily = 'sqlite' | 'mysql';

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
  'a about an are as at be by com de en for from how i in is it la of on or that the this to und was what when where who will with www'.split(' '),
);

/**
 * States the SQLite text index leaves out (it covers final tasks, migration
 * 003): searched through the state index. Final tasks not indexed yet wait
 * in search_queue (migration 006), a small table searched directly.
 */
const IN_FLIGHT_STATES = ['PENDING', 'RECEIVED', 'STARTED', 'RETRY', 'REJECTED'];

/** The index query for a text term, or null when it has no word to look up. */
function indexQuery(family: SqlFamily, column: (typeof SEARCHED_COLUMNS)[number] | 'any', text: string, extraWords: string[] = []): string | null {
  const termWords = [...words(text), ...extraWords];
  if (family === 'mysql') {
    // One word, the longest (usually the rarest): InnoDB intersects word
    // lists slowly when one of them is long, and LIKE confirms the rest.
    // Words shorter than innodb_ft_min_token_size (3) are not indexed, nor
    // are stopwords in an index built with them (see INNODB_STOPWORDS).
    const longest = termWords
      .filter((w) => w.length >= 3 && !INNODB_STOPWORDS.has(w.toLowerCase()))
      .sort((a, b) => b.length - a.length)[0];
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

function indexCondition(family: SqlFamily, query: string): Expression<SqlBool> {
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

async function isDense(db: Kysely<Database>, family: SqlFamily, query: string): Promise<boolean> {
  const key = `${family}\0${query}`;
  const known = denseQueries.get(key);
  if (known && Date.now() - known.at < 60_000) return known.dense;
  const hits = db.selectFrom('tasks').select('tasks.id').where(indexCondition(family, query)).limit(DENSE_TERM + 1);
  const row = await db.selectFrom(hits.as('hits')).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  const dense = Number(row?.n ?? 0) > DENSE_TERM;
  if (denseQueries.size > 1_000) denseQueries.clear();
  denseQueries.set(key, { dense, at: Date.now() });
  return dense;
}

/** Which of a search's index queries are dense (looked up once per query text a minute). */
async function denseTerms(db: Kysely<Database>, family: SqlFamily, node: SearchNode | null | undefined, found = new Set<string>()): Promise<Set<string>> {
  if (!node) return found;
  if (node.kind === 'and' || node.kind === 'or') {
    for (const child of node.children) await denseTerms(db, family, child, found);
    return found;
  }
  const query =
    node.kind === 'kwarg'
      ? node.key.length >= 3 ? indexQuery(family, 'kwargs', node.key, words(node.value)) : null
      : node.field === 'state' ? null : indexQuery(family, node.field, node.value);
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
  family: SqlFamily,
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
  return eb.and([like, eb.or([indexCondition(family, query), eb('tasks.state', 'in', IN_FLIGHT_STATES), queued])]);
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

export function searchCondition(eb: TaskExpressions, node: SearchNode, family: SqlFamily, dense: Set<string>): Expression<SqlBool> {
  switch (node.kind) {
    case 'and':
      return eb.and(node.children.map((child) => searchCondition(eb, child, family, dense)));
    case 'or':
      return eb.or(node.children.map((child) => searchCondition(eb, child, family, dense)));
    case 'kwarg': {
      const pair = eb.or(kwargPatterns(node.key, node.value).map((p) => sql<SqlBool>`LOWER(${sql.ref('tasks.kwargs')}) LIKE ${p} ESCAPE '!'`));
      // The key (as written in the repr) narrows the candidates through the index first.
      if (node.key.length < 3) return pair;
      return eb.and([textMatch(eb, family, dense, 'kwargs', node.key, words(node.value)), pair]);
    }
    case 'term':
      if (node.field === 'state') return eb('tasks.state', '=', node.value);
      return textMatch(eb, family, dense, node.field, node.value);
  }
}

function filtered(db: Kysely<Database>, family: SqlFamily, filters: TaskFilters, dense: Set<string>) {
  let query = db.selectFrom('tasks');
  if (filters.state) query = query.where('tasks.state', '=', filters.state);
  if (filters.worker) query = query.where('tasks.worker', '=', filters.worker);
  if (filters.name) query = query.where('tasks.name', '=', filters.name);
  if (filters.receivedStart !== undefined) query = query.where('tasks.received', '>=', filters.receivedStart);
  if (filters.receivedEnd !== undefined) query = query.where('tasks.received', '<=', filters.receivedEnd);
  const search = filters.search;
  if (search) query = query.where((eb) => searchCondition(eb, search, family, dense));
  return query;
}

export async function listTasks(
  db: Kysely<Database>,
  family: SqlFamily,
  filters: TaskFilters,
  sort: TaskSort = DEFAULT_SORT,
  limit = 100,
  offset = 0,
): Promise<TaskRow[]> {
  const direction = sort.descending ? 'desc' : 'asc';
  const dense = await denseTerms(db, family, filters.search);
  return filtered(db, family, filters, dense)
    .selectAll('tasks')
    .orderBy(sql.ref(`tasks.${sort.column}`), direction)
    .orderBy('tasks.id', direction)
    .limit(limit)
    .offset(offset)
    .execute();
}

/**
 * Matching tasks counted up to `cap` (a full count of a million rows costs
 * more than the page itself); `capped` says there are more.
 */
export async function countTasks(
  db: Kysely<Database>,
  family: SqlFamily,
  filters: TaskFilters,
  cap = 10_000,
): Promise<{ count: number; capped: boolean }> {
  const dense = await denseTerms(db, family, filters.search);
  const limited = filtered(db, family, filters, dense).select('tasks.id').limit(cap + 1);
  const row = await db
    .selectFrom(limited.as('matching'))
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  const count = Number(row?.n ?? 0);
  return count > cap ? { count: cap, capped: true } : { count, capped: false };
}

/**
 * Before decode made ids well formed, SQLite's driver stored a lone surrogate
 * as three bytes that are not UTF-8, read back as three U+FFFD: the id on the
 * page then no longer equals the stored one. Such an id is found by a GLOB
 * (case-sensitive) in which each of those triples matches the one stored
 * character; MySQL stored U+FFFD itself, so the exact match finds it there.
 */
const SQLITE_LONE_SURROGATE = '\ufffd\ufffd\ufffd';

function sqliteLegacyPattern(uuid: string): string {
  return uuid.replace(/[*?[]/g, (c) => `[${c}]`).replaceAll(SQLITE_LONE_SURROGATE, '?');
}

export async function getTask(db: Kysely<Database>, uuid: string): Promise<TaskRow | undefined> {
  const row = await db.selectFrom('tasks').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  if (row || !uuid.includes(SQLITE_LONE_SURROGATE) || !(db.getExecutor().adapter instanceof SqliteAdapter)) return row;
  return db
    .selectFrom('tasks')
    .selectAll()
    .where(sql<SqlBool>`uuid GLOB ${sqliteLegacyPattern(uuid)}`)
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
}

/** Child task ids of each given task, oldest first. */
export async function childrenOf(db: Kysely<Database>, uuids: string[]): Promise<Map<string, string[]>> {
  const children = new Map<string, string[]>();
  for (let i = 0; i < uuids.length; i += 500) {
    const rows = await db
      .selectFrom('tasks')
      .select(['uuid', 'parent_id'])
      .where('parent_id', 'in', uuids.slice(i, i + 500))
      .orderBy('id')
      .execute();
    for (const row of rows) {
      // A retried task names itself as its parent (Celery's retry); it is not its own child.
      if (row.parent_id === null || row.parent_id === row.uuid) continue;
      const list = children.get(row.parent_id) ?? [];
      list.push(row.uuid);
      children.set(row.parent_id, list);
    }
  }
  return children;
}

/** Task names seen in events, sorted (from the counters, so it costs no scan of the tasks). */
export async function taskTypes(db: Kysely<Database>): Promise<string[]> {
  const rows = await db
    .selectFrom('event_counters')
    .select('task_name')
    .distinct()
    .where('task_name', '<>', '')
    .orderBy('task_name')
    .execute();
  return rows.map((r) => r.task_name);
}

/**
 * One stored timeline entry as the page reads it. Timelines are JSON text that
 * another writer (or an older version) may have filled with anything, so each
 * field is taken only with the type the page expects.
 */
function timelineEvent(value: unknown): TimelineEvent | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const entry = value as Record<string, unknown>;
  const data = entry.data;
  return {
    type: typeof entry.type === 'string' ? entry.type : '',
    timestamp: typeof entry.timestamp === 'number' ? entry.timestamp : Number.NaN,
    hostname: typeof entry.hostname === 'string' ? entry.hostname : '',
    clock: typeof entry.clock === 'number' && Number.isFinite(entry.clock) ? entry.clock : 0,
    data: typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : null,
  };
}

/** Time order, entries without a usable time last (a comparator must never answer NaN). */
function byTime(a: TimelineEvent, b: TimelineEvent): number {
  const at = Number.isFinite(a.timestamp) ? a.timestamp : Number.MAX_VALUE;
  const bt = Number.isFinite(b.timestamp) ? b.timestamp : Number.MAX_VALUE;
  return at - bt || a.clock - b.clock;
}

/** A task's events in time order; an event delivered twice appears once. */
export async function taskTimeline(db: Kysely<Database>, uuid: string): Promise<TimelineEvent[]> {
  const rows = await db.selectFrom('task_events').select('events').where('task_id', '=', uuid).orderBy('id').execute();
  const seen = new Set<string>();
  const events: TimelineEvent[] = [];
  for (const row of rows) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(row.events);
    } catch {
      continue;
    }
    if (!Array.isArray(parsed)) continue;
    for (const item of parsed) {
      const event = timelineEvent(item);
      if (!event) continue;
      const key = `${event.type}\0${event.timestamp}\0${event.clock}`;
      if (seen.has(key)) continue;
      seen.add(key);
      events.push(event);
    }
  }
  return events.sort(byTime);
}
