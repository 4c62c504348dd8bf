// Read-only task queries. Filters map onto the indexes created by the first
// migration: (state|name|worker, timestamp), received, started, timestamp.

import { type Kysely, type SqlBool, SqliteAdapter, sql } from 'kysely';
import type { Database, SqlDialect, TaskRow } from '../shared/schema';
import type { SearchNode } from '../shared/search';
import type { TimelineEvent } from '../ui/views';
import { compileSearch, type TaskCondition } from './task-search';

export interface TaskFilters {
  state?: string | undefined;
  worker?: string | undefined;
  name?: string | undefined;
  /** Seconds since the epoch, inclusive bounds on `received`. */
  receivedStart?: number | undefined;
  receivedEnd?: number | undefined;
  search?: SearchNode | null | undefined;
  /** Only tasks that were retried at least once (they end in any state: RETRY lasts until the next try). */
  retried?: boolean | undefined;
  /**
   * Stuck: only tasks STARTED at or before this time (seconds) and still
   * running. A STARTED task's `timestamp` is its task-started time, so the
   * (state, timestamp) index serves it.
   */
  stuckBefore?: number | undefined;
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

/** Sortable columns that always hold a value (migration 001). */
const NOT_NULL_COLUMNS = new Set<SortColumn>(['uuid', 'state', 'timestamp']);

/**
 * Nullable sortable columns whose index (migration 001: tasks_received,
 * tasks_started, the id riding along) reads in (column, id) order.
 */
const INDEX_ORDERED = new Set<SortColumn>(['received', 'started']);

export interface TaskSort {
  column: SortColumn;
  descending: boolean;
}

export const DEFAULT_SORT: TaskSort = { column: 'timestamp', descending: true };

function filtered(db: Kysely<Database>, filters: TaskFilters, search: TaskCondition | null) {
  let query = db.selectFrom('tasks');
  if (filters.state) query = query.where('tasks.state', '=', filters.state);
  if (filters.worker) query = query.where('tasks.worker', '=', filters.worker);
  if (filters.name) query = query.where('tasks.name', '=', filters.name);
  if (filters.receivedStart !== undefined) query = query.where('tasks.received', '>=', filters.receivedStart);
  if (filters.receivedEnd !== undefined) query = query.where('tasks.received', '<=', filters.receivedEnd);
  if (filters.retried) query = query.where('tasks.retried', 'is not', null);
  if (filters.stuckBefore !== undefined)
    query = query.where('tasks.state', '=', 'STARTED').where('tasks.timestamp', '<=', filters.stuckBefore);
  if (search) query = query.where(search);
  return query;
}

export async function listTasks(
  db: Kysely<Database>,
  family: SqlDialect,
  filters: TaskFilters,
  sort: TaskSort = DEFAULT_SORT,
  limit = 100,
  offset = 0,
): Promise<TaskRow[]> {
  const search = await compileSearch(db, family, filters.search);
  const column = sql.ref(`tasks.${sort.column}`);
  if (sort.descending || NOT_NULL_COLUMNS.has(sort.column)) {
    // Both dialects put NULLs last descending: the index order is the page order.
    const direction = sort.descending ? 'desc' : 'asc';
    return filtered(db, filters, search)
      .selectAll('tasks')
      .orderBy(column, direction)
      .orderBy('tasks.id', direction)
      .limit(limit)
      .offset(offset)
      .execute();
  }
  // Ascending, both dialects would put NULLs first; blanks go last here too.
  if (!INDEX_ORDERED.has(sort.column)) {
    // No index gives this order: the whole match is sorted anyway, and a
    // `col IS NOT NULL` range would only lead MariaDB to read it through an
    // index (tasks_name_timestamp) in random order.
    return filtered(db, filters, search)
      .selectAll('tasks')
      .orderBy(sql`${column} IS NULL`, 'asc')
      .orderBy(column, 'asc')
      .orderBy('tasks.id', 'asc')
      .limit(limit)
      .offset(offset)
      .execute();
  }
  // An `IS NULL` sort key would cost the index (every page sorting the whole
  // table), so the rows with a value are read first as an index range, and
  // the blank ones (oldest first) only when the page runs past them.
  const valued = await filtered(db, filters, search)
    .selectAll('tasks')
    .where(column, 'is not', null)
    .orderBy(column, 'asc')
    .orderBy('tasks.id', 'asc')
    .limit(limit)
    .offset(offset)
    .execute();
  if (valued.length === limit) return valued;
  // All the rows with a value: this page ends them when it holds some, else
  // they are counted (no more than the offset).
  const valuedTotal = valued.length > 0 || offset === 0 ? offset + valued.length : await countValued(db, filters, search, column, offset);
  const blank = await filtered(db, filters, search)
    .selectAll('tasks')
    .where(column, 'is', null)
    .orderBy('tasks.id', 'asc')
    .limit(limit - valued.length)
    .offset(offset + valued.length - valuedTotal)
    .execute();
  return [...valued, ...blank];
}

/** The rows with a value in `column` matching the filters, counted up to `cap`. */
async function countValued(
  db: Kysely<Database>,
  filters: TaskFilters,
  search: TaskCondition | null,
  column: ReturnType<typeof sql.ref>,
  cap: number,
): Promise<number> {
  const limited = filtered(db, filters, search).select('tasks.id').where(column, 'is not', null).limit(cap);
  const row = await db
    .selectFrom(limited.as('valued'))
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * Matching tasks counted up to `cap` (a full count of a million rows costs
 * more than the page itself); `capped` says there are more.
 */
export async function countTasks(
  db: Kysely<Database>,
  family: SqlDialect,
  filters: TaskFilters,
  cap = 10_000,
): Promise<{ count: number; capped: boolean }> {
  const search = await compileSearch(db, family, filters.search);
  const limited = filtered(db, filters, search)
    .select('tasks.id')
    .limit(cap + 1);
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

/**
 * The children of the tasks on a page of `listTasks`, found without waiting
 * for the page: the page's ids are a derived table the children are joined
 * to, so the two queries run side by side (one round trip at the edge).
 * Null for the one order `listTasks` reads in two steps (ascending by an
 * indexed nullable column): then use `childrenOf` on the rows.
 */
export async function childrenOfPage(
  db: Kysely<Database>,
  family: SqlDialect,
  filters: TaskFilters,
  sort: TaskSort = DEFAULT_SORT,
  limit = 100,
  offset = 0,
): Promise<Map<string, string[]> | null> {
  const simple = sort.descending || NOT_NULL_COLUMNS.has(sort.column);
  if (!simple && INDEX_ORDERED.has(sort.column)) return null;
  const search = await compileSearch(db, family, filters.search);
  const column = sql.ref(`tasks.${sort.column}`);
  const direction = sort.descending ? 'desc' : 'asc';
  let page = filtered(db, filters, search).select('tasks.uuid');
  // The same order as listTasks, blanks last when ascending.
  if (!simple) page = page.orderBy(sql`${column} IS NULL`, 'asc');
  page = page.orderBy(column, direction).orderBy('tasks.id', direction).limit(limit).offset(offset);
  // `parent_id IN (the page)`, the page wrapped once more because MySQL and
  // MariaDB refuse LIMIT directly inside IN. A join on the page instead let
  // SQLite, planning for a bound LIMIT, scan every task (256 ms at 1,000,000).
  const rows = await db
    .selectFrom('tasks as child')
    .select(['child.uuid', 'child.parent_id'])
    .where('child.parent_id', 'in', db.selectFrom(page.as('page')).select('page.uuid'))
    .orderBy('child.id')
    .execute();
  const children = new Map<string, string[]>();
  for (const row of rows) {
    // A retried task names itself as its parent (Celery's retry); it is not its own child.
    if (row.parent_id === null || row.parent_id === row.uuid) continue;
    const list = children.get(row.parent_id) ?? [];
    list.push(row.uuid);
    children.set(row.parent_id, list);
  }
  return children;
}
