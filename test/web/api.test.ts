// The Flower-compatible API over SQLite and MariaDB, through app.request().

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { failed, received, retryingTask, revoked, sent, started, succeeded, succeedingTask, workerEvent } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T0 = new Date(2026, 10, 24, 9, 0).getTime() / 1000; // 2026-11-24 09:00 local time

describe.each(DIALECTS)('API on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: ReturnType<typeof testApp>;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    const add = (events: ReturnType<typeof succeedingTask>) => {
      for (const e of events) batch.add(e, workers);
    };
    add(succeedingTask({ uuid: 'ok-1', name: 'billing.charge', args: "('c1', 100)", kwargs: "{'note': 'x', 'n': 3}" }, T0));
    add(succeedingTask({ uuid: 'ok-2', name: 'billing.charge', worker: 'w2@host', kwargs: "{'note': 'xy'}" }, T0 + 60));
    add([
      received({ uuid: 'bad-1', name: 'billing.refund' }, T0 + 120),
      started({ uuid: 'bad-1' }, T0 + 121),
      failed({ uuid: 'bad-1' }, T0 + 122, "ValueError('connection refused by bank')"),
    ]);
    add(retryingTask({ uuid: 'retry-1', name: 'mail.send' }, T0 + 180));
    add([sent({ uuid: 'gone-1', name: 'mail.send' }, T0 + 240), revoked({ uuid: 'gone-1' }, T0 + 241)]);
    add([{ ...received({ uuid: 'child-1', name: 'mail.render' }, T0 + 300), parent_id: 'ok-1', root_id: 'ok-1' }]);
    add([
      received({ uuid: 'xss-1', name: 'web.render', args: "('<script>alert(1)</script>',)" }, T0 + 360),
      succeeded({ uuid: 'xss-1' }, T0 + 361, "'<b>done</b>'"),
    ]);
    batch.add(workerEvent('worker-online', 'w1@host', T0 + 400), workers);
    await store(database, batch, workers);
    app = testApp(database, { now: T0 + 401 });
  });
  afterAll(async () => {
    await database?.drop();
  });

  const get = async (path: string) => {
    const response = await app.request(path);
    return { status: response.status, body: (await response.json()) as Record<string, Record<string, unknown>> };
  };

  it('lists tasks keyed by id, newest first, in Flower’s shape', async () => {
    const { status, body } = await get('/api/tasks');
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(['xss-1', 'child-1', 'gone-1', 'retry-1', 'bad-1', 'ok-2', 'ok-1']);
    expect(Object.keys(body['ok-1']!)).toEqual([
      'uuid',
      'name',
      'state',
      'received',
      'sent',
      'started',
      'rejected',
      'succeeded',
      'failed',
      'retried',
      'revoked',
      'args',
      'kwargs',
      'eta',
      'expires',
      'retries',
      'worker',
      'result',
      'exception',
      'timestamp',
      'runtime',
      'traceback',
      'exchange',
      'routing_key',
      'clock',
      'client',
      'root',
      'root_id',
      'parent',
      'parent_id',
      'children',
    ]);
    expect(body['ok-1']).toMatchObject({ state: 'SUCCESS', worker: 'w1@host', args: "('c1', 100)", result: '5', children: ['child-1'] });
    expect(body['child-1']).toMatchObject({ parent: 'ok-1', parent_id: 'ok-1', root: 'ok-1' });
  });

  it('pages, sorts and filters like Flower', async () => {
    expect(Object.keys((await get('/api/tasks?limit=2&offset=1')).body)).toEqual(['child-1', 'gone-1']);
    expect(Object.keys((await get('/api/tasks?offset=-5&limit=1')).body)).toEqual(['xss-1']);
    expect(Object.keys((await get('/api/tasks?sort_by=name&limit=3')).body)).toEqual(['ok-1', 'ok-2', 'bad-1']);
    expect(Object.keys((await get('/api/tasks?sort_by=-received&limit=1')).body)).toEqual(['xss-1']);
    expect(Object.keys((await get('/api/tasks?state=FAILURE')).body)).toEqual(['bad-1']);
    expect(Object.keys((await get('/api/tasks?taskname=mail.send')).body)).toEqual(['gone-1', 'retry-1']);
    expect(Object.keys((await get('/api/tasks?workername=w2@host')).body)).toEqual(['ok-2']);
    expect(Object.keys((await get('/api/tasks?state=All&workername=All&taskname=All')).body)).toHaveLength(7);
    expect(Object.keys((await get('/api/tasks?received_start=2026-11-24%2009:01&received_end=2026-11-24%2009:04')).body)).toEqual([
      'retry-1',
      'bad-1',
      'ok-2',
    ]);
  });

  it('searches with Flower’s query language, quotes and exceptions included', async () => {
    const ids = async (q: string) => Object.keys((await get(`/api/tasks?search=${encodeURIComponent(q)}`)).body);
    expect(await ids('state:failure')).toEqual(['bad-1']);
    expect(await ids('name:billing')).toEqual(['bad-1', 'ok-2', 'ok-1']);
    expect(await ids('"connection refused"')).toEqual(['bad-1']);
    expect(await ids('kwargs:note=x')).toEqual(['ok-1']);
    expect(await ids('kwargs:n=3')).toEqual(['ok-1']);
    expect(await ids('name:mail OR state:failure')).toEqual(['child-1', 'gone-1', 'retry-1', 'bad-1']);
    expect(await ids('(name:mail OR name:billing) state:success')).toEqual(['retry-1', 'ok-2', 'ok-1']);
    expect(await ids('args:<script>')).toEqual(['xss-1']);
    expect(await ids('100%')).toEqual([]);
  });

  it('answers bad parameters with 400 and a message, not 500', async () => {
    for (const query of ['sort_by=bogus', 'limit=ten', 'limit=-1', 'received_start=yesterday', 'received_end=2026-13-01%2000:00']) {
      const { status, body } = await get(`/api/tasks?${query}`);
      expect(status, query).toBe(400);
      expect(typeof body.error).toBe('string');
    }
    const bad = await get('/api/tasks?search=NOT%20x');
    expect(bad).toEqual({ status: 400, body: { error: 'NOT is not supported at position 0.' } });
  });

  it('shows one task, or 404', async () => {
    const { status, body } = await get('/api/task/info/retry-1');
    expect(status).toBe(200);
    expect(body).toMatchObject({ uuid: 'retry-1', state: 'SUCCESS', retries: 1, exception: "RuntimeError('later')" });
    expect((await get('/api/task/info/nope')).status).toBe(404);
  });

  it('lists task types seen', async () => {
    expect((await get('/api/task/types')).body).toEqual({
      'task-types': ['billing.charge', 'billing.refund', 'mail.render', 'mail.send', 'web.render'],
    });
  });

  it('lists workers with their event-derived facts and status', async () => {
    const { body } = await get('/api/workers');
    expect(Object.keys(body)).toEqual(['w1@host', 'w2@host']);
    expect(body['w1@host']).toMatchObject({ hostname: 'w1@host', status: true, sw_ident: 'py-celery', freq: 2, loadavg: [0.1, 0.2, 0.3] });
    expect((body['w1@host']!.events as Record<string, number>)['task-succeeded']).toBe(3);
    // w2 was only seen through task events, 340 s ago: past Celery's default 2 x 60 s.
    expect((await get('/api/workers?status=1')).body).toEqual({ 'w1@host': true, 'w2@host': false });
    expect((await get('/api/workers?workername=w2@host')).body).toHaveProperty(['w2@host', 'hostname'], 'w2@host');
    expect((await get('/api/workers?workername=nobody')).status).toBe(404);
  });

  it('reports offline workers once heartbeats are too old', async () => {
    const later = testApp(database, { now: T0 + 401 + 1000 });
    const body = (await (await later.request('/api/workers?status=true')).json()) as Record<string, boolean>;
    expect(body).toEqual({ 'w1@host': false, 'w2@host': false });
  });
});

describe('healthcheck', () => {
  it('says OK or 503 with the reason', async () => {
    const database = await openTestDatabase('sqlite');
    try {
      expect(await (await testApp(database).request('/healthcheck')).text()).toBe('OK');
      const sick = testApp(database, { health: async () => ({ ok: false, problems: ['broker unavailable: redis://x'] }) });
      const response = await sick.request('/healthcheck');
      expect(response.status).toBe(503);
      expect(await response.text()).toBe('broker unavailable: redis://x');
    } finally {
      await database.drop();
    }
  });

  it('answers unknown paths with 404', async () => {
    const database = await openTestDatabase('sqlite');
    try {
      const app = testApp(database);
      expect((await app.request('/nowhere')).status).toBe(404);
      const api = await app.request('/api/nowhere');
      expect(api.status).toBe(404);
      expect(await api.json()).toEqual({ error: 'Not found' });
    } finally {
      await database.drop();
    }
  });
});
