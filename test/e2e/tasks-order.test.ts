// The tasks page says how its rows are ordered and lets the reader choose
// (issue 11, item 8): the default order, by last event, is named above the
// table; another order chosen there or by a column's header shows in both
// (the header's arrow and aria-sort). A list of failures shows their
// exception unless the reader chose the columns. In headless Chromium, the
// app in-process over a SQLite database.

import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { failed, received, started, succeeded, workerEvent } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import {
  closeWatchedPages,
  fitsViewportWidth,
  listedTasks,
  markDocument,
  openWatchedPage,
  type ServedApp,
  sameDocument,
  screenshot,
  serveForChromium,
  type WatchedPage,
} from './browser';

const UI_WAIT = { timeout: 10_000, interval: 100 };
const T0 = 1_900_000_000;
/** Received in this order; their last events (finish, or start, or receipt) in another. */
const TASKS = [
  { uuid: 'task-a', received: T0 + 1, last: T0 + 20 },
  { uuid: 'task-b', received: T0 + 2, last: T0 + 5 },
  { uuid: 'task-c', received: T0 + 3, last: T0 + 4 },
  { uuid: 'task-d', received: T0 + 10, last: T0 + 10 },
];

const ids = async (page: Page) => (await listedTasks(page)).map((t) => t.id);
const headers = (page: Page) => page.$$eval('#tasks-table thead th', (els) => els.map((el) => el.className.replace(/^col-/, '')));
/** The header cells that carry aria-sort, with it and their text. */
const sortedHeaders = (page: Page) =>
  page.$$eval('#tasks-table thead th[aria-sort]', (els) =>
    els.map((el) => `${el.className}:${el.getAttribute('aria-sort')}:${el.textContent}`),
  );
const sortShown = async (page: Page) => page.locator('#task-sort option:checked').innerText();

describe('task order and failure columns in headless Chromium', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let served: ServedApp | undefined;
  let baseUrl = '';
  let browser: Browser;
  const opened: WatchedPage[] = [];

  beforeAll(async () => {
    database = await openTestDatabase('sqlite');
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    const [a, b, c, d] = TASKS.map((t) => ({ uuid: t.uuid, name: 'billing.charge' }));
    batch.add(received(a!, TASKS[0]!.received), workers);
    batch.add(started(a!, TASKS[0]!.received + 1), workers);
    batch.add(succeeded(a!, TASKS[0]!.last, "'ok'", 18), workers);
    batch.add(received(b!, TASKS[1]!.received), workers);
    batch.add(failed(b!, TASKS[1]!.last, "ValueError('card declined')"), workers);
    batch.add(received(c!, TASKS[2]!.received), workers);
    batch.add(started(c!, TASKS[2]!.last), workers);
    batch.add(received(d!, TASKS[3]!.received), workers);
    batch.add(workerEvent('worker-online', 'w1@host', T0), workers);
    await store(database, batch, workers);
    served = await serveForChromium(testApp(database, { now: T0 + 30, staticFiles: true, ui: { refreshSeconds: 0 } }));
    ({ baseUrl, browser } = served);
  }, 60_000);

  afterEach(async () => {
    expect(await closeWatchedPages(opened)).toEqual([]);
  });

  afterAll(async () => {
    await served?.close();
    await database?.drop();
  });

  const open = async (viewport?: { width: number; height: number }) => {
    const watched = await openWatchedPage(browser, baseUrl, viewport);
    opened.push(watched);
    return watched.page;
  };

  it('names the default order (last event, newest first) and changes it from the control or a header, shown in both', async () => {
    const page = await open();
    await page.goto('/tasks');
    const byLast = [...TASKS].sort((x, y) => y.last - x.last).map((t) => t.uuid);
    expect(await ids(page)).toEqual(byLast);
    expect(await sortShown(page)).toBe('Last event, newest first');
    expect(await sortedHeaders(page)).toEqual([]);
    await screenshot(page, 'tasks-order-default-1280');
    await markDocument(page);

    await page.locator('#task-sort').selectOption('received');
    await expect.poll(() => ids(page), UI_WAIT).toEqual(TASKS.map((t) => t.uuid));
    expect(new URL(page.url()).searchParams.get('sort')).toBe('received');
    expect(await sortShown(page)).toBe('Received, oldest first');
    expect(await sortedHeaders(page)).toEqual([expect.stringMatching(/^col-received:ascending:Received .*▲$/)]);
    expect(await sameDocument(page)).toBe(true);

    await page.locator('#tasks-table th.col-received a').click();
    await expect.poll(() => ids(page), UI_WAIT).toEqual([...TASKS].reverse().map((t) => t.uuid));
    expect(await sortShown(page)).toBe('Received, newest first');
    expect(await sortedHeaders(page)).toEqual([expect.stringMatching(/^col-received:descending:Received .*▼$/)]);

    // A column outside the control's usual choices joins them while it is the order.
    await page.locator('#tasks-table th.col-args a').click();
    await expect.poll(() => sortShown(page), UI_WAIT).toBe('Args, Z–A');
    expect(await sameDocument(page)).toBe(true);
    // Back to the default: no header claims the order, the control names it.
    await page.locator('#task-sort').selectOption('-timestamp');
    await expect.poll(() => ids(page), UI_WAIT).toEqual(byLast);
    expect(await sortedHeaders(page)).toEqual([]);
    await screenshot(page, 'tasks-order-received-1280');

    const phone = await open({ width: 390, height: 844 });
    await phone.goto('/tasks?sort=received');
    expect(await sortShown(phone)).toBe('Received, oldest first');
    expect((await fitsViewportWidth(phone)).fits).toBe(true);
    await screenshot(phone, 'tasks-order-390');
  });

  it('a list of failures shows their exception, by state or by search, unless the reader chose the columns', async () => {
    const page = await open();
    await page.goto('/tasks');
    expect(await headers(page)).not.toContain('exception');
    await markDocument(page);

    await page.locator('#task-filters select[name="state"]').selectOption('FAILURE');
    await expect.poll(() => headers(page), UI_WAIT).toContain('exception');
    expect(await ids(page)).toEqual(['task-b']);
    expect(await page.locator('#tasks-table td.col-exception').innerText()).toContain("ValueError('card declined')");
    // Chosen by the server, not by the reader: the URL carries no columns, the picker shows what the table does.
    expect(new URL(page.url()).searchParams.has('columns')).toBe(false);
    expect(await page.locator('input[name="columns"][value="exception"]').isChecked()).toBe(true);
    expect(await sameDocument(page)).toBe(true);
    await screenshot(page, 'tasks-failures-1280');

    await page.locator('#task-filters select[name="state"]').selectOption('');
    await expect.poll(() => headers(page), UI_WAIT).not.toContain('exception');
    expect(await page.locator('input[name="columns"][value="exception"]').isChecked()).toBe(false);

    // The search's state:FAILURE too, as typed.
    await page.locator('#search').fill('state:FAILURE');
    await expect.poll(() => headers(page), UI_WAIT).toContain('exception');
    expect(await ids(page)).toEqual(['task-b']);
    const phone = await open({ width: 390, height: 844 });
    await phone.goto('/tasks?q=state%3AFAILURE');
    expect(await headers(phone)).toContain('exception');
    await screenshot(phone, 'tasks-failures-390');

    // Columns the reader chose are kept: no exception added to them.
    const chooser = await open();
    await chooser.goto('/tasks');
    await chooser.locator('details.columns summary').click();
    await chooser.locator('input[name="columns"][value="args"]').uncheck();
    await expect.poll(() => headers(chooser), UI_WAIT).not.toContain('args');
    await chooser.locator('#task-filters select[name="state"]').selectOption('FAILURE');
    await expect.poll(() => ids(chooser), UI_WAIT).toEqual(['task-b']);
    expect(await headers(chooser)).not.toContain('exception');
    expect(new URL(chooser.url()).searchParams.getAll('columns')).not.toContain('exception');
    // And on a typed URL, restored from what was saved.
    await chooser.goto('/tasks?state=FAILURE');
    await expect.poll(() => new URL(chooser.url()).searchParams.has('columns'), UI_WAIT).toBe(true);
    expect(await headers(chooser)).not.toContain('exception');
    expect(await headers(chooser)).not.toContain('args');
  });
});
