// Walk every route of the app (read from Hono's own route table, so a route
// added later is walked too) with the ids and names the database holds
// substituted into its path parameters, and fail on any answer that is an
// internal error. The one 5xx allowed is the documented 503 of a route that
// needs the collector's command channel, which these tests do not run.

import { expect } from 'vitest';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/shared/schema';
import { pathSegment } from '../../src/shared/text';
import { TASK_COLUMN_NAMES } from '../../src/ui/context';
import type { testApp } from '../support/app';
import { handlerRoutes } from '../security/support';

type App = ReturnType<typeof testApp>;

const ORIGIN = 'http://stalk.test';
/** Values substituted per parameter (the walk's cost grows with them). */
const PER_PARAMETER = 2;
const NO_COLLECTOR = /No collector is reachable/;

export interface StoredKeys {
  taskIds: string[];
  workerNames: string[];
  taskNames: string[];
  /** Paths that must answer 200: the pages of tasks and workers the tables hold. */
  mustExist: string[];
}

/**
 * An id the URL can carry back unchanged: well formed, not a dot segment the
 * URL parser resolves away, and without a line terminator (the routes'
 * `{.+}` patterns do not match one, so such an id's page is a 404).
 */
function addressable(value: string): boolean {
  return value !== '' && value.isWellFormed() && !/^\.+$/.test(value) && !/[\n\r\u2028\u2029]/.test(value);
}

/** Ids and names to put into paths: what the tables hold, newest first, plus one that is not there. */
export async function storedKeys(db: Kysely<Database>): Promise<StoredKeys> {
  const [tasks, workers, inspected, counted] = await Promise.all([
    db.selectFrom('tasks').select(['uuid', 'name', 'worker']).orderBy('id', 'desc').limit(PER_PARAMETER).execute(),
    db.selectFrom('workers').select('hostname').limit(PER_PARAMETER).execute(),
    db.selectFrom('worker_inspect').select('hostname').limit(1).execute(),
    db.selectFrom('event_counters').select('task_name').limit(1).execute(),
  ]);
  const some = (values: (string | null)[], missing: string) =>
    [...new Set(values.filter((v): v is string => v !== null && v !== ''))].slice(0, PER_PARAMETER + 1).concat(missing);
  return {
    mustExist: [
      '/',
      '/tasks',
      '/metrics',
      ...tasks.filter((t) => addressable(t.uuid)).map((t) => `/task/${pathSegment(t.uuid)}`),
      ...workers.filter((w) => addressable(w.hostname)).map((w) => `/worker/${pathSegment(w.hostname)}`),
    ],
    taskIds: some(
      tasks.map((t) => t.uuid),
      'no-such-task',
    ),
    workerNames: some(
      [...workers.map((w) => w.hostname), ...inspected.map((w) => w.hostname), ...tasks.map((t) => t.worker)],
      'no-such@worker',
    ),
    taskNames: some([...tasks.map((t) => t.name), ...counted.map((c) => c.task_name)], 'no.such.task'),
  };
}

interface Probe {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

function valuesFor(parameter: string, pattern: string, keys: StoredKeys): string[] {
  if (parameter === 'id') return keys.taskIds;
  return pattern.includes('/worker') ? keys.workerNames : keys.taskNames;
}

/** Every route, once per substituted value, and the list pages in their other shapes (sorts, fragments, JSON). */
export function probes(app: App, keys: StoredKeys): Probe[] {
  const list: Probe[] = [];
  for (const route of handlerRoutes(app)) {
    const methods = route.method === 'ALL' ? ['GET', 'POST'] : [route.method];
    const parameter = /:([A-Za-z_]+)/.exec(route.path)?.[1];
    const values = parameter ? valuesFor(parameter, route.path, keys) : [''];
    for (const method of methods) {
      for (const value of values) {
        const path = route.path.replace(/:([A-Za-z_]+)(\{[^}]*\})?/, () => pathSegment(value));
        list.push({
          method,
          path,
          ...(method === 'POST' ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' } : {}),
        });
      }
    }
  }
  const columns = TASK_COLUMN_NAMES.map((c) => `columns=${c}`).join('&');
  const worker = pathSegment(keys.workerNames[0] ?? '');
  const name = pathSegment(keys.taskNames[0] ?? '');
  for (const sort of ['-received', 'received', '-started', 'runtime', '-timestamp', 'eta', 'name'])
    list.push({ method: 'GET', path: `/tasks?sort=${sort}&${columns}` });
  list.push(
    { method: 'GET', path: `/tasks?worker=${worker}&name=${name}&${columns}` },
    { method: 'GET', path: '/tasks', headers: { 'HX-Request': 'true' } },
    { method: 'GET', path: '/', headers: { 'HX-Request': 'true' } },
    { method: 'GET', path: '/workers', headers: { 'HX-Request': 'true' } },
    { method: 'GET', path: '/workers?json=1' },
    { method: 'GET', path: '/api/workers?status=true' },
    { method: 'GET', path: `/api/workers?workername=${worker}` },
    { method: 'GET', path: `/api/tasks?sort_by=-received&workername=${worker}&taskname=${name}` },
    { method: 'GET', path: '/tasks/datatable?draw=1&start=0&length=10&order[0][column]=0&order[0][dir]=asc&columns[0][data]=received' },
  );
  return list;
}

/** Request every probe; no answer may be an internal error, and nothing may be logged as one. */
export async function expectEveryRouteAnswers(app: App, keys: StoredKeys, logs: string[]): Promise<void> {
  // The walk is only worth something if the pages of what is stored render (not a 404 or a 401).
  for (const path of keys.mustExist) {
    const response = await app.request(`${ORIGIN}${path}`);
    expect(response.status, `${path}: ${await response.text().then((t) => t.slice(0, 200))}`).toBe(200);
  }
  for (const probe of probes(app, keys)) {
    const response = await app.request(`${ORIGIN}${probe.path}`, {
      method: probe.method,
      ...(probe.headers ? { headers: probe.headers } : {}),
      ...(probe.body !== undefined ? { body: probe.body } : {}),
    });
    const body = await response.text();
    const label = `${probe.method} ${probe.path} answered ${response.status}: ${body.slice(0, 200)}`;
    if (response.status >= 500) {
      expect(response.status, label).toBe(503);
      expect(body, label).toMatch(NO_COLLECTOR);
    }
  }
  expect(logs.filter((line) => / ERROR /.test(line))).toEqual([]);
}
