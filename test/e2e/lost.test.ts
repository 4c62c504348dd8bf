// A LOST task's page and the tasks page's stuck filter in headless Chromium,
// at desktop and phone widths: the badge has its own colour, the reason sits
// under the title, nothing overflows sideways, and the stuck field filters.

import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sweepLost } from '../../worker-collector/store/lost';
import { received, started } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { closeWatchedPages, openWatchedPage, type ServedApp, screenshot, serveForChromium, type WatchedPage } from './browser';

const NOW = 1_900_000_000;
const VIEWPORTS = [
  { name: 'desktop', width: 1280, height: 900 },
  { name: 'phone', width: 390, height: 844 },
];

describe('LOST and stuck tasks in headless Chromium', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let served: ServedApp | undefined;
  let browser: Browser;
  const opened: WatchedPage[] = [];

  beforeAll(async () => {
    database = await openTestDatabase('sqlite');
    const on = (uuid: string, worker: string) => ({ uuid, name: 'reports.build_monthly_statement', worker });
    await store(database, [
      received(on('2f1c7e0a-4b7e-4c55-9a0e-lost00000001', 'celery-worker-7d9f8b6c4-x2k9q@reports-pool'), NOW - 120),
      started(on('2f1c7e0a-4b7e-4c55-9a0e-lost00000001', 'celery-worker-7d9f8b6c4-x2k9q@reports-pool'), NOW - 119),
      received(on('long-running', 'w1@host'), NOW - 901),
      started(on('long-running', 'w1@host'), NOW - 900),
      received(on('just-started', 'w1@host'), NOW - 6),
      started(on('just-started', 'w1@host'), NOW - 5),
    ]);
    await sweepLost(database.db, database.dialect, {
      offline: [{ hostname: 'celery-worker-7d9f8b6c4-x2k9q@reports-pool', at: NOW - 60, how: 'heartbeat' }],
      revived: [],
      lostAfter: 0,
      now: NOW,
    });
    served = await serveForChromium(testApp(database, { now: NOW, staticFiles: true, ui: { refreshSeconds: 0 } }));
    browser = served.browser;
  }, 60_000);

  afterEach(async () => {
    expect(await closeWatchedPages(opened)).toEqual([]);
  });

  afterAll(async () => {
    await served?.close();
    await database?.drop();
  });

  const open = async (viewport: { width: number; height: number }) => {
    if (!served) throw new Error('no app');
    const watched = await openWatchedPage(browser, served.baseUrl, viewport);
    opened.push(watched);
    return watched.page;
  };

  it.each(VIEWPORTS)('shows a LOST task with its reason ($name)', async (viewport) => {
    const page = await open(viewport);
    await page.goto('/task/2f1c7e0a-4b7e-4c55-9a0e-lost00000001');
    const badge = page.locator('h1 .badge');
    expect(await badge.textContent()).toBe('LOST');
    const colours = await page.evaluate(() => {
      const lost = getComputedStyle(document.querySelector('h1 .badge')!).backgroundColor;
      const probe = document.createElement('span');
      probe.className = 'badge info';
      document.body.append(probe);
      const info = getComputedStyle(probe).backgroundColor;
      probe.remove();
      return { lost, info };
    });
    expect(colours.lost).not.toBe(colours.info);
    expect(await page.locator('#state-reason').textContent()).toBe(
      'worker celery-worker-7d9f8b6c4-x2k9q@reports-pool went offline at 2030-03-17 17:45:40 UTC (heartbeats stopped)',
    );
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await screenshot(page, `lost-task-${viewport.name}`);
  });

  it.each(VIEWPORTS)('filters stuck tasks from the form ($name)', async (viewport) => {
    const page = await open(viewport);
    await page.goto('/tasks');
    await page.fill('#field-stuck', '300');
    await Promise.all([page.waitForURL(/stuck=300/), page.locator('#field-stuck').press('Enter')]);
    const rows = await page.$$eval('#tasks-table tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
    expect(rows.some((r) => r.includes('long-running'))).toBe(true);
    expect(rows.some((r) => r.includes('just-started'))).toBe(false);
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await screenshot(page, `stuck-filter-${viewport.name}`);
  });
});
