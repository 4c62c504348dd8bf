// Every page, full and as the htmx fragment, through app.request().

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { failed, received, retryingTask, started, succeeded, succeedingTask, workerEvent } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T0 = 1_900_000_000;
const HOSTILE = "<script>alert('pwned')</script>";

describe.each(DIALECTS)('pages on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: ReturnType<typeof testApp>;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    const add = (events: ReturnType<typeof succeedingTask>) => {
      for (const e of events) batch.add(e, workers);
    };
    add(succeedingTask({ uuid: 'ok-1', name: 'billing.charge' }, T0));
    add([
      received({ uuid: 'bad-1', name: 'billing.refund' }, T0 + 10),
      started({ uuid: 'bad-1' }, T0 + 11),
      failed({ uuid: 'bad-1' }, T0 + 12, "ValueError('declined')"),
    ]);
    add(retryingTask({ uuid: 'retry-1', name: 'mail.send' }, T0 + 20));
    add([{ ...received({ uuid: 'child-1', name: 'mail.render' }, T0 + 30), parent_id: 'ok-1', root_id: 'ok-1' }]);
    add([
      received({ uuid: 'xss-1', name: 'web.render', args: `('${HOSTILE}',)`, kwargs: `{'html': '${HOSTILE}'}` }, T0 + 40),
      succeeded({ uuid: 'xss-1' }, T0 + 41, `'${HOSTILE}'`),
    ]);
    for (let i = 0; i < 30; i++) add([received({ uuid: `bulk-${String(i).padStart(2, '0')}`, name: 'bulk.job' }, T0 + 100 + i)]);
    batch.add(workerEvent('worker-online', 'w1@host', T0 + 200), workers);
    batch.add(workerEvent('worker-online', `${HOSTILE}@host`, T0 + 200), workers);
    await store(database, batch, workers);
    await database.db
      .insertInto('queues')
      .values({ name: 'celery', messages: 42, ready: null, unacked: null, consumers: null, measured_at: T0 + 200 })
      .execute();
    app = testApp(database, { now: T0 + 201 });
  });
  afterAll(async () => {
    await database?.drop();
  });

  const page = async (path: string, headers: Record<string, string> = {}, on = app) => {
    const response = await on.request(path, { headers });
    return { status: response.status, html: await response.text(), headers: response.headers };
  };

  it('renders the workers dashboard, and its panel alone for htmx', async () => {
    const full = await page('/');
    expect(full.status).toBe(200);
    expect(full.html).toMatch(/^<html/);
    expect(full.html).toContain('data-worker="w1@host"');
    expect(full.html).toContain('hx-trigger="every 3s"');
    expect(full.headers.get('vary')).toContain('HX-Request');
    const fragment = await page('/workers', { 'HX-Request': 'true' });
    expect(fragment.html).toMatch(/^<section id="workers-panel"/);
    expect(fragment.html).not.toContain('<html');
  });

  it('serves the dashboard data as Flower’s JSON', async () => {
    const { html } = await page('/workers?json=1');
    const body = JSON.parse(html) as { data: Record<string, unknown>[] };
    const w1 = body.data.find((w) => w.hostname === 'w1@host');
    expect(w1).toMatchObject({ hostname: 'w1@host', status: true, 'task-received': 36, 'task-succeeded': 3, 'task-failed': 1 });
  });

  it('shows a worker page with its tabs, and a 404 page for an unknown worker', async () => {
    const { status, html } = await page('/worker/w1%40host');
    expect(status).toBe(200);
    for (const tab of ['overview', 'pool', 'broker', 'queues', 'tasks', 'limits', 'config', 'system'])
      expect(html).toContain(`id="tab-${tab}"`);
    expect(html).toContain('billing.charge');
    const missing = await page('/worker/nobody');
    expect(missing.status).toBe(404);
    expect(missing.html).toContain('Unknown worker &#39;nobody&#39;');
  });

  it('lists tasks newest first, filters, sorts and pages on the server', async () => {
    const all = await page('/tasks');
    expect(all.status).toBe(200);
    expect(all.html).toContain('1–25 of 35');
    expect(all.html).toContain('rel="next"');
    const failedOnly = await page('/tasks?state=FAILURE');
    expect(failedOnly.html.match(/data-task="/g)).toHaveLength(1);
    expect(failedOnly.html).toContain('data-task="bad-1"');
    const second = await page('/tasks?offset=25', { 'HX-Request': 'true' });
    expect(second.html).toMatch(/^<section id="tasks-panel"/);
    expect(second.html.match(/data-task="/g)).toHaveLength(10);
    const byName = await page('/tasks?sort=name&limit=3');
    expect([...byName.html.matchAll(/data-task="([^"]+)"/g)].map((m) => m[1])).toEqual(['ok-1', 'bad-1', 'bulk-00']);
    const worker = await page('/tasks?worker=w1%40host&name=mail.send');
    expect([...worker.html.matchAll(/data-task="([^"]+)"/g)].map((m) => m[1])).toEqual(['retry-1']);
  });

  it('searches with the query language and reports syntax errors on the page', async () => {
    const found = await page(`/tasks?q=${encodeURIComponent('name:billing "declined"')}`);
    expect([...found.html.matchAll(/data-task="([^"]+)"/g)].map((m) => m[1])).toEqual(['bad-1']);
    const bad = await page('/tasks?q=NOT%20this', { 'HX-Request': 'true' });
    expect(bad.status).toBe(200);
    expect(bad.html).toContain('NOT is not supported at position 0.');
  });

  it('shows the chosen columns', async () => {
    const { html } = await page('/tasks?columns=name&columns=exception&limit=40');
    expect(html).toContain('class="col-exception"');
    expect(html).not.toContain('class="col-args"');
  });

  it('renders task args, results and worker names inert', async () => {
    for (const path of ['/tasks', '/task/xss-1', '/', `/worker/${encodeURIComponent(`${HOSTILE}@host`)}`]) {
      const { html } = await page(path);
      expect(html, path).not.toContain("<script>alert('pwned')</script>");
    }
    const { html } = await page('/task/xss-1');
    expect(html).toContain('&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;');
  });

  it('shows a task with its error, timeline and family', async () => {
    const failure = await page('/task/bad-1');
    expect(failure.html).toContain('ValueError(&#39;declined&#39;)');
    expect(failure.html).toContain('class="traceback"');
    expect(failure.html.match(/<td>task-(received|started|failed)<\/td>/g)).toHaveLength(3);
    const parent = await page('/task/ok-1');
    expect(parent.html).toContain('href="/task/child-1"');
    const child = await page('/task/child-1');
    expect(child.html).toContain('href="/task/ok-1"');
    expect((await page('/task/nope')).status).toBe(404);
  });

  it('shows queue lengths with when they were measured', async () => {
    const { html } = await page('/broker');
    expect(html).toContain('data-queue="celery"');
    expect(html).toMatch(/<td class="num">42<\/td>/);
    expect(html).toContain(`datetime="${new Date((T0 + 200) * 1000).toISOString()}"`);
  });

  it('answers Flower’s DataTables protocol', async () => {
    const query =
      'draw=3&start=0&length=2&search%5Bvalue%5D=state%3Asuccess&order%5B0%5D%5Bcolumn%5D=0&order%5B0%5D%5Bdir%5D=asc&columns%5B0%5D%5Bdata%5D=name';
    const body = JSON.parse((await page(`/tasks/datatable?${query}`)).html) as {
      draw: number;
      recordsTotal: number;
      recordsFiltered: number;
      data: { uuid: string }[];
    };
    expect(body).toMatchObject({ draw: 3, recordsTotal: 35, recordsFiltered: 3 });
    expect(body.data.map((t) => t.uuid)).toEqual(['ok-1', 'retry-1']);
    const bad = JSON.parse((await page('/tasks/datatable?draw=1&search%5Bvalue%5D=ab')).html) as { searchError: string; data: unknown[] };
    expect(bad.searchError).toContain('at least 3 characters');
    expect(bad.data).toEqual([]);
  });

  it('prefixes every link and asset under --url-prefix, and marks natural times', async () => {
    const prefixed = testApp(database, { now: T0 + 201, ui: { prefix: '/flower', naturalTime: true } });
    const { status, html } = await page('/flower/tasks', {}, prefixed);
    expect(status).toBe(200);
    expect(html).toContain('href="/flower/static/stalk.css"');
    expect(html).toContain('href="/flower/task/bulk-29"');
    expect(html).toContain('data-natural="1"');
    expect(html).not.toMatch(/href="\/task\//);
    expect((await page('/tasks', {}, prefixed)).status).toBe(404);
  });
});
