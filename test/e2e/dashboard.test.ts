// The pages in a real browser: the real local entry (src/node.ts) on a fresh
// SQLite database, a real Celery worker running test/celery/scenario.py, and
// Debian's headless Chromium driven by playwright-core. Live panels must
// update without a reload, filters and search work by clicking and typing,
// links and tabs navigate, Celery's data stays text, phones get no sideways
// scrolling, and every page leaves a screenshot in test-artifacts/screenshots.
//
// The broker is a private redis-server (like broker-restart.test.ts), not the
// shared one on 6379: vitest runs two files at once, and pipeline.test.ts
// runs its own worker on redis://localhost:6379/0's `celery` queue, so
// sharing that queue would let each file's worker take the other's tasks.

import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type CeleryTarget,
  type CeleryWorker,
  runScenario,
  type ScenarioIds,
  sendAdd,
  startWorker,
  uniqueWorkerName,
} from '../support/celery';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { freePort, type ManagedProcess, printLogsOnFailure, spawnManaged, stopAllProcesses } from '../support/processes';
import { type Stalk, startStalk } from '../support/stalk';
import {
  closeWatchedPages,
  count,
  fitsViewportWidth,
  launchChromium,
  listedTasks,
  type ListedTask,
  markDocument,
  openWatchedPage,
  sameDocument,
  screenshot,
  swapCount,
  type WatchedPage,
  workerRow,
} from './browser';

/** Bounded waits for what the page shows: a poll every 3 s, a flush every 0.5 s, and slack. */
const UI_WAIT = { timeout: 10_000, interval: 200 };
const PHONE = { width: 390, height: 844 };
const HOSTILE_ARG = '<script>alert(1)</script>';

async function startRedis(port: number): Promise<ManagedProcess> {
  const redis = spawnManaged(`redis-server :${port}`, 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  await redis.waitForOutput(/Ready to accept connections/, 15_000);
  return redis;
}

describe('pages in headless Chromium', () => {
  const hostname = uniqueWorkerName('e2e');
  let target: CeleryTarget | undefined;
  let database: TestDatabase | undefined;
  let stalk: Stalk | undefined;
  let browser: Browser | undefined;
  let worker: CeleryWorker | undefined;
  let ids: ScenarioIds | undefined;
  const opened: WatchedPage[] = [];

  printLogsOnFailure();

  beforeAll(async () => {
    const port = await freePort();
    await startRedis(port);
    target = { broker: `redis://127.0.0.1:${port}/0`, backend: `redis://127.0.0.1:${port}/1` };
    database = await createTestDatabase('sqlite');
    [stalk, browser] = await Promise.all([startStalk({ broker: target.broker, db: database.url }), launchChromium()]);
  }, 60_000);

  afterEach(async () => {
    // No page may throw from its scripts (htmx, stalk.js) while the tests use it.
    expect(await closeWatchedPages(opened)).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await stopAllProcesses();
    await database?.drop();
  });

  function setup(): { stalk: Stalk; browser: Browser; target: CeleryTarget } {
    if (!stalk || !browser || !target) throw new Error('Stalk, Redis or Chromium did not start (see beforeAll)');
    return { stalk, browser, target };
  }
  /** What the scenario recorded; later tests fail at once when the first did not get that far. */
  function scenario(): ScenarioIds {
    if (!ids || !worker) throw new Error('the first test did not run the scenario (see its failure)');
    return ids;
  }
  async function open(viewport?: { width: number; height: number }): Promise<WatchedPage> {
    const { stalk, browser } = setup();
    const watched = await openWatchedPage(browser, stalk.baseUrl, viewport);
    opened.push(watched);
    return watched;
  }
  async function freshness(page: WatchedPage['page']): Promise<{ stamp: string | null; text: string }> {
    const updated = page.locator('#workers-panel .freshness [data-updated]');
    return { stamp: await updated.getAttribute('data-updated'), text: (await updated.innerText()).trim() };
  }

  it('dashboard: a worker that starts later appears, and its counts rise as it runs tasks, without a reload', async () => {
    const { target } = setup();
    const { page } = await open();
    await page.goto('/');
    // A fresh database and a private broker: nobody is there yet.
    await page.locator('#workers-table td.empty').waitFor();
    expect(await page.locator('tr[data-worker]').count()).toBe(0);
    const before = await freshness(page);
    expect(before.text).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
    await markDocument(page);

    worker = await startWorker({ ...target, hostname });
    await page.locator(`tr[data-worker="${hostname}"]`).waitFor({ timeout: 15_000 });
    await expect.poll(async () => (await workerRow(page, hostname))?.Status, UI_WAIT).toBe('Online');
    // The freshness line moved with the polls.
    const after = await freshness(page);
    expect(after.stamp).not.toBe(before.stamp);
    expect(after.text).not.toBe(before.text);

    const idle = await workerRow(page, hostname);
    const succeeded0 = count(idle, 'Succeeded');
    const failed0 = count(idle, 'Failed');
    expect([succeeded0, failed0]).toEqual([0, 0]);

    ids = await runScenario(target);
    // add, flaky (after its retry), echo and the blocker succeed; fail fails.
    await expect
      .poll(async () => {
        const row = await workerRow(page, hostname);
        return { succeeded: count(row, 'Succeeded'), failed: count(row, 'Failed') };
      }, UI_WAIT)
      .toSatisfy(({ succeeded, failed }: { succeeded: number; failed: number }) => succeeded >= succeeded0 + 4 && failed >= failed0 + 1);
    expect(await sameDocument(page)).toBe(true);
    expect(await swapCount(page)).toBeGreaterThan(0);
    expect((await freshness(page)).stamp).not.toBe(after.stamp);
  }, 90_000);

  it('tasks page: tasks sent while it is open appear and finish without a reload', async () => {
    const { target } = setup();
    const known = scenario();
    const { page } = await open();
    await page.goto('/tasks');
    await page.locator(`tr[data-task="${known.succeeded}"]`).waitFor();
    await markDocument(page);

    const sent = await Promise.all([sendAdd(target, 20, 22), sendAdd(target, 1, 1)]);
    for (const id of sent) await page.locator(`tr[data-task="${id}"]`).waitFor({ timeout: 10_000 });
    await expect
      .poll(async () => (await listedTasks(page)).filter((t) => sent.includes(t.id)).map((t) => t.state), UI_WAIT)
      .toEqual(['SUCCESS', 'SUCCESS']);
    expect(await sameDocument(page)).toBe(true);
  }, 40_000);

  it('tasks page: filter by state, search by typing, refuse a bad query, sort by a column', async () => {
    const known = scenario();
    const { page } = await open();
    await page.goto('/tasks');
    await page.locator(`tr[data-task="${known.failed}"]`).waitFor();
    const hasBoth = (rows: ListedTask[]) => rows.some((t) => t.id === known.failed) && rows.some((t) => t.id === known.succeeded);

    // State = FAILURE: only failed rows, and the URL says so (hx-push-url).
    await page.selectOption('select[name="state"]', 'FAILURE');
    await expect
      .poll(() => listedTasks(page), UI_WAIT)
      .toSatisfy(
        (rows: ListedTask[]) => rows.length > 0 && rows.every((t) => t.state === 'FAILURE') && rows.some((t) => t.id === known.failed),
      );
    await expect.poll(() => new URL(page.url()).searchParams.get('state'), UI_WAIT).toBe('FAILURE');
    // Back to All.
    await page.selectOption('select[name="state"]', '');
    await expect.poll(() => listedTasks(page), UI_WAIT).toSatisfy(hasBoth);
    await expect.poll(() => new URL(page.url()).searchParams.get('state') ?? '', UI_WAIT).toBe('');

    const search = page.locator('#search');
    // A qualifier, typed key by key (the form searches 400 ms after the last key).
    await search.pressSequentially('name:stalk.fail', { delay: 25 });
    await expect
      .poll(() => listedTasks(page), UI_WAIT)
      .toSatisfy((rows: ListedTask[]) => rows.some((t) => t.id === known.failed) && rows.every((t) => t.name === 'stalk.fail'));
    await expect.poll(() => new URL(page.url()).searchParams.get('q'), UI_WAIT).toBe('name:stalk.fail');

    // A quoted word from the failed task's exception: that task alone.
    await search.fill('');
    await expect.poll(() => listedTasks(page), UI_WAIT).toSatisfy(hasBoth);
    await search.pressSequentially('"boom"', { delay: 25 });
    await expect.poll(async () => (await listedTasks(page)).map((t) => t.id), UI_WAIT).toEqual([known.failed]);

    // A query the language refuses: a message, no rows, no error page.
    await search.fill('');
    await expect.poll(() => listedTasks(page), UI_WAIT).toSatisfy(hasBoth);
    await search.pressSequentially('NOT x', { delay: 25 });
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 10_000 });
    expect(await alert.innerText()).toMatch(/not supported|NOT/i);
    expect(await listedTasks(page)).toEqual([]);
    await expect.poll(() => page.title(), UI_WAIT).toMatch(/^Tasks/);

    await search.fill('');
    await expect.poll(() => listedTasks(page), UI_WAIT).toSatisfy(hasBoth);
    expect(await page.getByRole('alert').count()).toBe(0);

    // Sorting by Name: descending on the first click, ascending on the second.
    const names = async () => (await listedTasks(page)).map((t) => t.name);
    const descending = (list: string[]) => [...list].sort().reverse();
    const byTime = await names();
    expect(byTime.length).toBeGreaterThan(2);
    expect(byTime).not.toEqual(descending(byTime));
    await page.locator('#tasks-table th.col-name a').click();
    await expect.poll(() => page.locator('#tasks-table th.col-name').getAttribute('aria-sort'), UI_WAIT).toBe('descending');
    const down = await names();
    expect(down).toEqual(descending(down));
    expect(down).not.toEqual(byTime);
    expect(new URL(page.url()).searchParams.get('sort')).toBe('-name');
    await page.locator('#tasks-table th.col-name a').click();
    await expect.poll(() => page.locator('#tasks-table th.col-name').getAttribute('aria-sort'), UI_WAIT).toBe('ascending');
    const up = await names();
    expect(up).toEqual([...up].sort());
    expect(up).not.toEqual(down);
    expect(new URL(page.url()).searchParams.get('sort')).toBe('name');
  }, 60_000);

  it('navigation: task links lead to task pages, the worker link to the worker page, whose tabs switch', async () => {
    const known = scenario();
    const { page } = await open();
    await page.goto('/tasks');

    await page.locator(`tr[data-task="${known.failed}"] td.col-name a`).click();
    await page.waitForURL((url) => url.pathname === `/task/${known.failed}`);
    expect((await page.locator('h1 .badge').innerText()).trim()).toBe('FAILURE');
    expect((await page.locator('#task-uuid').innerText()).trim()).toBe(known.failed);
    const traceback = page.locator('section.failure pre.traceback');
    await traceback.waitFor({ state: 'visible' });
    const trace = await traceback.innerText();
    expect(trace).toContain('Traceback (most recent call last)');
    expect(trace).toContain('ValueError');

    await page.goBack();
    await page.locator(`tr[data-task="${known.succeeded}"] td.col-name a`).click();
    await page.waitForURL((url) => url.pathname === `/task/${known.succeeded}`);
    expect((await page.locator('h1 .badge').innerText()).trim()).toBe('SUCCESS');
    expect(await page.locator('section.failure').count()).toBe(0);

    await page.goto('/');
    await page.locator(`tr[data-worker="${hostname}"] a`).click();
    await page.waitForURL((url) => decodeURIComponent(url.pathname) === `/worker/${hostname}`);
    expect((await page.locator('h1').innerText()).trim()).toBe(hostname);
    expect(await page.locator('nav[aria-label="Main"] a[aria-current="page"]').innerText()).toBe('Workers');

    // stalk.js shows one panel at a time: Overview first, then whichever tab was clicked.
    const tabIds = await page
      .locator('.tab-bar a')
      .evaluateAll((links) => links.map((a) => (a.getAttribute('href') ?? '').replace('#', '')));
    expect(tabIds).toEqual(expect.arrayContaining(['tab-overview', 'tab-pool', 'tab-queues']));
    const visiblePanels = () =>
      page.locator('.tab-panel').evaluateAll((panels) => panels.filter((p) => (p as HTMLElement).offsetParent !== null).map((p) => p.id));
    expect(await visiblePanels()).toEqual(['tab-overview']);
    for (const id of [...tabIds.slice(1), tabIds[0]!]) {
      await page.locator(`.tab-bar a[href="#${id}"]`).click();
      await expect.poll(visiblePanels, UI_WAIT).toEqual([id]);
      expect(await page.locator(`#${id}`).isVisible()).toBe(true);
      expect(await page.locator(`.tab-bar a[href="#${id}"]`).getAttribute('class')).toContain('current');
      expect(new URL(page.url()).hash).toBe(`#${id}`);
    }

    // The main navigation.
    await page.locator('nav[aria-label="Main"] a', { hasText: 'Tasks' }).click();
    await page.waitForURL((url) => url.pathname === '/tasks');
    expect(await page.locator('nav[aria-label="Main"] a[aria-current="page"]').innerText()).toBe('Tasks');
  }, 40_000);

  it('escaping: markup in arguments, results and exceptions is shown as text and never runs', async () => {
    const known = scenario();
    const watched = await open();
    const { page, dialogs } = watched;

    await page.goto('/tasks');
    const row = page.locator(`tr[data-task="${known.hostile}"]`);
    await row.waitFor();
    const args = row.locator('td.col-args');
    expect(await args.isVisible()).toBe(true);
    expect(await args.innerText()).toContain(HOSTILE_ARG);
    // htmx runs <script> elements in swapped content: let a poll replace the panel first.
    const swaps = await swapCount(page);
    await expect.poll(() => swapCount(page), UI_WAIT).toBeGreaterThan(swaps);
    await row.waitFor();
    expect(await row.locator('td.col-args').innerText()).toContain(HOSTILE_ARG);

    await page.goto(`/task/${known.hostile}`);
    const shown = page.locator('table.kv pre', { hasText: HOSTILE_ARG });
    expect(await shown.count()).toBeGreaterThan(0);
    expect(await shown.first().isVisible()).toBe(true);
    expect(await page.locator('table.kv pre', { hasText: "{'note': 'x\\' OR 1=1 --'}" }).count()).toBeGreaterThan(0);
    expect(await page.getByText('\u00e9\u6f22\u{1F600}').count()).toBeGreaterThan(0);

    await page.goto(`/task/${known.failed}`);
    const error = page.locator('section.failure');
    expect(await error.innerText()).toContain('boom <b>refused</b>');
    expect(await error.locator('b').count()).toBe(0);

    // Only Stalk's own two external scripts exist on the pages.
    const inline = await page.locator('script').evaluateAll((scripts) => scripts.filter((s) => !s.getAttribute('src')).length);
    expect(inline).toBe(0);
    await page.waitForTimeout(300);
    expect(dialogs).toEqual([]);
  }, 40_000);

  it('phones: the workers and tasks pages fit a 390 px screen, the navigation stays visible', async () => {
    scenario();
    const { page } = await open(PHONE);
    for (const [path, ready, name] of [
      ['/', `tr[data-worker="${hostname}"]`, 'phone-workers'],
      ['/tasks', 'tr[data-task]', 'phone-tasks'],
    ] as const) {
      await page.goto(path);
      await page.locator(ready).first().waitFor();
      const nav = page.locator('header.top nav[aria-label="Main"]');
      expect(await nav.isVisible()).toBe(true);
      for (const link of await nav.locator('a').all()) {
        const box = await link.boundingBox();
        expect(box, `${path}: a nav link is not laid out`).not.toBeNull();
        expect(box!.x + box!.width, `${path}: a nav link is cut off`).toBeLessThanOrEqual(PHONE.width);
      }
      const width = await fitsViewportWidth(page);
      expect(width, `${path} scrolls sideways`).toMatchObject({ fits: true });
      await screenshot(page, name);
    }
  }, 30_000);

  it('screenshots of every page', async () => {
    const known = scenario();
    const { page } = await open();

    await page.goto('/');
    await page.locator(`tr[data-worker="${hostname}"]`).waitFor();
    await screenshot(page, 'workers', ['/tmp/stalk-dashboard.png']);

    await page.goto('/tasks');
    await page.locator(`tr[data-task="${known.failed}"]`).waitFor();
    await screenshot(page, 'tasks');

    await page.goto('/tasks?state=FAILURE');
    expect(await page.locator('select[name="state"]').inputValue()).toBe('FAILURE');
    const failed = await listedTasks(page);
    expect(failed.map((t) => t.id)).toContain(known.failed);
    expect(failed.every((t) => t.state === 'FAILURE')).toBe(true);
    await screenshot(page, 'tasks-failure');

    await page.goto(`/task/${known.failed}`);
    await page.locator('pre.traceback').waitFor();
    await screenshot(page, 'task-failed');

    await page.goto(`/worker/${encodeURIComponent(hostname)}`);
    await page.locator('#tab-overview').waitFor();
    await screenshot(page, 'worker');

    const broker = await page.goto('/broker');
    expect(broker?.status()).toBe(200);
    expect((await page.locator('h1').innerText()).trim()).toBe('Message broker');
    await screenshot(page, 'broker');

    const missing = await page.goto('/task/00000000-0000-4000-8000-000000000000');
    expect(missing?.status()).toBe(404);
    expect((await page.locator('h1').innerText()).trim()).toBe('Not found');
    await screenshot(page, 'not-found');
  }, 40_000);
});
