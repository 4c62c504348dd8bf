// The worker page's tabs stay live, in Debian's headless Chromium
// (playwright-core): the real local entry (src/node.ts) on a fresh SQLite
// database and a real Celery worker on the shared Redis, consuming a queue of
// this file's own. With the Tasks tab open a task that starts shows as
// Active, and leaves when it ends, without a reload or a click; adding and
// cancelling a consumer, and setting rate and time limits, show in their tab
// at once; and two readers polling one tab make the worker answer about once
// per poll interval, not once per reader.
//
// Every wait is on what the page shows (a row with the task's id, a queue's
// row), never on a sleep: the poll interval is 5 s and the machine is shared.

import { randomBytes } from 'node:crypto';
import Sqlite from 'better-sqlite3';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CeleryWorker, DEFAULT_RESULT_BACKEND, REDIS_BROKER, startWorker, uniqueWorkerName } from '../support/celery';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { printLogsOnFailure, stopAllProcesses } from '../support/processes';
import { type Stalk, startStalk } from '../support/stalk';
import { deleteQueues, deleteResults, post, waitForTaskState, waitUntilAnswering } from '../integration/control-support';
import { closeWatchedPages, launchChromium, markDocument, openWatchedPage, sameDocument, screenshot, type WatchedPage } from './browser';

const INSPECT_TIMEOUT_MS = 2_000;
/** Long enough for two poll intervals and an inspect round on a loaded machine. */
const LIVE = { timeout: 20_000 };

/** What an action answered (the <output> in its form), once it has answered. */
async function outcomeOf(page: Page, where: string): Promise<{ ok: boolean; text: string }> {
  const output = page.locator(`${where} output.outcome`);
  await output.waitFor({ timeout: 15_000 });
  return { ok: (await output.getAttribute('class'))?.includes('ok') ?? false, text: (await output.innerText()).trim() };
}

/** The inspect broadcasts Stalk sends, as seen on the pidbox channel of Redis database 0. */
function watchBroadcasts(redis: Redis): { method: string; destination: string[] | null; at: number }[] {
  const seen: { method: string; destination: string[] | null; at: number }[] = [];
  redis.on('message', (_channel: string, message: string) => {
    try {
      const body = JSON.parse(Buffer.from((JSON.parse(message) as { body: string }).body, 'base64').toString('utf8')) as {
        method: string;
        destination: string[] | null;
      };
      seen.push({ method: body.method, destination: body.destination, at: Date.now() });
    } catch {
      // Not a kombu message: not ours.
    }
  });
  return seen;
}

describe('live worker tabs in headless Chromium (Redis broker)', () => {
  const run = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const queue = `stalk-e2e-live-${run}`;
  const extraQueue = `stalk-e2e-live-extra-${run}`;
  const hostname = uniqueWorkerName('e2e-live');
  const listener = new Redis(REDIS_BROKER, { lazyConnect: true });
  let broadcasts: ReturnType<typeof watchBroadcasts> = [];
  let database: TestDatabase | undefined;
  let stalk: Stalk | undefined;
  let browser: Browser | undefined;
  let worker: CeleryWorker | undefined;
  const taskIds: string[] = [];
  const opened: WatchedPage[] = [];

  printLogsOnFailure();

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    await listener.connect();
    await listener.subscribe('/0.celery.pidbox');
    broadcasts = watchBroadcasts(listener);
    [stalk, browser, worker] = await Promise.all([
      startStalk({
        broker: REDIS_BROKER,
        db: database.url,
        extraArgs: ['--result-backend', DEFAULT_RESULT_BACKEND, '--inspect-timeout', String(INSPECT_TIMEOUT_MS)],
      }),
      launchChromium(),
      startWorker({ broker: REDIS_BROKER, queue, hostname }),
    ]);
    await waitUntilAnswering(stalk, hostname);
  }, 90_000);

  afterEach(async () => {
    expect(await closeWatchedPages(opened)).toEqual([]);
  });

  afterAll(async () => {
    listener.disconnect();
    await browser?.close().catch(() => undefined);
    await stopAllProcesses();
    await deleteQueues(REDIS_BROKER, [queue, extraQueue]).catch((error: unknown) => console.warn(`queue cleanup: ${String(error)}`));
    await deleteResults(DEFAULT_RESULT_BACKEND, taskIds).catch((error: unknown) => console.warn(`result cleanup: ${String(error)}`));
    await database?.drop();
  });

  function setup(): { stalk: Stalk; browser: Browser } {
    if (!stalk || !browser || !worker) throw new Error('Stalk, Chromium or the worker did not start (see beforeAll)');
    return { stalk, browser };
  }
  /** The worker page with one tab open, marked so that a reload would show. */
  async function openTab(tab: string, viewport?: { width: number; height: number }): Promise<WatchedPage> {
    const { stalk, browser } = setup();
    const watched = await openWatchedPage(browser, stalk.baseUrl, viewport, 'accept');
    opened.push(watched);
    await watched.page.goto(`/worker/${encodeURIComponent(hostname)}#tab-${tab}`);
    await watched.page.locator(`#tab-${tab}.current #live-${tab}`).waitFor();
    await markDocument(watched.page);
    return watched;
  }
  const activeRow = (page: Page, id: string) => page.locator(`#live-tasks [data-list="active"] tr[data-task="${id}"]`);

  it('tasks tab: a task that starts shows as Active without a reload, and leaves when it is terminated', async () => {
    const { stalk } = setup();
    const { page } = await openTab('tasks');
    expect(await page.locator('#live-tasks [data-list="active"] tr[data-task]').count()).toBe(0);
    expect((await stalk.fetchText(`/worker/${encodeURIComponent(hostname)}/tab/nope`)).status).toBe(404);

    const sent = await post(stalk, '/api/task/async-apply/stalk.sleep', { args: [60], queue });
    expect(sent.status, sent.text).toBe(200);
    const id = sent.json<{ 'task-id': string }>()['task-id'];
    taskIds.push(id);
    await activeRow(page, id).waitFor(LIVE);
    expect((await activeRow(page, id).locator('td').first().innerText()).trim()).toBe('stalk.sleep');
    expect(await sameDocument(page)).toBe(true);
    await screenshot(page, 'worker-live-tasks');

    const killed = await post(stalk, `/api/task/revoke/${id}?terminate=true&signal=SIGKILL`);
    expect(killed.status, killed.text).toBe(200);
    await waitForTaskState(stalk, id, ['REVOKED'], 15_000);
    await activeRow(page, id).waitFor({ state: 'detached', ...LIVE });
    expect(await sameDocument(page)).toBe(true);
    // Only the open tab polls: the others kept what the page came with.
    expect(await page.locator('#tab-queues.current').count()).toBe(0);
  }, 60_000);

  it('queues tab: an added consumer appears in the table at once, and a cancelled one goes, without Refresh', async () => {
    const { page, dialogs } = await openTab('queues');
    const add = `#tab-queues form[action$="/add-consumer/${encodeURIComponent(hostname)}"]`;
    await page.locator(`${add} input[name="queue"]`).fill(extraQueue);
    await page.locator(`${add} button`).click();
    expect(await outcomeOf(page, add)).toEqual({ ok: true, text: `add consumer ${extraQueue}` });
    await page.locator(`#live-queues tr[data-queue="${extraQueue}"]`).waitFor(LIVE);
    expect(
      await page.locator('#live-queues tr[data-queue]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-queue')).sort()),
    ).toEqual([queue, extraQueue].sort());
    // The morph kept the answer and what was typed.
    expect(await outcomeOf(page, add)).toEqual({ ok: true, text: `add consumer ${extraQueue}` });
    expect(await page.locator(`${add} input[name="queue"]`).inputValue()).toBe(extraQueue);
    expect(await sameDocument(page)).toBe(true);
    await screenshot(page, 'worker-live-queues');

    await page.locator(`#live-queues tr[data-queue="${extraQueue}"] form button`).click();
    expect(dialogs).toEqual([`confirm: Stop consuming from ${extraQueue}?`]);
    expect(await outcomeOf(page, '#queue-results')).toEqual({ ok: true, text: `no longer consuming from ${extraQueue}` });
    await page.locator(`#live-queues tr[data-queue="${extraQueue}"]`).waitFor({ state: 'detached', ...LIVE });
    expect(await page.locator(`#live-queues tr[data-queue="${queue}"]`).count()).toBe(1);
    expect(await sameDocument(page)).toBe(true);
  }, 60_000);

  it('limits tab: the limits in force are shown per task, and follow a rate or time limit set through the page', async () => {
    const { page } = await openTab('limits');
    const current = (task: string) => page.locator(`#limits tr[data-task-name="${task}"] td.col-limits`);
    expect((await current('stalk.add').innerText()).trim()).toBe('none');

    const rate = '#limits tr[data-task-name="stalk.add"] form[action="/api/task/rate-limit/stalk.add"]';
    await page.locator(`${rate} input[name="ratelimit"]`).fill('7/s');
    await page.locator(`${rate} button`).click();
    expect(await outcomeOf(page, rate)).toEqual({ ok: true, text: 'new rate limit set successfully' });
    await expect.poll(async () => (await current('stalk.add').innerText()).trim(), { timeout: 20_000, interval: 200 }).toBe('rate 7/s');

    const limits = '#limits tr[data-task-name="stalk.echo"] form[action="/api/task/timeout/stalk.echo"]';
    await page.locator(`${limits} input[name="soft"]`).fill('30');
    await page.locator(`${limits} input[name="hard"]`).fill('60');
    await page.locator(`${limits} button`).click();
    expect(await outcomeOf(page, limits)).toEqual({ ok: true, text: 'time limits set successfully' });
    await expect
      .poll(async () => (await current('stalk.echo').innerText()).trim(), { timeout: 20_000, interval: 200 })
      .toBe('soft 30 s · hard 60 s');
    expect(await sameDocument(page)).toBe(true);
    await screenshot(page, 'worker-live-limits');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'worker-live-limits-390');
  }, 60_000);

  it('two readers of the Tasks tab: the worker is asked about once per interval, not once per reader', async () => {
    const first = await openTab('tasks');
    const second = await openTab('tasks', { width: 390, height: 844 });
    const asked = () => broadcasts.filter((b) => b.method === 'active' && b.destination?.length === 1 && b.destination[0] === hostname);
    // Both pages poll (each answered 200 or 304) for 4 intervals, counted from the pages' own requests.
    const polls = { count: 0 };
    for (const { page } of [first, second])
      page.on('response', (r) => {
        if (decodeURIComponent(new URL(r.url()).pathname) === `/worker/${hostname}/tab/tasks`) polls.count += 1;
      });
    const before = asked().length;
    const since = Date.now();
    await expect.poll(() => polls.count, { timeout: 40_000, interval: 250 }).toBeGreaterThanOrEqual(8);
    const seconds = (Date.now() - since) / 1000;
    const rounds = asked().length - before;
    expect(rounds).toBeGreaterThan(0);
    // One round per interval at most (and one more for the edges of the window), whoever polls.
    expect(rounds).toBeLessThanOrEqual(Math.ceil(seconds / 4) + 1);
    expect(rounds).toBeLessThan(polls.count);
    await screenshot(second.page, 'worker-live-tasks-390');
    // The tab's rounds asked for its five methods only; the other replies were kept beside them, older.
    if (!database) throw new Error('no database');
    const sqlite = new Sqlite(database.url, { readonly: true });
    const row = sqlite.prepare('SELECT replies FROM worker_inspect WHERE hostname = ?').get(hostname) as { replies: string };
    sqlite.close();
    const stored = JSON.parse(row.replies) as Record<string, unknown> & { at: Record<string, number> };
    for (const method of ['stats', 'active_queues', 'registered', 'scheduled', 'active', 'reserved', 'revoked', 'conf'])
      expect(stored[method], method).toBeDefined();
    expect(stored.at.active).toBeGreaterThan(stored.at.conf ?? 0);
    expect(stored.at.active).toBe(stored.at.stats);
  }, 60_000);
});
