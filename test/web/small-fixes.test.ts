// Issue 11's smaller defects (item 8), each through the routes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { failed, received, retryingTask, revoked, sent, started, succeeded, workerEvent } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T0 = 1_900_000_000;

describe.each(DIALECTS)('smaller fixes on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: ReturnType<typeof testApp>;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    const add = (events: Parameters<EventBatch['add']>[0][]) => {
      for (const e of events) batch.add(e, workers);
    };
    add([
      received({ uuid: 'ok-1', name: 'billing.charge' }, T0),
      started({ uuid: 'ok-1' }, T0 + 1),
      succeeded({ uuid: 'ok-1' }, T0 + 2, '1', 1.234567891),
    ]);
    add([received({ uuid: 'bad-1', name: 'billing.charge' }, T0 + 10), failed({ uuid: 'bad-1' }, T0 + 12)]);
    add([received({ uuid: 'rev-1', name: 'billing.charge' }, T0 + 20), revoked({ uuid: 'rev-1' }, T0 + 21)]);
    // Sent to AMQP's default exchange (''), with an ETA and an expiry as Celery writes them (microseconds; no offset means UTC).
    add([
      sent({ uuid: 'eta-1', name: 'mail.later' }, T0 + 30),
      {
        ...received({ uuid: 'eta-1', name: 'mail.later' }, T0 + 31),
        eta: '2030-03-17T17:46:40.123456+00:00',
        expires: '2030-03-17T18:46:40',
      },
    ]);
    add(retryingTask({ uuid: 'retry-1', name: 'mail.send' }, T0 + 40));
    batch.add(workerEvent('worker-online', 'w1@host', T0 + 50), workers);
    await store(database, batch, workers);
    app = testApp(database, { now: T0 + 100, staticFiles: true });
  });
  afterAll(async () => {
    await database?.drop();
  });

  const get = async (path: string, on = app) => {
    const response = await on.request(path, { redirect: 'manual' });
    return { status: response.status, html: await response.text(), headers: response.headers };
  };

  it('serves an icon: linked from every page, and /favicon.ico pointing at it', async () => {
    const page = await get('/tasks');
    expect(page.html).toContain('<link rel="icon" type="image/svg+xml" href="/static/favicon.svg"/>');
    const icon = await get('/static/favicon.svg');
    expect(icon.status).toBe(200);
    expect(icon.headers.get('content-type')).toContain('image/svg+xml');
    expect(icon.html).toMatch(/^<svg /);
    const legacy = await get('/favicon.ico');
    expect(legacy.status).toBe(301);
    expect(legacy.headers.get('location')).toBe('/static/favicon.svg');
    const prefixed = testApp(database, { ui: { prefix: '/flower' } });
    expect((await get('/flower/favicon.ico', prefixed)).headers.get('location')).toBe('/flower/static/favicon.svg');
  });

  it('points a bad received time at its field, and only a search error at the search syntax', async () => {
    const date = await get('/tasks?received_start=2030-02-30T10:00Z');
    expect(date.status).toBe(400);
    const dateError = /<p class="error" role="alert">([\s\S]*?)<\/p>/.exec(date.html)?.[1] ?? '';
    expect(dateError).toContain('no such date or time');
    expect(dateError).toContain('href="#field-received_start"');
    expect(dateError).not.toContain('search');
    expect(date.html).toContain('id="field-received_start"');
    const end = await get('/tasks?received_end=soon');
    expect(end.html).toContain('href="#field-received_end"');
    const search = await get('/tasks?q=NOT%20this');
    const searchError = /<p class="error" role="alert">([\s\S]*?)<\/p>/.exec(search.html)?.[1] ?? '';
    expect(searchError).toContain('<a href="#search-help">See the search syntax below.</a>');
    expect(search.html).toContain('<details class="help" id="search-help">');
  });

  it('gives REVOKED its own colour, not FAILURE’s red', async () => {
    const { html } = await get('/tasks');
    expect(html).toMatch(/<tr id="task-row-rev-1"[\s\S]*?<span class="badge revoked">REVOKED<\/span>/);
    expect(html).toMatch(/<tr id="task-row-bad-1"[\s\S]*?<span class="badge bad">FAILURE<\/span>/);
  });

  it('shows the default exchange readably, ETA and expiry as times, and timeline runtimes like the table', async () => {
    const task = await get('/task/eta-1');
    expect(task.html).toContain('celery / (default exchange) / celery');
    expect(task.html).not.toContain('celery /  / celery');
    expect(task.html).toContain('<time datetime="2030-03-17T17:46:40.123Z"');
    expect(task.html).toContain('<time datetime="2030-03-17T18:46:40.000Z"');
    const etaRow = /<th[^>]*>ETA \/ expires<\/th>([\s\S]*?)<\/tr>/.exec(task.html)?.[1] ?? '';
    expect(etaRow).toContain('<time datetime="2030-03-17T17:46:40.123Z"');
    expect(etaRow).not.toContain('2030-03-17T17:46:40.123456');
    const list = await get('/tasks?columns=uuid&columns=eta&columns=exchange');
    expect(list.html).toMatch(/<td class="col-eta"><time datetime="2030-03-17T17:46:40.123Z"[^>]*>2030-03-17 17:46:40.123<\/time><\/td>/);
    expect(list.html).toContain('<td class="col-exchange"><span>(default exchange)</span></td>');
    const ok = await get('/task/ok-1');
    expect(ok.html).toContain('runtime=1.23 s');
    expect(ok.html).not.toContain('1.234567891');
  });

  it('links "Retried" to the tasks that were retried, whatever state they ended in', async () => {
    const dashboard = await get('/');
    expect(dashboard.html).toMatch(/<a href="\/tasks\?retried=1">1<\/a>/);
    const list = await get('/tasks?retried=1');
    expect(list.status).toBe(200);
    expect([...list.html.matchAll(/data-task="([^"]+)"/g)].map((m) => m[1])).toEqual(['retry-1']);
    expect(list.html).toContain('data-state="SUCCESS"');
    expect(list.html).toContain('<input type="checkbox" name="retried" value="1" checked=""/>');
    const all = await get('/tasks?retried=0');
    expect(all.html.match(/data-task="/g)?.length).toBeGreaterThan(1);
    expect(all.html).toContain('<input type="checkbox" name="retried" value="1"/>');
  });

  it('sorts blank runtimes last in both directions', async () => {
    const order = async (sort: string) =>
      [...(await get(`/tasks?columns=uuid&sort=${sort}`)).html.matchAll(/data-task="([^"]+)"/g)].map((m) => m[1]);
    const ascending = await order('runtime');
    expect(ascending.slice(0, 2)).toEqual(['retry-1', 'ok-1']);
    expect(ascending).toHaveLength(5);
    const descending = await order('-runtime');
    expect(descending.slice(0, 2)).toEqual(['ok-1', 'retry-1']);
    const byEta = await order('eta');
    expect(byEta[0]).toBe('eta-1');
  });
});
