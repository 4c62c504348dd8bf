// Times in one zone and offline workers, through app.request(): the tasks
// page reads its received range in UTC (what stalk.js sends, and what the page
// shows without it) while /api/tasks keeps Flower's server local time; an
// offline worker keeps its last seen time and its actions are disabled.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { EventBatch } from '../../worker-collector/fold/batch';
import { received, workerEvent } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

// 2030-03-15 12:00:00 UTC.
const NOON = Date.UTC(2030, 2, 15, 12, 0) / 1000;

describe.each(DIALECTS)('times and offline workers on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: ReturnType<typeof testApp>;
  const savedTz = process.env.TZ;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    // One task a minute from 11:58 to 12:02 UTC.
    for (let i = -2; i <= 2; i++) batch.add(received({ uuid: `t${i + 2}`, name: 'zone.job' }, NOON + i * 60 + 1), workers);
    batch.add(workerEvent('worker-online', 'up@host', NOON), workers);
    batch.add(workerEvent('worker-heartbeat', 'up@host', NOON + 299), workers);
    batch.add(workerEvent('worker-online', 'gone@host', NOON), workers);
    batch.add(workerEvent('worker-heartbeat', 'gone@host', NOON + 60), workers);
    // worker-offline clears the heartbeats (as Celery does): the time it came is when it was last seen.
    batch.add(workerEvent('worker-offline', 'gone@host', NOON + 120), workers);
    await store(database, batch, workers);
    app = testApp(database, { now: NOON + 300 });
  });
  afterEach(() => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  });
  afterAll(async () => {
    await database?.drop();
  });

  const html = async (path: string) => {
    const response = await app.request(path);
    return { status: response.status, text: await response.text() };
  };
  const listed = (text: string) => [...text.matchAll(/data-task="([^"]+)"/g)].map((m) => m[1]).sort();

  it('reads the tasks page range in UTC, with or without Z, whatever the server zone', async () => {
    process.env.TZ = 'Asia/Kolkata';
    const withZ = await html('/tasks?received_start=2030-03-15T11:59Z&received_end=2030-03-15T12:01Z');
    expect(withZ.status).toBe(200);
    expect(listed(withZ.text)).toEqual(['t1', 't2']);
    const plain = await html('/tasks?received_start=2030-03-15%2011:59&received_end=2030-03-15%2012:01');
    expect(listed(plain.text)).toEqual(['t1', 't2']);
    // Shown back in UTC for the datetime-local input, with the instant for stalk.js.
    expect(withZ.text).toContain('name="received_start" value="2030-03-15T11:59" data-utc="2030-03-15T11:59:00.000Z" data-zone-input');
  });

  it('keeps /api/tasks in the server local time, as Flower does', async () => {
    process.env.TZ = 'Asia/Kolkata';
    // 17:29-17:31 in Kolkata (UTC+5:30) is 11:59-12:01 UTC.
    const response = await app.request('/api/tasks?received_start=2030-03-15%2017:29&received_end=2030-03-15%2017:31');
    expect(Object.keys((await response.json()) as Record<string, unknown>).sort()).toEqual(['t1', 't2']);
  });

  it('refuses a bad received time on the page, showing it back as sent', async () => {
    const bad = await html('/tasks?received_start=2030-02-30T10:00Z');
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/Invalid (&#39;|')received_start\1 (&#39;|')2030-02-30T10:00Z\2: no such date or time/);
    expect(bad.text).toContain('value="2030-02-30T10:00Z"');
    expect(bad.text).not.toContain('data-utc=');
  });

  it('names the zone of time columns, and labels lone times', async () => {
    const tasks = await html('/tasks?columns=name&columns=received');
    expect(tasks.text).toMatch(/Received <span class="zone">\(<span data-zone="true">UTC<\/span>\)<\/span>/);
    // Cells under a labelled header are bare; the server writes them in UTC.
    expect(tasks.text).toContain('data-bare="1" title="2030-03-15 12:02:01.000 UTC">2030-03-15 12:02:01.000</time>');
    expect(tasks.text).toContain('id="zone-toggle"');
    const worker = await html('/worker/up@host');
    expect(worker.text).toContain('>2030-03-15 12:04:59.000 UTC</time>');
  });

  it('shows when an offline worker was last seen, on the dashboard and its page', async () => {
    const dashboard = await html('/');
    const row = /<tr[^>]*data-worker="gone@host"[^>]*>([\s\S]*?)<\/tr>/.exec(dashboard.text)?.[1] ?? '';
    expect(row).toContain('datetime="2030-03-15T12:02:00.000Z"');
    expect(dashboard.text).toContain('Last seen');
    const page = await html('/worker/gone@host');
    expect(page.text).toMatch(/<th scope="row">Last seen<\/th><td><time id="worker-last-seen" datetime="2030-03-15T12:02:00.000Z"/);
    const online = await html('/worker/up@host');
    expect(online.text).toMatch(/<th scope="row">Last heartbeat<\/th><td><time id="worker-last-seen" datetime="2030-03-15T12:04:59.000Z"/);
  });

  it("disables an offline worker's actions, saying why, and leaves an online worker's on", async () => {
    const page = await html('/worker/gone@host');
    const actions = /<div class="actions" id="worker-actions">([\s\S]*?)<\/div>/.exec(page.text)?.[1] ?? '';
    const buttons = [...actions.matchAll(/<button[^>]*>/g)].map((m) => m[0]);
    expect(buttons).toHaveLength(5);
    for (const button of buttons) {
      expect(button).toContain('disabled');
      expect(button).toContain('title="gone@host is offline and cannot answer control commands"');
    }
    expect(actions).toContain('<fieldset class="off" disabled=""');
    const online = await html('/worker/up@host');
    const onlineActions = /<div class="actions" id="worker-actions">([\s\S]*?)<\/div>/.exec(online.text)?.[1] ?? '';
    expect(onlineActions.match(/<button[^>]*>/g)).toHaveLength(5);
    expect(onlineActions).not.toContain('disabled');
  });
});
