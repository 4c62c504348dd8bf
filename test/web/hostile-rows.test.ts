// The reported cases of "one event takes a page down for everyone", each on
// SQLite and MariaDB: a heartbeat whose hostname holds a lone surrogate, a
// task time outside Date's range (stored before decode refused it, or by
// another writer), and lone surrogates in task fields read back as one
// U+FFFD each. The property tests (test/property) cover the whole class.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerRecord } from '../../src/shared/workers';
import { redisEnvelope } from '../../worker-collector/kombu-wire';
import { decodeRedisMessage } from '../../worker-collector/decode';
import { EventBatch } from '../../worker-collector/fold/batch';
import { type WorkerState, workerToRow } from '../../worker-collector/fold/worker';
import { succeedingTask } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const NOW = 1_800_000_000;

function message(body: unknown): Buffer {
  return Buffer.from(redisEnvelope(body, { hostname: 'x' }, 'celeryev', 'worker.heartbeat', 1));
}

describe.each(DIALECTS)('hostile rows on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  const workers = new Map<string, WorkerState>();

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    // Through decode, as the collector takes them.
    const batch = new EventBatch();
    const events = [
      { type: 'worker-heartbeat', hostname: 'a\ud800@x', timestamp: NOW, freq: 2, loadavg: [0.5, 0.25, 0.125], active: 1 },
      { type: 'task-received', uuid: 'lone-1', hostname: 'a\ud800@x', timestamp: NOW, name: 'n\udc00ame', args: 'a\ud800b', kwargs: '{}' },
    ];
    for (const body of events) for (const event of decodeRedisMessage(message(body), NOW + 1).events) batch.add(event, workers);
    await store(database, batch, workers);
    // Written straight into the table, as an older version or another writer could.
    await store(database, succeedingTask({ uuid: 'far-1', name: 'tasks.far' }, NOW - 100));
    await database.db
      .updateTable('tasks')
      .set({ timestamp: 1e20, received: 1e20, started: -1e20, runtime: -5 })
      .where('uuid', '=', 'far-1')
      .execute();
    // A row from before decode sanitized: its id holds a lone surrogate as it came.
    await store(database, succeedingTask({ uuid: 'legacy-1', name: 'tasks.legacy' }, NOW - 200));
    await database.db.updateTable('tasks').set({ uuid: 'legacy-\ud800-1' }).where('uuid', '=', 'legacy-1').execute();
  });
  afterAll(async () => {
    await database?.drop();
  });

  const hot = () => ({
    workers: async (): Promise<WorkerRecord[]> =>
      [...workers.values()].map((w) => ({ ...workerToRow(w), loadavg: w.loadavg, heartbeats: w.heartbeats, events: {} })),
  });

  it('a heartbeat hostname with a lone surrogate: the dashboard, its poll and the worker page answer', async () => {
    for (const app of [testApp(database, { now: NOW + 2 }), testApp(database, { now: NOW + 2, hot: hot() })]) {
      for (const [path, headers] of [
        ['/', {}],
        ['/workers', {}],
        ['/workers', { 'HX-Request': 'true' }],
      ] as const) {
        const response = await app.request(path, { headers });
        expect(response.status, path).toBe(200);
        // Stored and shown with one U+FFFD; the link to the worker page is encodable.
        expect(await response.text()).toContain('href="/worker/a%EF%BF%BD%40x"');
      }
      const page = await app.request('/worker/a%EF%BF%BD%40x');
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<h1>a\ufffd@x</h1>');
    }
  });

  it('lone surrogates in task fields come back as one U+FFFD each', async () => {
    const app = testApp(database, { now: NOW + 2 });
    const response = await app.request('/api/task/info/lone-1');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ name: 'n\ufffdame', args: 'a\ufffdb', worker: 'a\ufffd@x' });
  });

  it('a row stored with a lone surrogate in its id (before the fix): the list links to its page, and the page opens', async () => {
    const app = testApp(database, { now: NOW + 2 });
    const list = await (await app.request('/tasks?name=tasks.legacy')).text();
    // SQLite's driver wrote the surrogate as three bytes that read back as three U+FFFD; MariaDB stored one U+FFFD.
    const link = /href="(\/task\/legacy-[^"]+)"/.exec(list)?.[1];
    expect(link).toMatch(/^\/task\/legacy-(%EF%BF%BD)+-1$/);
    const page = await app.request(link!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('tasks.legacy');
  });

  it('a task time outside Date’s range: the task lists and the task page answer, showing a placeholder with the stored value', async () => {
    const app = testApp(database, { now: NOW + 2 });
    for (const path of [
      '/tasks',
      '/tasks?sort=-received',
      '/tasks?sort=started&columns=received&columns=started&columns=runtime',
      '/task/far-1',
      '/api/tasks',
      '/api/task/info/far-1',
    ]) {
      const response = await app.request(path);
      expect(response.status, path).toBe(200);
      const body = await response.text();
      if (path.startsWith('/api')) continue;
      expect(body, path).toContain(`title="stored value: ${String(1e20)}"`);
      expect(body, path).toContain('(invalid time)');
    }
    const page = await (await app.request('/task/far-1')).text();
    expect(page).toContain(`title="stored value: ${String(-1e20)}"`);
    // A negative runtime cannot happen, but a stored one is shown as it is.
    expect(page).toContain('-5.00 s');
  });
});
