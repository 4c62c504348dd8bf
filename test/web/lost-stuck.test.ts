// LOST and stuck tasks through the routes (app.request over SQLite and
// MariaDB): the stuck=<seconds> filter on /api/tasks and /tasks, the reason
// in /api/task/info (only when Stalk set the state) and on the task page.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepLost } from '../../worker-collector/store/lost';
import { received, started, succeeded } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const NOW = 1_900_000_000;

describe.each(DIALECTS)('lost and stuck tasks on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: ReturnType<typeof testApp>;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const on = (uuid: string, worker = 'w1@host') => ({ uuid, name: 'reports.build', worker });
    await store(database, [
      received(on('long'), NOW - 901),
      started(on('long'), NOW - 900),
      received(on('short'), NOW - 11),
      started(on('short'), NOW - 10),
      received(on('finished'), NOW - 2000),
      started(on('finished'), NOW - 1999),
      succeeded(on('finished'), NOW - 1000),
      received(on('dropped', 'gone@host'), NOW - 60),
      started(on('dropped', 'gone@host'), NOW - 59),
    ]);
    await sweepLost(database.db, database.dialect, {
      offline: [{ hostname: 'gone@host', at: NOW - 30, how: 'event' }],
      revived: [],
      lostAfter: 0,
      now: NOW,
    });
    app = testApp(database, { now: NOW, ui: { refreshSeconds: 0 } });
  });
  afterAll(async () => {
    await database?.drop();
  });

  const ids = async (path: string) => {
    const response = await app.request(path);
    expect(response.status).toBe(200);
    return Object.keys((await response.json()) as Record<string, unknown>);
  };

  it('stuck=<seconds> lists tasks STARTED at least that long ago and still running', async () => {
    expect(await ids('/api/tasks?stuck=300')).toEqual(['long']);
    expect(await ids('/api/tasks?stuck=10')).toEqual(['short', 'long']);
    expect(await ids('/api/tasks?stuck=5000')).toEqual([]);
    expect(await ids('/api/tasks?stuck=')).toHaveLength(4);
    for (const bad of ['0', '-5', 'abc', '1.5']) expect((await app.request(`/api/tasks?stuck=${bad}`)).status).toBe(400);
  });

  it('the tasks page takes the same filter and shows it back in its form', async () => {
    const response = await app.request('/tasks?stuck=300');
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('/task/long');
    expect(html).not.toContain('/task/short');
    expect(html).toMatch(/<input id="field-stuck"[^>]*value="300"/);
  });

  it('state=LOST finds the task whose worker went away; the reason is in the API and on the page', async () => {
    expect(await ids('/api/tasks?state=LOST')).toEqual(['dropped']);
    expect(await ids('/api/tasks?state=lost')).toEqual(['dropped']);
    const reason = 'worker gone@host went offline at 2030-03-17 17:46:10 UTC (worker-offline event)';
    const lost = (await (await app.request('/api/task/info/dropped')).json()) as Record<string, unknown>;
    expect(lost).toMatchObject({ state: 'LOST', state_reason: reason });
    const running = (await (await app.request('/api/task/info/long')).json()) as Record<string, unknown>;
    expect(running.state).toBe('STARTED');
    expect('state_reason' in running).toBe(false);
    const page = await (await app.request('/task/dropped')).text();
    expect(page).toContain(`<p class="state-reason" id="state-reason">${reason}</p>`);
    expect(page).toContain('<span class="badge lost">LOST</span>');
    expect(await (await app.request('/task/long')).text()).not.toContain('state-reason');
  });
});
