// Live refresh that never gets in the way, in headless Chromium: the tasks
// panel and the dashboard poll (every second here), swap by morphing, and a
// poll of an unchanged panel gets 304 and leaves it alone. Keyboard focus, a
// text selection, an open <details> and a scrolled table survive; a changed
// panel still updates (a task written to the database appears).

import { mkdirSync } from 'node:fs';
import type { Browser, Page, Response } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { received, succeedingTask } from '../fixtures/events';
import { store } from '../support/app';
import { createTestDatabase, openTestConnection, type TestDatabase } from '../support/databases';
import { freePort, printLogsOnFailure, spawnManaged, stopAllProcesses } from '../support/processes';
import { type Stalk, startStalk } from '../support/stalk';
import { closeWatchedPages, launchChromium, markDocument, openWatchedPage, sameDocument, screenshot, type WatchedPage } from './browser';

const T0 = Math.floor(Date.now() / 1000) - 3600;
const SHOTS = '/tmp/shots-morph';
const PHONE = { width: 390, height: 844 };

/** The panel polls a page has seen answered: status per response, in order. */
function pollLog(page: Page, panelPath: RegExp): number[] {
  const statuses: number[] = [];
  page.on('response', (response: Response) => {
    const request = response.request();
    if (request.headers()['hx-request'] && panelPath.test(new URL(response.url()).pathname)) statuses.push(response.status());
  });
  return statuses;
}

describe('live refresh in headless Chromium', () => {
  let database: TestDatabase | undefined;
  let writer: OpenDatabase | undefined;
  let stalk: Stalk | undefined;
  let browser: Browser | undefined;
  const opened: WatchedPage[] = [];

  printLogsOnFailure();

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const port = await freePort();
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
    database = await createTestDatabase('sqlite');
    [stalk, browser] = await Promise.all([
      startStalk({ broker: `redis://127.0.0.1:${port}/0`, db: database.url, extraArgs: ['--auto-refresh', '1'] }),
      launchChromium(),
    ]);
    // Stalk has migrated the database by now.
    writer = await openTestConnection(database.url);
    const events = [];
    for (let i = 0; i < 12; i++)
      events.push(...succeedingTask({ uuid: `seed-${String(i).padStart(2, '0')}`, name: `billing.charge_${i}` }, T0 + i));
    await store(writer, events);
  }, 60_000);

  afterEach(async () => {
    expect(await closeWatchedPages(opened)).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await stopAllProcesses();
    await writer?.close();
    await database?.drop();
  });

  async function open(viewport?: { width: number; height: number }): Promise<WatchedPage> {
    if (!stalk || !browser) throw new Error('Stalk or Chromium did not start (see beforeAll)');
    const watched = await openWatchedPage(browser, stalk.baseUrl, viewport);
    opened.push(watched);
    return watched;
  }

  /** Wait until `n` more polls were answered. */
  async function polls(log: number[], n: number): Promise<void> {
    const target = log.length + n;
    await expect.poll(() => log.length, { timeout: 15_000, interval: 100 }).toBeGreaterThanOrEqual(target);
  }

  const focused = (page: Page) =>
    page.evaluate(() => {
      const el = document.activeElement;
      if (!el) return 'none';
      const tag = el.tagName.toLowerCase();
      const label = tag === 'a' || tag === 'button' ? (el.textContent ?? '').trim() : (el.getAttribute('name') ?? '');
      return `${tag}#${el.id}|${label}`;
    });

  it('/tasks: focus, a selection, an open <details> and scroll survive polls; unchanged polls get 304; a new task appears', async () => {
    const { page } = await open();
    const log = pollLog(page, /\/tasks$/);
    await page.goto('/tasks');
    await page.locator('tr[data-task="seed-00"]').waitFor();
    await markDocument(page);
    // The first poll gets the panel (and its ETag); the ones after it name that tag.
    await polls(log, 3);
    expect(log[0]).toBe(200);
    expect(log.slice(1)).toContain(304);

    // Keyboard focus in the search box, then on a select, then on a link inside the table.
    await page.locator('#search').focus();
    await polls(log, 3);
    expect(await focused(page)).toBe('input#search|q');
    await page.locator('select[name="state"]').focus();
    await polls(log, 3);
    expect(await focused(page)).toMatch(/^select#[^|]*\|state$/);
    const sortLink = page.locator('#tasks-table thead th a').first();
    await sortLink.focus();
    const linkText = (await sortLink.innerText()).trim();
    await polls(log, 3);
    expect(await focused(page)).toBe(`a#|${linkText}`);

    // A text selection in the table, and an open <details> above it.
    await page.locator('details.columns summary').click();
    await page.evaluate(() => {
      const cell = document.querySelector('tr[data-task="seed-03"] td.col-name');
      if (!cell) throw new Error('no name cell');
      const range = document.createRange();
      range.selectNodeContents(cell);
      const selection = window.getSelection();
      selection?.removeAllRanges();
      selection?.addRange(range);
    });
    await polls(log, 3);
    expect(await page.evaluate(() => window.getSelection()?.toString().trim())).toBe('billing.charge_3');
    expect(await page.locator('details.columns').getAttribute('open')).toBe('');
    expect(log.slice(-3)).toEqual([304, 304, 304]);

    // A task written to the database: the next poll brings it (200), and what the reader was doing stays.
    await sortLink.focus();
    await page.evaluate(() => {
      const cell = document.querySelector('tr[data-task="seed-03"] td.col-name');
      const range = document.createRange();
      if (cell) range.selectNodeContents(cell);
      window.getSelection()?.removeAllRanges();
      window.getSelection()?.addRange(range);
    });
    const before = log.length;
    if (!writer) throw new Error('no database');
    await store(writer, [received({ uuid: 'fresh-1', name: 'mail.send_fresh' }, Math.floor(Date.now() / 1000))]);
    await page.locator('tr[data-task="fresh-1"]').waitFor({ timeout: 10_000 });
    expect(log.slice(before)).toContain(200);
    expect(await sameDocument(page)).toBe(true);
    expect(await focused(page)).toBe(`a#|${linkText}`);
    expect(await page.evaluate(() => window.getSelection()?.toString().trim())).toBe('billing.charge_3');
    expect(await page.locator('details.columns').getAttribute('open')).toBe('');
    // And quiet again after it.
    await polls(log, 2);
    expect(log.slice(-1)).toEqual([304]);
    await screenshot(page, 'refresh-tasks-1280', [`${SHOTS}/tasks-1280.png`]);
    // About seventeen polls a second apart: 20 s is too close on a loaded machine.
  }, 60_000);

  it('/tasks in a narrow window: a table scrolled sideways stays scrolled when a changed panel arrives', async () => {
    const { page } = await open({ width: 800, height: 900 });
    const log = pollLog(page, /\/tasks$/);
    await page.goto('/tasks');
    await page.locator('tr[data-task="seed-00"]').waitFor();
    const box = page.locator('#tasks-panel .scroll');
    const width = await box.evaluate((el) => el.scrollWidth - el.clientWidth);
    expect(width).toBeGreaterThan(50);
    await box.evaluate((el) => {
      el.scrollLeft = 40;
    });
    await polls(log, 2);
    if (!writer) throw new Error('no database');
    await store(writer, [received({ uuid: 'fresh-2', name: 'mail.send_phone' }, Math.floor(Date.now() / 1000))]);
    await page.locator('tr[data-task="fresh-2"]').waitFor({ timeout: 10_000 });
    expect(await box.evaluate((el) => el.scrollLeft)).toBe(40);
    await screenshot(page, 'refresh-tasks-800', [`${SHOTS}/tasks-800.png`]);
    await page.setViewportSize(PHONE);
    await screenshot(page, 'refresh-tasks-390', [`${SHOTS}/tasks-390.png`]);
  });

  it("a morph keeps an open <details> open (stalk.js's idiomorph setting) and updates everything else; htmx leaves a 304 alone", async () => {
    const { page } = await open();
    await page.goto('/tasks');
    await page.locator('tr[data-task="seed-00"]').waitFor();
    const result = await page.evaluate(() => {
      const w = window as unknown as {
        Idiomorph: { morph(old: Element, next: string): void };
        htmx: { config: { responseHandling: { code: string; swap: boolean }[] } };
      };
      const box = document.createElement('div');
      box.innerHTML = '<section id="morph-probe" class="old"><details open><summary>More</summary><p>old</p></details></section>';
      document.body.append(box);
      const section = box.querySelector('#morph-probe');
      if (!section) throw new Error('no probe');
      w.Idiomorph.morph(section, '<section id="morph-probe" class="new"><details><summary>More</summary><p>new</p></details></section>');
      const details = box.querySelector('details');
      const outcome = {
        open: details?.open,
        sameNode: box.querySelector('#morph-probe') === section,
        className: section.className,
        text: details?.querySelector('p')?.textContent,
        first304: w.htmx.config.responseHandling.find((r) => new RegExp(r.code).test('304')),
      };
      box.remove();
      return outcome;
    });
    expect(result).toEqual({ open: true, sameNode: true, className: 'new', text: 'new', first304: { code: '304', swap: false } });
  });

  it('dashboard: an unchanged workers panel gets 304 and keeps focus on "Refresh now"; the Updated time still moves', async () => {
    const { page } = await open();
    const log = pollLog(page, /^\/(workers)?$/);
    await page.goto('/');
    await page.locator('#workers-table td.empty').waitFor();
    const stamp = () => page.locator('#workers-panel time[data-updated]').getAttribute('data-updated');
    const first = await stamp();
    const refresh = page.locator('#workers-panel .freshness button');
    await refresh.focus();
    await polls(log, 4);
    expect(log[0]).toBe(200);
    expect(log.slice(1)).toEqual([304, 304, 304]);
    expect(await focused(page)).toBe('button#|Refresh now');
    expect(Number(await stamp())).toBeGreaterThan(Number(first));
    await screenshot(page, 'refresh-dashboard-1280', [`${SHOTS}/dashboard-1280.png`]);
    await page.setViewportSize(PHONE);
    await screenshot(page, 'refresh-dashboard-390', [`${SHOTS}/dashboard-390.png`]);
  });
});
