// The control actions through the pages, in Debian's headless Chromium
// (playwright-core): the real local entry (src/node.ts) on a fresh SQLite
// database and a real Celery worker on the shared Redis, consuming a queue of
// this file's own (other files run at the same time on the same broker).
// The worker page's tabs fill from inspect replies, its forms grow the pool,
// add and cancel a consumer and set a rate limit; the task page terminates a
// running task and aborts an abortable one, and follows both live; a Stalk
// without a result backend nor API access offers no Abort and shows the
// refusal; the tasks page sends one; the audit page lists all of it.

import { randomBytes } from 'node:crypto';
import Sqlite from 'better-sqlite3';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CeleryWorker, DEFAULT_RESULT_BACKEND, REDIS_BROKER, startWorker, uniqueWorkerName } from '../support/celery';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { printLogsOnFailure, stopAllProcesses, waitFor } from '../support/processes';
import { type Stalk, startStalk } from '../support/stalk';
import {
  deleteQueues,
  deleteResults,
  inspectWorker,
  poolProcesses,
  post,
  waitForTaskState,
  waitUntilAnswering,
} from '../integration/control-support';
import { closeWatchedPages, launchChromium, markDocument, openWatchedPage, sameDocument, screenshot, type WatchedPage } from './browser';

const UI_WAIT = { timeout: 10_000, interval: 200 };
const INSPECT_TIMEOUT_MS = 2_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The value of one row of a key/value table in a tab panel (its text), or null. */
async function tabValue(page: Page, tab: string, key: string): Promise<string | null> {
  return page.evaluate(
    ([tabId, name]) => {
      const rows = [...document.querySelectorAll(`#${tabId} table.kv tr`)];
      const row = rows.find((tr) => (tr.querySelector('th')?.textContent ?? '').trim() === name);
      return row ? (row.querySelector('td')?.textContent ?? '').trim() : null;
    },
    [`tab-${tab}`, key] as const,
  );
}

async function processesShown(page: Page): Promise<number | null> {
  const text = await tabValue(page, 'pool', 'processes');
  if (text === null) return null;
  const list = JSON.parse(text) as unknown;
  return Array.isArray(list) ? list.length : null;
}

/** What an action answered (the <output> in its form, or in its row's results area), once it has answered. */
async function outcomeOf(page: Page, where: string): Promise<{ ok: boolean; text: string }> {
  const output = page.locator(`${where} output.outcome`);
  await output.waitFor({ timeout: 15_000 });
  return { ok: (await output.getAttribute('class'))?.includes('ok') ?? false, text: (await output.innerText()).trim() };
}

describe('control actions in headless Chromium (Redis broker)', () => {
  const run = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const queue = `stalk-e2e-control-${run}`;
  const extraQueue = `stalk-e2e-control-extra-${run}`;
  const hostname = uniqueWorkerName('e2e-control');
  let database: TestDatabase | undefined;
  let stalk: Stalk | undefined;
  let browser: Browser | undefined;
  let worker: CeleryWorker | undefined;
  const taskIds: string[] = [];
  const opened: WatchedPage[] = [];

  printLogsOnFailure();

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    [stalk, browser, worker] = await Promise.all([
      startStalk({
        broker: REDIS_BROKER,
        db: database.url,
        extraArgs: ['--result-backend', DEFAULT_RESULT_BACKEND, '--inspect-timeout', String(INSPECT_TIMEOUT_MS)],
      }),
      launchChromium(),
      startWorker({ broker: REDIS_BROKER, queue, hostname }),
    ]);
  }, 60_000);

  afterEach(async () => {
    expect(await closeWatchedPages(opened)).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await stopAllProcesses();
    await deleteQueues(REDIS_BROKER, [queue, extraQueue]).catch((error: unknown) => console.warn(`queue cleanup: ${String(error)}`));
    await deleteResults(DEFAULT_RESULT_BACKEND, taskIds).catch((error: unknown) => console.warn(`result cleanup: ${String(error)}`));
    await database?.drop();
  });

  function setup(): { stalk: Stalk; browser: Browser; worker: CeleryWorker; database: TestDatabase } {
    if (!stalk || !browser || !worker || !database) throw new Error('Stalk, Chromium or the worker did not start (see beforeAll)');
    return { stalk, browser, worker, database };
  }
  async function open(): Promise<WatchedPage> {
    const { stalk, browser } = setup();
    const page = await openWatchedPage(browser, stalk.baseUrl, undefined, 'accept');
    opened.push(page);
    return page;
  }
  const workerPath = () => `/worker/${encodeURIComponent(hostname)}`;
  const workerPage = async (): Promise<WatchedPage> => {
    const control = await open();
    await control.page.goto(workerPath());
    await control.page.locator('#worker-tabs').waitFor();
    return control;
  };
  /** Click the tabs' Refresh and wait for the swap (the button is replaced with the tabs). */
  async function refresh(page: Page): Promise<void> {
    const [response] = await Promise.all([
      page.waitForResponse(
        (r) => r.request().method() === 'POST' && decodeURIComponent(new URL(r.url()).pathname) === `/worker/${hostname}/inspect`,
      ),
      page.locator('#inspect-refresh').click(),
    ]);
    expect(response.status()).toBe(200);
    await page.waitForFunction(() => !document.querySelector('#worker-tabs.htmx-swapping, #worker-tabs.htmx-settling'));
  }

  it('worker page: on a first visit the tabs fill from inspect replies without a click; Grow pool answers inline and the pool grows', async () => {
    const { stalk, database } = setup();
    await waitUntilAnswering(stalk, hostname);
    // A worker never inspected before: forget the replies Stalk has (the collector inspects
    // workers as they come online, and the line above did too). A round already under way
    // writes its replies when they are in (within the inspect timeout): forget those too,
    // until the row has stayed away for longer than a round takes.
    const sqlite = new Sqlite(database.url);
    sqlite.pragma('busy_timeout = 5000');
    const forget = sqlite.prepare('DELETE FROM worker_inspect WHERE hostname = ?');
    expect(forget.run(hostname).changes).toBe(1);
    let quietSince = Date.now();
    await waitFor(
      () => {
        if (forget.run(hostname).changes > 0) quietSince = Date.now();
        return Date.now() - quietSince > 2 * INSPECT_TIMEOUT_MS + 500;
      },
      30_000,
      'no inspect reply written for the worker',
      100,
    );
    sqlite.close();

    const { page } = await open();
    const inspectPosts: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && decodeURIComponent(new URL(r.url()).pathname) === `/worker/${hostname}/inspect`)
        inspectPosts.push(r.url());
    });
    const response = await page.goto(workerPath());
    const html = (await response?.text()) ?? '';
    expect(html).toContain('Not inspected yet');
    expect(html).toContain('No inspect data for this worker yet.');
    // The page asks by itself (hx-trigger "load") and swaps the tabs in.
    await expect.poll(() => processesShown(page), { timeout: 15_000, interval: 200 }).not.toBeNull();
    expect(inspectPosts).toHaveLength(1);
    expect(await processesShown(page)).toBe(1);
    expect(await tabValue(page, 'pool', 'max-concurrency')).toBe('1');
    expect(await page.locator(`#tab-queues tr[data-queue="${queue}"]`).count()).toBe(1);
    expect(await page.locator('#limits tr[data-task-name="stalk.add"]').count()).toBe(1);
    expect((await page.locator('#worker-tabs > .freshness').innerText()).trim()).toMatch(/^Inspected \d{4}-\d\d-\d\d/);

    await page.locator('#tab-link-pool').click();
    const grow = `#worker-actions form[action="/api/worker/pool/grow/${encodeURIComponent(hostname)}"]`;
    expect(await page.locator(`${grow} input[name="n"]`).inputValue()).toBe('1');
    await page.locator(`${grow} button`).click();
    expect(await outcomeOf(page, '#worker-results')).toEqual({ ok: true, text: `Growing '${hostname}' worker's pool by 1` });
    // The pool starts the process at its next maintenance; Refresh shows it.
    await waitFor(async () => poolProcesses(await inspectWorker(stalk, hostname)) === 2, 30_000, '2 pool processes', 500);
    await refresh(page);
    await expect.poll(() => processesShown(page), UI_WAIT).toBe(2);
    await screenshot(page, 'control-worker');
  }, 90_000);

  it('queues tab: add a consumer, see it after Refresh, cancel it after confirming', async () => {
    const { page, dialogs } = await workerPage();
    await page.locator('#tab-link-queues').click();
    const add = `#tab-queues form[action$="/add-consumer/${encodeURIComponent(hostname)}"]`;
    await page.locator(`${add} input[name="queue"]`).fill(extraQueue);
    await page.locator(`${add} button`).click();
    expect(await outcomeOf(page, add)).toEqual({ ok: true, text: `add consumer ${extraQueue}` });
    expect(dialogs).toEqual([]);

    await refresh(page);
    await page.locator(`#tab-queues tr[data-queue="${extraQueue}"]`).waitFor();
    expect(
      await page.locator('#tab-queues tr[data-queue]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-queue')).sort()),
    ).toEqual([queue, extraQueue].sort());
    await screenshot(page, 'control-queues');

    const cancel = `#tab-queues tr[data-queue="${extraQueue}"] form`;
    await page.locator(`${cancel} button`).click();
    // The answer is below the table: the cancelled queue's row leaves it (live, see worker-live.test.ts).
    expect(await outcomeOf(page, '#queue-results')).toEqual({ ok: true, text: `no longer consuming from ${extraQueue}` });
    expect(dialogs).toEqual([`confirm: Stop consuming from ${extraQueue}?`]);

    await refresh(page);
    await expect.poll(() => page.locator(`#tab-queues tr[data-queue="${extraQueue}"]`).count(), UI_WAIT).toBe(0);
    expect(await page.locator(`#tab-queues tr[data-queue="${queue}"]`).count()).toBe(1);
  }, 40_000);

  it('limits tab: a rate limit set through the form reaches the worker', async () => {
    const { stalk } = setup();
    const { page } = await workerPage();
    await page.locator('#tab-link-limits').click();
    const rate = '#limits tr[data-task-name="stalk.add"] form[action="/api/task/rate-limit/stalk.add"]';
    await page.locator(`${rate} input[name="ratelimit"]`).fill('10/s');
    await page.locator(`${rate} button`).click();
    expect(await outcomeOf(page, rate)).toEqual({ ok: true, text: 'new rate limit set successfully' });
    // Celery lists a task's rate limit with its name.
    expect((await inspectWorker(stalk, hostname)).registered).toContain('stalk.add [rate_limit=10/s]');

    const limits = '#limits tr[data-task-name="stalk.echo"] form[action="/api/task/timeout/stalk.echo"]';
    await page.locator(`${limits} input[name="soft"]`).fill('30');
    await page.locator(`${limits} input[name="hard"]`).fill('60');
    await page.locator(`${limits} button`).click();
    expect(await outcomeOf(page, limits)).toEqual({ ok: true, text: 'time limits set successfully' });

    await screenshot(page, 'control-limits');
  }, 30_000);

  /** GET requests for the task page's live part (its poll). */
  function countPolls(page: Page, id: string): { count: number } {
    const polls = { count: 0 };
    page.on('request', (r) => {
      if (r.method() === 'GET' && r.headers()['hx-request'] && decodeURIComponent(new URL(r.url()).pathname) === `/task/${id}`)
        polls.count += 1;
    });
    return polls;
  }
  const badge = async (page: Page) => (await page.locator('#task-live h1 .badge').innerText()).trim();

  /** Once final: the live part no longer polls (it came back without hx-trigger, and no poll follows for 3 intervals). */
  async function pollingStopped(page: Page, polls: { count: number }): Promise<void> {
    expect(await page.locator('#task-live').getAttribute('hx-trigger')).toBeNull();
    const seen = polls.count;
    const until = Date.now() + 3 * 3_000 + 500;
    await page.waitForFunction((t) => Date.now() > t, until, { polling: 250, timeout: 15_000 });
    expect(polls.count).toBe(seen);
  }

  it('task page: Terminate with SIGKILL, after confirming, says so; the badge and timeline turn REVOKED live, then polling stops', async () => {
    const { stalk } = setup();
    // With a countdown the worker holds it RECEIVED first: the page sees it start, and the
    // Terminate form the morph brings in works.
    const sent = await post(stalk, '/api/task/async-apply/stalk.sleep', { args: [60], queue, countdown: 4 });
    expect(sent.status, sent.text).toBe(200);
    const id = sent.json<{ 'task-id': string }>()['task-id'];
    taskIds.push(id);
    await waitForTaskState(stalk, id, ['RECEIVED'], 15_000);

    const { page, dialogs } = await open();
    const polls = countPolls(page, id);
    await page.goto(`/task/${id}`);
    await markDocument(page);
    expect(await page.locator('#task-live').getAttribute('hx-trigger')).toBe('every 3s');
    expect(await badge(page)).toBe('RECEIVED');
    expect(await page.locator('#task-actions select[name="signal"]').count()).toBe(0);
    await expect.poll(() => badge(page), { timeout: 15_000, interval: 200 }).toBe('STARTED');
    expect(await sameDocument(page)).toBe(true);
    const terminate = '#task-actions form:has(select[name="signal"])';
    await page.selectOption(`${terminate} select[name="signal"]`, 'SIGKILL');
    await page.locator(`${terminate} button`).click();
    expect(await outcomeOf(page, '#task-results')).toEqual({ ok: true, text: 'Terminated (SIGKILL)' });
    expect(dialogs).toEqual(['confirm: Terminate this running task?']);
    await screenshot(page, 'control-task-terminating');

    // No reload: the page's poll morphs the new state in, keeping the answer.
    await expect.poll(() => badge(page), { timeout: 15_000, interval: 200 }).toBe('REVOKED');
    expect(await sameDocument(page)).toBe(true);
    expect(polls.count).toBeGreaterThan(0);
    expect(await page.locator('#task-results').innerText()).toBe('Terminated (SIGKILL)');
    // A final state offers no actions; the timeline and times show the revocation.
    expect(await page.locator('#task-actions').count()).toBe(0);
    expect(await page.locator('#timeline').innerText()).toContain('task-revoked');
    expect(await page.locator('table.kv th', { hasText: /^Revoked$/ }).count()).toBe(1);
    await screenshot(page, 'control-task-terminated');
    await pollingStopped(page, polls);
  }, 60_000);

  it('task page: Abort is offered with a result backend, says what it asks, and an AbortableTask stops (shown live)', async () => {
    const { stalk } = setup();
    const sent = await post(stalk, '/api/task/async-apply/stalk.abortable', { args: [60], queue });
    expect(sent.status, sent.text).toBe(200);
    const id = sent.json<{ 'task-id': string }>()['task-id'];
    taskIds.push(id);
    await waitForTaskState(stalk, id, ['STARTED'], 15_000);

    const { page, dialogs } = await open();
    const polls = countPolls(page, id);
    await page.goto(`/task/${id}`);
    await markDocument(page);
    const abort = `#task-actions form[action="/api/task/abort/${id}"]`;
    const before = await page.locator('#task-actions button').evaluateAll((bs) => bs.map((b) => b.getBoundingClientRect().toJSON()));
    await page.locator(`${abort} button`).click();
    expect(await outcomeOf(page, '#task-results')).toEqual({
      ok: true,
      text: 'Abort requested: the task stops if it checks is_aborted() (AbortableTask)',
    });
    expect(dialogs).toEqual(['confirm: Ask this task to stop? Only a Celery AbortableTask that checks is_aborted() stops.']);
    // The answer did not push the buttons aside.
    const after = await page.locator('#task-actions button').evaluateAll((bs) => bs.map((b) => b.getBoundingClientRect().toJSON()));
    expect(after).toEqual(before);
    // The task checked is_aborted() and returned: the page follows without a reload.
    await expect.poll(() => badge(page), { timeout: 15_000, interval: 200 }).toBe('SUCCESS');
    expect(await sameDocument(page)).toBe(true);
    const result = page.locator('table.kv tr', { has: page.locator('th', { hasText: /^Result$/ }) });
    expect((await result.locator('td').innerText()).trim()).toBe("'aborted'");
    await screenshot(page, 'control-task-aborted');
    await pollingStopped(page, polls);
  }, 60_000);

  it('without a result backend nor API access: no Abort; a refused action shows why, without moving the buttons', async () => {
    const { browser, database } = setup();
    // Its own Stalk on the same database: no collector (so no result backend), and /api closed as without auth.
    const closed = await startStalk({ broker: REDIS_BROKER, db: database.url, openApi: false, extraArgs: ['--no-collector'] });
    const sent = await post(setup().stalk, '/api/task/async-apply/stalk.sleep', { args: [60], queue });
    const id = sent.json<{ 'task-id': string }>()['task-id'];
    taskIds.push(id);
    await waitForTaskState(setup().stalk, id, ['STARTED'], 15_000);

    const watched = await openWatchedPage(browser, closed.baseUrl, undefined, 'accept');
    opened.push(watched);
    const { page } = watched;
    await page.goto(`/task/${id}`);
    expect(await badge(page)).toBe('STARTED');
    expect(await page.locator('#task-actions form[action^="/api/task/revoke/"]').count()).toBe(2);
    expect(await page.locator('#task-actions form[action^="/api/task/abort/"]').count()).toBe(0);
    const before = await page.locator('#task-actions button').evaluateAll((bs) => bs.map((b) => b.getBoundingClientRect().toJSON()));
    await page.locator('#task-actions form:not(:has(select)) button').click();
    const refused = await outcomeOf(page, '#task-results');
    expect(refused).toEqual({
      ok: false,
      text: 'Refused (HTTP 401 Unauthorized): FLOWER_UNAUTHENTICATED_API environment variable is required to enable API without authentication (or --unauthenticated-api)',
    });
    const after = await page.locator('#task-actions button').evaluateAll((bs) => bs.map((b) => b.getBoundingClientRect().toJSON()));
    expect(after).toEqual(before);
    await screenshot(page, 'control-task-refused');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'control-task-refused-390');
    // Not revoked: the task still runs; terminate it through the open Stalk.
    expect(await badge(page)).toBe('STARTED');
    const killed = await post(setup().stalk, `/api/task/revoke/${id}?terminate=true&signal=SIGKILL`);
    expect(killed.status, killed.text).toBe(200);
    await waitForTaskState(setup().stalk, id, ['REVOKED'], 15_000);
  }, 60_000);

  it('tasks page: "Send a task" sends stalk.add [2, 3]; its link leads to the task, which succeeds with 5', async () => {
    const { page } = await open();
    await page.goto('/tasks');
    await page.locator('details.send summary').click();
    const form = 'details.send form';
    await page.locator(`${form} input[name="name"]`).fill('stalk.add');
    await page.locator(`${form} input[name="args"]`).fill('[2, 3]');
    await page.locator(`${form} input[name="queue"]`).fill(queue);
    await page.locator(`${form} button`).click();
    const sent = await outcomeOf(page, form);
    expect(sent.ok).toBe(true);
    const id = sent.text.replace(/^Sent\s+/, '');
    expect(id).toMatch(UUID);
    taskIds.push(id);
    await screenshot(page, 'control-send');

    await page.locator(`${form} output a`).click();
    await page.waitForURL((url) => url.pathname === `/task/${id}`);
    // The page exists once the worker's events arrived.
    await expect
      .poll(
        async () => {
          await page.reload();
          return (await page.locator('h1 .badge').count()) > 0 ? (await page.locator('h1 .badge').innerText()).trim() : '';
        },
        { timeout: 15_000, interval: 500 },
      )
      .toBe('SUCCESS');
    expect((await page.locator('#task-uuid').innerText()).trim()).toBe(id);
    const result = page.locator('table.kv tr', { has: page.locator('th', { hasText: /^Result$/ }) });
    expect((await result.locator('td').innerText()).trim()).toBe('5');
    await screenshot(page, 'control-task-sent');
  }, 40_000);

  it('audit page: every action above, with its outcome', async () => {
    const { page } = await open();
    await page.goto('/audit');
    const rows = await page.$$eval('#audit-table tbody tr[data-audit]', (trs) =>
      trs.map((tr) => {
        const cells = [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim());
        return { ok: tr.getAttribute('data-ok') === 'true', action: cells[2] ?? '', target: cells[3] ?? '', outcome: cells[5] ?? '' };
      }),
    );
    const entry = (action: string, target: unknown, ok: boolean) => expect.objectContaining({ action, target, ok });
    expect(rows).toEqual(
      expect.arrayContaining([
        entry('pool_grow', hostname, true),
        entry('add_consumer', hostname, true),
        entry('cancel_consumer', hostname, true),
        entry('rate_limit', hostname, true),
        entry('time_limit', hostname, true),
        entry('revoke', expect.stringMatching(UUID), true),
        entry('abort', expect.stringMatching(UUID), true),
        entry('send', 'stalk.add', true),
        entry('send', 'stalk.sleep', true),
      ]),
    );
    expect(rows.filter((r) => r.action === 'rate_limit')).toHaveLength(1);
    expect(rows.find((r) => r.action === 'pool_grow')?.outcome).toMatch(/^ok\s+"pool will grow"$/);
    await screenshot(page, 'control-audit');
  });
});
