// The tasks page (filters, search, sorting, paging, live refresh), the task
// page, and Flower's DataTables endpoint.

import { Hono } from 'hono';
import { type TaskFilterValues, TasksPage } from '../../templates/pages/tasks';
import { TaskPage } from '../../templates/pages/task';
import { TasksPanel, type TasksView } from '../../templates/partials/tasks-panel';
import { AppError, notFound } from '../errors';
import { childrenOf, countTasks, getTask, listTasks, SORTABLE_COLUMNS, type SortColumn, type TaskFilters, taskTimeline, taskTypes } from '../queries/tasks';
import { currentWorkerRecords } from '../queries/workers';
import type { AppEnv } from '../services';
import { parseSearch, SearchSyntaxError } from '../shared/search';
import { TASK_COLUMN_NAMES, type TaskColumnName } from '../ui/context';
import { flowerTask } from './api';
import { intParam, localMinuteParam } from './params';

const PAGE_SIZE = 25;
const MAX_PAGE_SIZE = 500;
const DEFAULT_PAGE_SORT = '-timestamp';

function sortOf(text: string | undefined): { sort: string; column: SortColumn; descending: boolean } {
  const value = text && text !== '' ? text : DEFAULT_PAGE_SORT;
  const column = value.replace(/^-/, '');
  if (!(SORTABLE_COLUMNS as readonly string[]).includes(column)) return sortOf(DEFAULT_PAGE_SORT);
  return { sort: value, column: column as SortColumn, descending: value.startsWith('-') };
}

/** Read the page's filters; a bad value becomes a message on the page, not an error page. */
function readFilters(query: URLSearchParams): { values: TaskFilterValues; filters: TaskFilters; error: string | null } {
  const values: TaskFilterValues = {
    state: query.get('state') ?? '',
    worker: query.get('worker') ?? '',
    name: query.get('name') ?? '',
    receivedStart: query.get('received_start') ?? '',
    receivedEnd: query.get('received_end') ?? '',
    q: query.get('q') ?? '',
  };
  const filters: TaskFilters = {
    state: values.state || undefined,
    worker: values.worker || undefined,
    name: values.name || undefined,
  };
  try {
    filters.receivedStart = localMinuteParam('received_start', values.receivedStart);
    filters.receivedEnd = localMinuteParam('received_end', values.receivedEnd);
    filters.search = parseSearch(values.q);
    return { values, filters, error: null };
  } catch (error) {
    if (error instanceof SearchSyntaxError || error instanceof AppError) return { values, filters, error: error.message };
    throw error;
  }
}

function columnsOf(query: URLSearchParams, fallback: TaskColumnName[]): TaskColumnName[] {
  const chosen = query.getAll('columns').filter((c): c is TaskColumnName => (TASK_COLUMN_NAMES as readonly string[]).includes(c));
  return chosen.length > 0 ? chosen : fallback;
}

export const taskRoutes = new Hono<AppEnv>()
  .get('/tasks', async (c) => {
    const { db, dialect, hot, ui, readOnly } = c.var.services;
    const query = new URL(c.req.url).searchParams;
    const { values, filters, error } = readFilters(query);
    const sort = sortOf(query.get('sort') ?? undefined);
    const limit = Math.min(MAX_PAGE_SIZE, Math.max(1, Number(query.get('limit')) || PAGE_SIZE));
    const offset = Math.max(0, Number(query.get('offset')) || 0);
    // With a text search, counting every match would cost more than the page:
    // count only what the pager needs.
    const cap = filters.search ? offset + limit : undefined;
    const [rows, { count, capped }] = error
      ? [[], { count: 0, capped: false }]
      : await Promise.all([listTasks(db, dialect, filters, sort, limit + 1, offset), countTasks(db, dialect, filters, cap)]);
    const pageQuery = new URLSearchParams(query);
    pageQuery.delete('offset');
    const view: TasksView = {
      tasks: rows.slice(0, limit),
      columns: columnsOf(query, ui.tasksColumns),
      query: pageQuery,
      sort: sort.sort,
      offset,
      limit,
      hasMore: rows.length > limit,
      total: count,
      capped,
      searchError: error,
    };
    c.header('Vary', 'HX-Request');
    if (c.req.header('HX-Request')) return c.html(<TasksPanel view={view} ui={ui} />);
    const [taskNames, workers] = await Promise.all([taskTypes(db), currentWorkerRecords(db, hot)]);
    return c.html(<TasksPage view={view} filters={values} taskNames={taskNames} workerNames={workers.map((w) => w.hostname)} ui={ui} readOnly={readOnly} />);
  })
  // Flower's server-side DataTables protocol (draw, start, length,
  // search[value], order[0][column], order[0][dir], columns[i][data]).
  .on(['GET', 'POST'], '/tasks/datatable', async (c) => {
    const { db, dialect } = c.var.services;
    const params = new URLSearchParams(new URL(c.req.url).search);
    if (c.req.method === 'POST') {
      const body = await c.req.parseBody();
      for (const [key, value] of Object.entries(body)) if (typeof value === 'string') params.set(key, value);
    }
    const draw = intParam('draw', params.get('draw') ?? undefined) ?? 0;
    const start = intParam('start', params.get('start') ?? undefined) ?? 0;
    const length = Math.min(MAX_PAGE_SIZE, Math.max(1, intParam('length', params.get('length') ?? undefined) ?? 15));
    const orderColumn = params.get('order[0][column]');
    const sortField = orderColumn !== null ? params.get(`columns[${orderColumn}][data]`) : null;
    const column = sortField && (SORTABLE_COLUMNS as readonly string[]).includes(sortField) ? (sortField as SortColumn) : 'started';
    const descending = (params.get('order[0][dir]') ?? 'desc') !== 'asc';
    const totals = await countTasks(db, dialect, {});
    let search;
    try {
      search = parseSearch(params.get('search[value]') ?? '');
    } catch (error) {
      if (!(error instanceof SearchSyntaxError)) throw error;
      return c.json({ draw, data: [], recordsTotal: totals.count, recordsFiltered: 0, searchError: error.message });
    }
    const filters: TaskFilters = { search };
    const [rows, filtered] = await Promise.all([listTasks(db, dialect, filters, { column, descending }, length, start), countTasks(db, dialect, filters)]);
    const children = await childrenOf(db, rows.map((r) => r.uuid));
    return c.json({
      draw,
      data: rows.map((row) => flowerTask(row, children.get(row.uuid) ?? [])),
      recordsTotal: totals.count,
      recordsFiltered: filtered.count,
    });
  })
  .get('/task/:id{.+}', async (c) => {
    const { db, ui, readOnly } = c.var.services;
    const id = c.req.param('id');
    const task = await getTask(db, id);
    if (!task) throw notFound(`Unknown task '${id}'`);
    const [children, timeline] = await Promise.all([childrenOf(db, [task.uuid]), taskTimeline(db, task.uuid)]);
    return c.html(<TaskPage task={task} childIds={children.get(task.uuid) ?? []} timeline={timeline} ui={ui} readOnly={readOnly} />);
  });
