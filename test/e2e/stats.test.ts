// /stats in headless Chromium: charts render with axes, labels in the
// reader's zone and hover titles; the task types table's numbers lead to task
// lists with as many tasks; the period switch; one task name's page; the
// theme toggle persists and applies before the first paint; a phone can
// use the page. The app runs in-process over SQLite holding a seeded period
// (test/support/stats-scenario.ts): tasks through the real store, and their
// statistics rows.

import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { scenarioCounts, seedScenario } from '../support/stats-scenario';
import {
  closeWatchedPages,
  fitsViewportWidth,
  listedTasks,
  markDocument,
  openWatchedPage,
  sameDocument,
  type ServedApp,
  screenshot,
  serveForChromium,
  swapCount,
  type WatchedPage,
} from './browser';

const UI_WAIT = { timeout: 10_000, interval: 100 };
const PHONE = { width: 390, height: 844 };
const NOW = Math.floor(Date.UTC(2026, 11, 2, 9, 30, 20) / 1000);
const DARK_BG = 'rgb(17, 19, 24)';
const LIGHT_BG = 'rgb(247, 247, 248)';

/** 'HH:MM' of epoch seconds in an IANA zone. */
function hmIn(seconds: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(
    new Date(seconds * 1000),
  );
}

describe('/stats in headless Chromium', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let served: ServedApp | undefined;
  let baseUrl = '';
  let browser: Browser;
  const opened: WatchedPage[] = [];

  beforeAll(async () => {
    database = await openTestDatabase('sqlite');
    await seedScenario(database, NOW);
    served = await serveForChromium(testApp(database, { now: NOW, staticFiles: true }));
    ({ baseUrl, browser } = served);
  }, 60_000);

  afterEach(async () => {
    expect(await closeWatchedPages(opened)).toEqual([]);
  });

  afterAll(async () => {
    await served?.close();
    await database?.drop();
  });

  async function open(options: { viewport?: { width: number; height: number }; timezoneId?: string } = {}): Promise<WatchedPage> {
    if (!browser) throw new Error('Chromium did not start (see beforeAll)');
    const watched = await openWatchedPage(browser, baseUrl, options.viewport, 'dismiss', options.timezoneId);
    opened.push(watched);
    return watched;
  }

  async function bodyBackground(page: Page): Promise<string> {
    return page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  }

  it('draws the charts with axes, labels in the reader’s zone, hover titles and a table view', async () => {
    const { page } = await open({ timezoneId: 'Asia/Kolkata' });
    await page.goto('/stats?period=1h');
    const charts = page.locator('figure.chart');
    expect(await charts.count()).toBe(4);
    for (const id of ['chart-throughput', 'chart-failure-rate', 'chart-runtime', 'chart-queues']) {
      const svg = page.locator(`#${id} svg.chart-svg`);
      const box = await svg.boundingBox();
      expect(box?.width, id).toBeGreaterThan(300);
      expect(box?.height, id).toBeGreaterThan(100);
      expect(await svg.locator('.y-axis text.tick').count(), id).toBeGreaterThanOrEqual(2);
      expect(await svg.locator('.x-axis text.tick').count(), id).toBeGreaterThanOrEqual(3);
    }
    // Bars: the throughput chart has marks, and a hover title names the counts of its minute.
    expect(await page.locator('#chart-throughput rect.bar').count()).toBeGreaterThan(5);
    const titles = await page.locator('#chart-throughput .hover title').allTextContents();
    expect(titles.some((t) => /succeeded 1, failed 0, retried 0$/.test(t))).toBe(true);
    // Axis labels and titles are in the reader's zone (India, UTC+5:30), and the axis says which.
    await expect.poll(() => page.locator('#chart-throughput tspan[data-zone]').textContent(), UI_WAIT).toBe('India Time');
    const ticks = await page.$$eval('#chart-throughput .x-axis text.tick', (els) =>
      els.map((el) => ({ t: Number(el.getAttribute('data-t')), text: el.textContent })),
    );
    expect(ticks.length).toBeGreaterThan(2);
    for (const tick of ticks) expect(tick.text).toBe(hmIn(tick.t, 'Asia/Kolkata'));
    expect(titles.length).toBeGreaterThan(0);
    const title = await page.locator('#chart-throughput .hover title').first().textContent();
    expect(title).toMatch(/^2026-12-0\d \d\d:\d\d (GMT\+5:30|IST) · 1 min: /);
    // The UTC switch rewrites them.
    await page.click('#zone-toggle');
    await expect.poll(() => page.locator('#chart-throughput tspan[data-zone]').textContent(), UI_WAIT).toBe('UTC');
    const utcTicks = await page.$$eval('#chart-throughput .x-axis text.tick', (els) =>
      els.map((el) => ({ t: Number(el.getAttribute('data-t')), text: el.textContent })),
    );
    for (const tick of utcTicks) expect(tick.text).toBe(hmIn(tick.t, 'UTC'));
    // The table view holds the same numbers.
    await page.click('#chart-throughput-table summary');
    const rows = await page.locator('#chart-throughput-table tbody tr').count();
    expect(rows).toBeGreaterThan(5);
    await screenshot(page, 'stats-1280-light');
  });

  it('links each number of the task types table to a task list of that many tasks', async () => {
    const { page } = await open();
    const expected = scenarioCounts('billing.charge');
    for (const [col, n] of [
      ['count', expected.succeeded + expected.failed],
      ['failed', expected.failed],
    ] as const) {
      await page.goto('/stats?period=1h');
      const cell = page.locator(`#task-types-table tr[data-task-name="billing.charge"] td[data-col="${col}"] a`);
      expect((await cell.textContent())?.startsWith(String(n))).toBe(true);
      await cell.click();
      await page.waitForURL(/\/tasks\?/);
      await expect.poll(async () => (await listedTasks(page)).length, UI_WAIT).toBe(n);
      if (col === 'failed') expect((await listedTasks(page)).every((t) => t.state === 'FAILURE')).toBe(true);
    }
    // Failures by exception: the count leads to those failed tasks.
    await page.goto('/stats?period=1h');
    await page.locator('#exceptions-table tr[data-exception="ValueError"] td.num a').click();
    await page.waitForURL(/\/tasks\?/);
    await expect.poll(async () => (await listedTasks(page)).map((t) => t.state), UI_WAIT).toEqual(['FAILURE', 'FAILURE']);
  });

  it('switches between 1h, 24h, 7d and 30d, and opens one task name', async () => {
    const { page } = await open();
    await page.goto('/stats');
    for (const [period, span, by] of [
      ['1h', 3600, 'minute'],
      ['24h', 86400, 'minute'],
      ['7d', 7 * 86400, 'hour'],
      ['30d', 30 * 86400, 'hour'],
    ] as const) {
      await page.click(`nav.periods a:text-is("${period}")`);
      await page.waitForURL(new RegExp(`period=${period}$`));
      expect(await page.getAttribute('nav.periods a[aria-current="page"]', 'href')).toBe(`/stats?period=${period}`);
      const panel = page.locator('#stats-panel');
      expect(Number(await panel.getAttribute('data-to')) - Number(await panel.getAttribute('data-from'))).toBe(span);
      expect(await page.locator('#stats-panel .freshness').textContent()).toContain(`by the ${by}`);
      expect(await page.locator('#task-types-table tr[data-task-name="billing.charge"] td[data-col="count"]').textContent()).toBe('8');
    }
    await page.click('#task-types-table a:text-is("billing.charge")');
    await page.waitForURL(/\/stats\/billing\.charge\?period=30d$/);
    expect(await page.locator('h1').textContent()).toBe('billing.charge');
    expect(await page.locator('#chart-queue-wait svg').count()).toBe(1);
    expect(await page.locator('#exceptions-table tr[data-exception="ValueError"] td.num').textContent()).toBe('2');
    await screenshot(page, 'stats-name-1280-light');
  });

  it('keeps the chosen theme across pages, applied before the first paint', async () => {
    const watched = await open();
    const { page, context } = watched;
    // Record the body's background the moment the body exists: before any paint.
    await context.addInitScript(() => {
      const w = window as unknown as Record<string, unknown>;
      new MutationObserver((_, observer) => {
        if (!document.body) return;
        w.__firstBackground = getComputedStyle(document.body).backgroundColor;
        w.__firstTheme = document.documentElement.getAttribute('data-theme');
        observer.disconnect();
      }).observe(document, { childList: true, subtree: true });
    });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto('/stats?period=1h');
    expect(await bodyBackground(page)).toBe(LIGHT_BG);
    await page.selectOption('#theme-select', 'dark');
    await expect.poll(() => bodyBackground(page), UI_WAIT).toBe(DARK_BG);
    for (const path of ['/tasks', '/stats/billing.charge?period=1h', '/broker']) {
      await page.goto(path);
      const first = await page.evaluate(() => (window as unknown as Record<string, unknown>).__firstBackground);
      expect(first, path).toBe(DARK_BG);
      expect(await page.inputValue('#theme-select')).toBe('dark');
    }
    await screenshot(page, 'stats-broker-1280-dark');
    // Light, chosen, wins over a dark system; "System" follows the system again.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.selectOption('#theme-select', 'light');
    await page.reload();
    expect(await page.evaluate(() => (window as unknown as Record<string, unknown>).__firstBackground)).toBe(LIGHT_BG);
    await page.selectOption('#theme-select', 'system');
    await page.reload();
    expect(await page.evaluate(() => (window as unknown as Record<string, unknown>).__firstBackground)).toBe(DARK_BG);
    expect(await page.evaluate(() => (window as unknown as Record<string, unknown>).__firstTheme)).toBe(null);
  });

  it('refreshes in place: new statistics appear without a reload, an unchanged panel is left alone', async () => {
    const { page } = await open();
    await page.goto('/stats?period=1h');
    await markDocument(page);
    await page.click('#chart-runtime-table summary');
    // The first poll learns the panel's ETag; the next, of an unchanged panel, is answered 304: no swap.
    const polls: number[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/stats?period=1h') && r.request().headers()['hx-request']) polls.push(r.status());
    });
    await expect.poll(() => polls.length, { timeout: 25_000, interval: 250 }).toBeGreaterThanOrEqual(1);
    expect(polls[0]).toBe(200);
    const swaps = await swapCount(page);
    await expect.poll(() => polls.length, { timeout: 25_000, interval: 250 }).toBeGreaterThanOrEqual(2);
    expect(polls[1]).toBe(304);
    expect(await swapCount(page)).toBe(swaps);
    // The collector writes a minute of a new task name: the next poll shows it.
    await seedScenario(database!, NOW, [{ bucket: Math.floor(NOW / 60) * 60 - 120, name: 'report.build', counts: { succeeded: 4 } }]);
    await expect
      .poll(() => page.locator('#task-types-table tr[data-task-name="report.build"] td[data-col="count"]').textContent(), {
        timeout: 25_000,
        interval: 250,
      })
      .toBe('4');
    expect(await sameDocument(page)).toBe(true);
    expect(await swapCount(page)).toBeGreaterThan(swaps);
    // The table view the reader opened is still open after the morph.
    expect(await page.locator('#chart-runtime-table').getAttribute('open')).not.toBeNull();
    // Back to the scenario alone for the tests after this one.
    await seedScenario(database!, NOW);
  }, 90_000);

  it('is usable at phone width, in light and dark', async () => {
    const { page } = await open({ viewport: PHONE });
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto('/stats?period=24h');
      // The page is no wider than the phone; a chart scrolls sideways in its own box at most.
      expect((await fitsViewportWidth(page)).fits).toBe(true);
      const box = await page.locator('#chart-throughput svg').boundingBox();
      expect(box?.width).toBeGreaterThan(300);
      // The charts stack one a row.
      const [a, b] = await Promise.all([
        page.locator('#chart-throughput').boundingBox(),
        page.locator('#chart-failure-rate').boundingBox(),
      ]);
      expect(b!.y).toBeGreaterThan(a!.y + a!.height - 1);
      expect(await bodyBackground(page)).toBe(scheme === 'dark' ? DARK_BG : LIGHT_BG);
      await screenshot(page, `stats-390-${scheme}`);
    }
    await page.goto('/stats/billing.charge?period=1h');
    expect((await fitsViewportWidth(page)).fits).toBe(true);
    await screenshot(page, 'stats-name-390-dark');
  });
});
