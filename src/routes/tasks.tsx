// The tasks page (filters, search, sorting, paging, live refresh), the task
// page, and Flower's DataTables endpoint.

import type { Context } from 'hono';
import { Hono } from 'hono';
import { type TaskFilterValues, TasksPage, type TimeFieldValue } from '../../templates/pages/tasks';
import { TaskLive, TaskPage } from '../../templates/pages/task';
import { type FilterError, TasksPanel, type TasksView } from '../../templates/partials/tasks-panel';
import { AppError, badRequest, notFound, quoted } from '../errors';
import {
  childrenOf,
  childrenOfPage,
  countTasks,
  getTask,
  listTasks,
  SORTABLE_COLUMNS,
  type SortColumn,
  type TaskFilters,
  type TaskSort,
  taskTimeline,
  taskTypes,
} from '../queries/tasks';
import { retriesOf } from '../queries/retries';
import { currentWorkerRecords } from '../queries/workers';
import type { AppEnv } from '../services';
import { parseSearch, SEARCH_LIMITS, type SearchNode, SearchSyntaxError } from '../shared/search';
import { mayAct, TASK_COLUMN_NAMES, type TaskColumnName } from '../ui/context';
import { flowerTask } from './flower-json';
import { form, LIMITS, type Params, parseUtcMinute, pathName, query, stateFilter, stuckFilter } from './params';

const PAGE_SIZE = 25;
/** Matches of a text search counted at most (beyond it the pager says "1,000+"). */
const SEARCH_COUNT_CAP = 1_000;
/** Matches counted at most without a text search. */
const COUNT_CAP = 10_000;
const DEFAULT_PAGE_SORT = '-timestamp';
/** DataTables' draw counter is echoed back; it counts requests, so a 32-bit integer. */
const MAX_DRAW = 2_147_483_647;

const isBadRequest = (error: unknown): error is AppError | SearchSyntaxError =>
  error instanceof SearchSyntaxError || (error instanceof AppError && error.code === 'BAD_REQUEST');

function sortOf(params: Params): TaskSort & { sort: string } {
  const value = params.one('sort') || DEFAULT_PAGE_SORT;
  const column = value.replace(/^-/, '');
  if (!(SORTABLE_COLUMNS as readonly string[]).includes(column)) {
    throw badRequest(`Invalid sort '${quoted(value)}': use one of ${SORTABLE_COLUMNS.join(', ')}, with '-' for descending`);
  }
  return { sort: value, column: column as SortColumn, descending: value.startsWith('-') };
}

/** Whether every task the filters let through failed: the state filter, or a `state:FAILURE` term the whole search needs. */
export function onlyFailures(filters: Pick<TaskFilters, 'state' | 'search'>): boolean {
  if (filters.state === 'FAILURE') return true;
  const needs = (node: SearchNode | null | undefined): boolean =>
    !!node &&
    ((node.kind === 'term' && node.field === 'state' && node.value === 'FAILURE') ||
      (node.kind === 'and' && node.children.some(needs)) ||
      (node.kind === 'or' && node.children.length > 0 && node.children.every(needs)));
  return needs(filters.search);
}

/**
 * The columns asked for, else the configured ones; a list of failures shows
 * their exception too unless the reader chose the columns (stalk.js sends
 * `columns` only then).
 */
function columnsOf(params: Params, fallback: TaskColumnName[], failures: boolean): TaskColumnName[] {
  const chosen = params.many('columns');
  const unknown = chosen.find((c) => !(TASK_COLUMN_NAMES as readonly string[]).includes(c));
  if (unknown !== undefined) throw badRequest(`Invalid columns '${quoted(unknown)}': use any of ${TASK_COLUMN_NAMES.join(', ')}`);
  if (chosen.length > 0) return chosen as TaskColumnName[];
  if (!failures || fallback.includes('exception')) return fallback;
  const at = fallback.indexOf('state');
  return at < 0 ? [...fallback, 'exception'] : [...fallback.slice(0, at + 1), 'exception', ...fallback.slice(at + 1)];
}

/** A bad value of one of the form's fields, so the message can point at it. */
class FieldError extends Error {
  constructor(
    message: string,
    readonly field: FilterError['field'],
  ) {
    super(message);
  }
}

interface PageRequest {
  filters: TaskFilters;
  sort: TaskSort & { sort: string };
  limit: number;
  offset: number;
  columns: TaskColumnName[];
}

/**
 * The page's parameters. A mistake is shown on the page above an empty
 * table, with the form as it was filled in, rather than as an error page:
 * the operator fixes it where it was made.
 */
function readPage(params: Params, fallbackColumns: TaskColumnName[], now: number): PageRequest | { error: FilterError } {
  try {
    let search;
    try {
      search = parseSearch(params.raw('q', SEARCH_LIMITS.length));
    } catch (error) {
      if (error instanceof SearchSyntaxError) return { error: { message: error.message, field: 'q' } };
      throw error;
    }
    // The page's form sends UTC (see parseUtcMinute); /api/tasks keeps Flower's server local time.
    const received = (field: 'received_start' | 'received_end') => {
      try {
        return params.utcMinute(field);
      } catch (error) {
        if (isBadRequest(error)) throw new FieldError(error.message, field);
        throw error;
      }
    };
    const filters: TaskFilters = {
      state: stateFilter(params, 'state'),
      worker: params.name('worker'),
      name: params.name('name'),
      receivedStart: received('received_start'),
      receivedEnd: received('received_end'),
      search,
      retried: params.bool('retried'),
      ...stuckFilter(params, now),
    };
    return {
      filters,
      sort: sortOf(params),
      limit: params.int('limit', { min: 1, max: LIMITS.page }) ?? PAGE_SIZE,
      offset: params.int('offset', { min: 0, max: LIMITS.offset }) ?? 0,
      columns: columnsOf(params, fallbackColumns, onlyFailures(filters)),
    };
  } catch (error) {
    if (error instanceof FieldError) return { error: { message: error.message, field: error.field } };
    if (isBadRequest(error)) return { error: { message: error.message, field: null } };
    throw error;
  }
}

/**
 * A received time as the form shows it back: a valid one as UTC for the
 * datetime-local input, with the instant for stalk.js to show in the reader's
 * zone; anything else as it was sent.
 */
function echoMinute(name: string, value: string): TimeFieldValue {
  if (value.trim() === '') return { value };
  try {
    const at = new Date(parseUtcMinute(name, value) * 1000).toISOString();
    return { value: at.slice(0, 16), at };
  } catch {
    return { value };
  }
}

/** The form's fields as they were sent (the first of each), to show back; never used to query. */
function echo(c: Context, retried: boolean): TaskFilterValues {
  const search = new URL(c.req.url).searchParams;
  const field = (name: string) => search.get(name) ?? '';
  return {
    state: field('state'),
    worker: field('worker'),
    name: field('name'),
    receivedStart: echoMinute('received_start', field('received_start')),
    receivedEnd: echoMinute('received_end', field('received_end')),
    q: field('q'),
    retried,
    stuck: field('stuck'),
  };
}

export const taskRoutes = new Hono<AppEnv>()
  .get('/tasks', async (c) => {
    const { db, dialect, hot, ui, readOnly, now } = c.var.services;
    const request = readPage(query(c), ui.tasksColumns, now());
    const ok = 'filters' in request;
    const limit = ok ? request.limit : PAGE_SIZE;
    const offset = ok ? request.offset : 0;
    // With a text search, counting every match would cost more than the page:
    // count up to SEARCH_COUNT_CAP. Either cap is raised to the end of this
    // page when it lies further, so the count never falls short of the rows
    // shown; below the cap it is exact, the same on every page.
    // One round trip: the full page's task names and workers are asked for alongside the rows.
    const fragment = Boolean(c.req.header('HX-Request'));
    const [[rows, { count, capped }], pageLists] = await Promise.all([
      ok
        ? Promise.all([
            listTasks(db, dialect, request.filters, request.sort, limit + 1, offset),
            countTasks(db, dialect, request.filters, Math.max(request.filters.search ? SEARCH_COUNT_CAP : COUNT_CAP, offset + limit)),
          ])
        : ([[], { count: 0, capped: false }] as const),
      fragment ? undefined : Promise.all([taskTypes(db), currentWorkerRecords(db, hot)]),
    ]);
    const pageQuery = new URL(c.req.url).searchParams;
    pageQuery.delete('offset');
    const view: TasksView = {
      tasks: rows.slice(0, limit),
      columns: ok ? request.columns : ui.tasksColumns,
      query: pageQuery,
      sort: ok ? request.sort.sort : DEFAULT_PAGE_SORT,
      offset,
      limit,
      hasMore: rows.length > limit,
      total: count,
      capped,
      filterError: ok ? null : request.error,
      readOnly,
    };
    c.header('Vary', 'HX-Request');
    // htmx swaps only a 2xx: the live panel shows the mistake with 200; a page load says 400.
    if (fragment || !pageLists) return c.html(<TasksPanel view={view} ui={ui} />);
    const [taskNames, workers] = pageLists;
    return c.html(
      <TasksPage
        view={view}
        filters={echo(c, ok && request.filters.retried === true)}
        taskNames={taskNames}
        workerNames={workers.map((w) => w.hostname)}
        ui={ui}
        readOnly={readOnly || !mayAct(ui, 'operator')}
      />,
      ok ? 200 : 400,
    );
  })
  // Flower's server-side DataTables protocol (draw, start, length,
  // search[value], order[0][column], order[0][dir], columns[i][data]), by GET
  // or a form POST. A search syntax error answers 200 with `searchError` (the
  // table shows it); other bad parameters 400 with DataTables' `error`.
  .on(['GET', 'POST'], '/tasks/datatable', async (c) => {
    const { db, dialect } = c.var.services;
    let draw = 0;
    let request;
    try {
      const params = await form(c);
      draw = params.int('draw', { min: 0, max: MAX_DRAW }) ?? 0;
      // -1 is DataTables' "all rows": a page's worth here.
      const length = params.int('length', { min: -1, max: LIMITS.page }) ?? 15;
      if (length === 0) throw badRequest("'length' must be -1 (all) or 1 to 500");
      const orderColumn = params.int('order[0][column]', { min: 0, max: 1_000 });
      request = {
        start: params.int('start', { min: 0, max: LIMITS.offset }) ?? 0,
        length: length === -1 ? LIMITS.page : length,
        column: (orderColumn === undefined ? undefined : params.choice(`columns[${orderColumn}][data]`, SORTABLE_COLUMNS)) ?? 'started',
        descending: (params.choice('order[0][dir]', ['asc', 'desc']) ?? 'desc') === 'desc',
        search: params.raw('search[value]', SEARCH_LIMITS.length),
      };
    } catch (error) {
      if (!isBadRequest(error)) throw error;
      return c.json({ draw, data: [], recordsTotal: 0, recordsFiltered: 0, error: error.message }, 400);
    }
    let search;
    try {
      search = parseSearch(request.search);
    } catch (error) {
      if (!(error instanceof SearchSyntaxError)) throw error;
      const totals = await countTasks(db, dialect, {});
      return c.json({ draw, data: [], recordsTotal: totals.count, recordsFiltered: 0, searchError: error.message });
    }
    const filters: TaskFilters = { search };
    const sort = { column: request.column, descending: request.descending };
    // One round trip: the page, its children and the counts side by side; without a search both counts are one.
    const totalsQuery = countTasks(db, dialect, {});
    const [rows, pageChildren, totals, filtered] = await Promise.all([
      listTasks(db, dialect, filters, sort, request.length, request.start),
      childrenOfPage(db, dialect, filters, sort, request.length, request.start),
      totalsQuery,
      search ? countTasks(db, dialect, filters) : totalsQuery,
    ]);
    const children =
      pageChildren ??
      (await childrenOf(
        db,
        rows.map((r) => r.uuid),
      ));
    return c.json({
      draw,
      data: rows.map((row) => flowerTask(row, children.get(row.uuid) ?? [])),
      recordsTotal: totals.count,
      recordsFiltered: filtered.count,
    });
  })
  .get('/task/:id{.+}', async (c) => {
    const { db, ui, readOnly, resultBackend } = c.var.services;
    const id = pathName(c, 'id');
    // One round trip: the task, its children and its timeline side by side, by the id asked for.
    const [task, childrenById, timelineById] = await Promise.all([getTask(db, id), childrenOf(db, [id]), taskTimeline(db, id)]);
    if (!task) throw notFound(`Unknown task '${quoted(id)}'`);
    // SQLite finds a legacy id under another spelling (getTask): then ask again by the stored one.
    const [[children, timeline], retries] = await Promise.all([
      task.uuid === id ? [childrenById, timelineById] : Promise.all([childrenOf(db, [task.uuid]), taskTimeline(db, task.uuid)]),
      retriesOf(db, task.uuid),
    ]);
    const props = {
      task,
      childIds: children.get(task.uuid) ?? [],
      retries,
      timeline,
      ui,
      options: { readOnly: readOnly || !mayAct(ui, 'operator'), abortable: resultBackend !== false },
    };
    c.header('Vary', 'HX-Request');
    // The live part alone for the page's poll (HX-Request), morphed in place.
    if (c.req.header('HX-Request')) return c.html(<TaskLive {...props} />);
    return c.html(<TaskPage {...props} />);
  });
