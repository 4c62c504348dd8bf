// Flower-compatible JSON API (flower/api/tasks.py and workers.py shapes).

import { Hono } from 'hono';
import { AppError, badRequest, notFound, quoted } from '../errors';
import { childrenOf, childrenOfPage, getTask, listTasks, SORTABLE_COLUMNS, type SortColumn, taskTypes } from '../queries/tasks';
import { allCachedInspect } from '../queries/inspect';
import { currentWorkerRecords, summarize } from '../queries/workers';
import { MAX_COMMAND_SECONDS } from '../shared/control';
import type { AppEnv } from '../services';
import { parseSearch, SEARCH_LIMITS, SearchSyntaxError } from '../shared/search';
import { flowerTask, flowerWorker } from './flower-json';
import { LIMITS, type Params, pathName, query, stateFilter, stuckFilter } from './params';

/** With no `limit`, /api/tasks returns at most this many (Flower's own history cap). */
export const API_TASKS_DEFAULT_CAP = LIMITS.apiTasks;

/** Flower's sort_by: a task column, '-' first for descending. */
function sortParam(params: Params): { column: SortColumn; descending: boolean } | undefined {
  const value = params.one('sort_by');
  if (value === undefined || value === '') return undefined;
  const descending = value.startsWith('-');
  const column = value.replace(/^-/, '');
  if (!(SORTABLE_COLUMNS as readonly string[]).includes(column)) {
    throw badRequest(`Invalid sort_by '${quoted(value)}': use one of ${SORTABLE_COLUMNS.join(', ')}, with '-' for descending`);
  }
  return { column: column as SortColumn, descending };
}

/** A name filter as Flower takes it: absent, empty or "All" means none. */
function nameFilter(params: Params, name: string): string | undefined {
  const value = params.name(name);
  return value === 'All' ? undefined : value;
}

export const apiRoutes = new Hono<AppEnv>()
  .get('/tasks', async (c) => {
    const { db, dialect } = c.var.services;
    const q = query(c);
    let search;
    try {
      search = parseSearch(q.raw('search', SEARCH_LIMITS.length));
    } catch (error) {
      if (error instanceof SearchSyntaxError) throw badRequest(error.message);
      throw error;
    }
    const limit = q.int('limit', { min: 0, max: LIMITS.apiTasks });
    // Flower reads a negative offset as 0.
    const offset = Math.max(0, q.int('offset', { min: -LIMITS.offset, max: LIMITS.offset }) ?? 0);
    const filters = {
      state: stateFilter(q, 'state'),
      worker: nameFilter(q, 'workername'),
      name: nameFilter(q, 'taskname'),
      receivedStart: q.localMinute('received_start'),
      receivedEnd: q.localMinute('received_end'),
      search,
      ...stuckFilter(q, c.var.services.now()),
    };
    const sort = sortParam(q);
    const count = limit ? limit : API_TASKS_DEFAULT_CAP;
    // One round trip: the page and its children side by side.
    const [rows, pageChildren] = await Promise.all([
      listTasks(db, dialect, filters, sort, count, offset),
      childrenOfPage(db, dialect, filters, sort, count, offset),
    ]);
    const children =
      pageChildren ??
      (await childrenOf(
        db,
        rows.map((r) => r.uuid),
      ));
    const body: Record<string, unknown> = {};
    for (const row of rows) body[row.uuid] = flowerTask(row, children.get(row.uuid) ?? []);
    return c.json(body);
  })
  .get('/task/info/:id{.+}', async (c) => {
    const { db } = c.var.services;
    const id = pathName(c, 'id');
    const row = await getTask(db, id);
    if (!row) throw notFound(`Unknown task '${quoted(id)}'`);
    const children = await childrenOf(db, [row.uuid]);
    return c.json(flowerTask(row, children.get(row.uuid) ?? []));
  })
  .get('/task/types', async (c) => c.json({ 'task-types': await taskTypes(c.var.services.db) }))
  .get('/workers', async (c) => {
    const { db, hot, now, control, inspectTimeoutMs } = c.var.services;
    const q = query(c);
    const status = q.bool('status');
    const workername = q.name('workername');
    if (q.bool('refresh')) {
      if (!control) throw new AppError('UNAVAILABLE', 'No collector is reachable for commands');
      const outcome = await control.run(
        { kind: 'inspect', ...(workername ? { worker: workername } : {}) },
        c.var.user ?? 'anonymous',
        Math.min(MAX_COMMAND_SECONDS, inspectTimeoutMs / 1000 + 5),
      );
      if (!outcome.ok) {
        if (outcome.status === 404) throw notFound(outcome.error);
        if (outcome.status === 403) throw new AppError('FORBIDDEN', outcome.error);
        throw new AppError('UNAVAILABLE', `Failed to update workers: ${outcome.error}`);
      }
    }
    let workers = summarize(await currentWorkerRecords(db, hot), now());
    if (workername !== undefined) workers = workers.filter((w) => w.hostname === workername);
    if (status) return c.json(Object.fromEntries(workers.map((w) => [w.hostname, w.alive])));
    if (workername && workers.length === 0) throw notFound(`Unknown worker '${quoted(workername)}'`);
    const inspected = await allCachedInspect(db);
    return c.json(Object.fromEntries(workers.map((w) => [w.hostname, flowerWorker(w, inspected.get(w.hostname))])));
  });
