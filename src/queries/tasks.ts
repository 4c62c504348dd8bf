// Read-only task queries. Filters map onto the indexes created by the first
// migration: (state|name|worker, timestamp), received, started, timestamp.

import { type Expression, type ExpressionBuilder, type Kysely, type SqlBool, sql } from 'kysely';
import type { Database, TaskRow } from '../shared/schema';
import type { SearchNode } from '../shared/search';

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

/** Free text looks here (Flower: uuid, name, state, worker, args, kwargs, result; Stalk adds exception). */
const FREE_TEXT_COLUMNS = ['uuid', 'name', 'state', 'worker', 'args', 'kwargs', 'result', 'exception'] as const;

// '!' escapes LIKE wildcards in both dialects (a backslash means different
// things in SQLite and MySQL string literals).
function likePattern(text: string): string {
  return text.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`);
}

function contains(column: string, text: string): Expression<SqlBool> {
  return sql<SqlBool>`LOWER(${sql.ref(`tasks.${column}`)}) LIKE ${`%${likePattern(text)}%`} ESCAPE '!'`;
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

export function searchCondition(eb: TaskExpressions, node: SearchNode): Expression<SqlBool> {
  switch (node.kind) {
    case 'and':
      return eb.and(node.children.map((child) => searchCondition(eb, child)));
    case 'or':
      return eb.or(node.children.map((child) => searchCondition(eb, child)));
    case 'kwarg':
      return eb.or(
        kwargPatterns(node.key, node.value).map(
          (p) => sql<SqlBool>`LOWER(${sql.ref('tasks.kwargs')}) LIKE ${p} ESCAPE '!'`,
        ),
      );
    case 'term':
      if (node.field === 'state') return eb('tasks.state', '=', node.value);
      if (node.field === 'any') return eb.or(FREE_TEXT_COLUMNS.map((column) => contains(column, node.value)));
      return contains(node.field, node.value);
  }
}

function filtered(db: Kysely<Database>, filters: TaskFilters) {
  let query = db.selectFrom('tasks');
  if (filters.state) query = query.where('tasks.state', '=', filters.state);
  if (filters.worker) query = query.where('tasks.worker', '=', filters.worker);
  if (filters.name) query = query.where('tasks.name', '=', filters.name);
  if (filters.receivedStart !== undefined) query = query.where('tasks.received', '>=', filters.receivedStart);
  if (filters.receivedEnd !== undefined) query = query.where('tasks.received', '<=', filters.receivedEnd);
  const search = filters.search;
  if (search) query = query.where((eb) => searchCondition(eb, search));
  return query;
}

export async function listTasks(
  db: Kysely<Database>,
  filters: TaskFilters,
  sort: TaskSort = DEFAULT_SORT,
  limit = 100,
  offset = 0,
): Promise<TaskRow[]> {
  const direction = sort.descending ? 'desc' : 'asc';
  return filtered(db, filters)
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
export async function countTasks(db: Kysely<Database>, filters: TaskFilters, cap = 10_000): Promise<{ count: number; capped: boolean }> {
  const limited = filtered(db, filters).select('tasks.id').limit(cap + 1);
  const row = await db
    .selectFrom(limited.as('matching'))
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  const count = Number(row?.n ?? 0);
  return count > cap ? { count: cap, capped: true } : { count, capped: false };
}

export async function getTask(db: Kysely<Database>, uuid: string): Promise<TaskRow | undefined> {
  return db.selectFrom('tasks').selectAll().where('uuid', '=', uuid).executeTakeFirst();
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

export interface TimelineEvent {
  type: string;
  timestamp: number;
  hostname: string;
  clock: number;
  data: Record<string, unknown> | null;
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
    for (const event of parsed as TimelineEvent[]) {
      const key = `${event.type}\0${event.timestamp}\0${event.clock}`;
      if (seen.has(key)) continue;
      seen.add(key);
      events.push(event);
    }
  }
  return events.sort((a, b) => a.timestamp - b.timestamp || a.clock - b.clock);
}
