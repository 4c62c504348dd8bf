// Retry and bulk retry (issue 12): a failed task sent again with its exact
// arguments, as a new task linked to the original. The web app picks the
// tasks from stored rows; the collector (worker-collector/control/retry.ts)
// recovers each task's arguments, sends, links and audits.
//
// POST /api/task/retry/{id}: {"task-id": new, "retried-from": id}, or 409
// {"error": reason} when the arguments cannot be recovered exactly.
// POST /api/tasks/retry: GET /api/tasks's filters plus `limit` (required,
// 1-10,000), `dry_run`, `chunk` (tasks sent per burst, default 100) and
// `pause` (seconds between bursts, default 0.1); answers
// {"retried": N, "refused": {id: reason}, "tasks": {original: new}}.

import type { Context } from 'hono';
import { Hono } from 'hono';
import { badRequest, notFound, quoted } from '../errors';
import { getTask, listTasks, type TaskFilters } from '../queries/tasks';
import type { AppEnv } from '../services';
import { MAX_COMMAND_SECONDS, MAX_RETRY_CHUNK, MAX_RETRY_TASKS, type RetryReport } from '../shared/control';
import { parseSearch, SEARCH_LIMITS, SearchSyntaxError } from '../shared/search';
import { runCommand } from './commands';
import { form, type Params, pathName, stateFilter } from './params';
import { taskHref } from '../../templates/components/format';

type C = Context<AppEnv>;

const DEFAULT_CHUNK = 100;
const DEFAULT_PAUSE_SECONDS = 0.1;
/** The pauses of one bulk retry fit well inside the longest wait for the collector. */
const MAX_PAUSES_SECONDS = 30;

/** Retried tasks are sent one by one: time to allow for each, on top of the pauses. */
const SECONDS_PER_TASK = 0.002;

const nameFilter = (p: Params, name: string) => {
  const value = p.name(name);
  return value === 'All' ? undefined : value;
};

/** GET /api/tasks's filters, read the same way; the values as given, for the audit log. */
function bulkFilters(p: Params): { filters: TaskFilters; given: Record<string, string> } {
  let search;
  try {
    search = parseSearch(p.raw('search', SEARCH_LIMITS.length));
  } catch (error) {
    if (error instanceof SearchSyntaxError) throw badRequest(error.message);
    throw error;
  }
  const filters: TaskFilters = {
    state: stateFilter(p, 'state'),
    worker: nameFilter(p, 'workername'),
    name: nameFilter(p, 'taskname'),
    receivedStart: p.localMinute('received_start'),
    receivedEnd: p.localMinute('received_end'),
    search,
  };
  const given: Record<string, string> = {};
  for (const key of ['state', 'taskname', 'workername', 'search', 'received_start', 'received_end']) {
    const value = p.one(key);
    if (value !== undefined && value !== '') given[key] = value;
  }
  return { filters, given };
}

function commandFailed(c: C, status: number, error: string) {
  if (c.req.header('HX-Request')) return c.html(<output class="outcome bad">{error}</output>);
  return c.json({ error }, status === 504 ? 503 : (status as 400 | 403 | 404 | 503));
}

function bulkMessage(report: RetryReport, dryRun: boolean): string {
  const sent = Object.keys(report.tasks).length;
  const refused = Object.values(report.refused);
  const verb = dryRun ? 'Would retry' : 'Retried';
  const first = refused[0];
  return `${verb} ${sent} task${sent === 1 ? '' : 's'}${refused.length > 0 ? `; refused ${refused.length} (first: ${first})` : ''}`;
}

export const retryRoutes = new Hono<AppEnv>()
  .post('/task/retry/:id{.+}', async (c) => {
    const { db, ui } = c.var.services;
    const id = pathName(c, 'id');
    await form(c);
    if (!(await getTask(db, id))) throw notFound(`Unknown task '${quoted(id)}'`);
    const outcome = await runCommand(c, { kind: 'retry', tasks: [id], dryRun: false, chunk: 1, pauseMs: 0 });
    if (!outcome.ok) return commandFailed(c, outcome.status, outcome.error);
    const sent = outcome.result.tasks[id];
    const htmx = Boolean(c.req.header('HX-Request'));
    if (!sent) {
      const error = outcome.result.refused[id] ?? 'the collector did not retry the task';
      return htmx ? c.html(<output class="outcome bad">{error}</output>) : c.json({ error }, 409);
    }
    if (htmx)
      return c.html(
        <output class="outcome ok">
          Retried as <a href={taskHref(ui, sent)}>{sent}</a>
        </output>,
      );
    return c.json({ 'task-id': sent, 'retried-from': id });
  })
  .post('/tasks/retry', async (c) => {
    const { db, dialect } = c.var.services;
    const p = await form(c);
    const { filters, given } = bulkFilters(p);
    const limit = p.requiredInt('limit', { min: 1, max: MAX_RETRY_TASKS });
    const dryRun = p.bool('dry_run');
    const chunk = p.int('chunk', { min: 1, max: MAX_RETRY_CHUNK }) ?? DEFAULT_CHUNK;
    const pause = p.float('pause', { min: 0, max: 10 }) ?? DEFAULT_PAUSE_SECONDS;
    const bursts = Math.ceil(limit / chunk);
    const waitSeconds = (bursts - 1) * pause + limit * SECONDS_PER_TASK + 10;
    if ((bursts - 1) * pause > MAX_PAUSES_SECONDS || waitSeconds > MAX_COMMAND_SECONDS)
      throw badRequest(`${bursts} bursts with ${pause} s between them take too long: raise 'chunk', lower 'pause' or 'limit'`);
    const rows = await listTasks(db, dialect, filters, undefined, limit, 0);
    let report: RetryReport = { tasks: {}, refused: {} };
    if (rows.length > 0) {
      const outcome = await runCommand(
        c,
        { kind: 'retry', tasks: rows.map((r) => r.uuid), dryRun, chunk, pauseMs: Math.round(pause * 1000), filters: given },
        waitSeconds,
      );
      if (!outcome.ok) return commandFailed(c, outcome.status, outcome.error);
      report = outcome.result;
    }
    if (c.req.header('HX-Request')) {
      const bad = Object.keys(report.tasks).length === 0 && rows.length > 0;
      return c.html(<output class={`outcome ${bad ? 'bad' : 'ok'}`}>{bulkMessage(report, dryRun)}</output>);
    }
    return c.json({
      retried: Object.keys(report.tasks).length,
      refused: report.refused,
      tasks: report.tasks,
      ...(dryRun ? { dry_run: true } : {}),
    });
  });
