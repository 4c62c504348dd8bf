// Issue 11's smaller defects that only a browser shows: table captions that
// wrapped a word a line, and the tasks table's chosen columns forgotten on
// navigation. The app runs in-process over a SQLite database.

import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KvRow, KvTable } from '../../templates/components/kv';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { failed, received, workerEvent } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { closeWatchedPages, openWatchedPage, type ServedApp, screenshot, serveForChromium, type WatchedPage } from './browser';

const UI_WAIT = { timeout: 10_000, interval: 100 };
const PHONE = { width: 390, height: 844 };
const SHOTS = '/tmp/shots-paging';
const T0 = 1_900_000_000;

async function headers(page: Page): Promise<string[]> {
  return page.$$eval('#tasks-table thead th', (els) => els.map((el) => el.className.replace(/^col-/, '')));
}

describe('captions and chosen columns in headless Chromium', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let served: ServedApp | undefined;
  let baseUrl = '';
  let browser: Browser;
  const opened: WatchedPage[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    database = await openTestDatabase('sqlite');
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    for (let i = 0; i < 3; i++) {
      const story = { uuid: `job-${i}`, name: 'billing.charge' };
      batch.add(received(story, T0 + i), workers);
      batch.add(failed(story, T0 + i + 1, "ValueError('declined')"), workers);
    }
    batch.add(workerEvent('worker-online', 'w1@host', T0), workers);
    await store(database, batch, workers);
    const app = testApp(database, { now: T0 + 10, staticFiles: true, ui: { refreshSeconds: 0 } });
    served = await serveForChromium(app);
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
    if (!browser) throw new Error('no browser');
    const watched = await openWatchedPage(browser, baseUrl, viewport);
    opened.push(watched);
    return watched.page;
  };

  it('keeps a caption over a narrow table on as few lines as the page allows, at 1280 and 390 px', async () => {
    const table = (
      <KvTable caption="Processed tasks (since the worker started)">
        <KvRow label="tasks.add">5</KvRow>
      </KvTable>
    ).toString();
    for (const viewport of [{ width: 1280, height: 900 }, PHONE]) {
      const page = await open(viewport);
      await page.goto('/tasks');
      await page.evaluate(
        (html) => {
          const main = document.querySelector('main');
          if (main) main.insertAdjacentHTML('afterbegin', `<div id="probe">${html}</div>`);
        },
        String(await table),
      );
      const caption = page.locator('#probe caption');
      const { height, lineHeight } = await caption.evaluate((el) => ({
        height: el.getBoundingClientRect().height - Number.parseFloat(getComputedStyle(el).paddingTop) * 2,
        lineHeight: Number.parseFloat(getComputedStyle(el).lineHeight) || 20,
      }));
      // Six words: a word a line would be six lines; 390 px holds it on two at most.
      expect(height, `${viewport.width} px`).toBeLessThanOrEqual(lineHeight * 2 + 1);
      const value = await page.locator('#probe td').boundingBox();
      const name = await page.locator('#probe th').boundingBox();
      // The value stays beside its name, not pushed to the caption's far end.
      expect((value?.x ?? 0) - ((name?.x ?? 0) + (name?.width ?? 0)), `${viewport.width} px`).toBeLessThan(40);
      await screenshot(page, `caption-${viewport.width}`, [`${SHOTS}/caption-${viewport.width}.png`]);
    }
  });

  it('remembers the chosen columns across navigation and on a typed URL', async () => {
    const page = await open();
    await page.goto('/tasks');
    expect(await headers(page)).not.toContain('exception');
    await page.locator('details.columns summary').click();
    await page.locator('input[name="columns"][value="exception"]').check();
    await expect.poll(() => headers(page), UI_WAIT).toContain('exception');
    await expect.poll(() => page.url(), UI_WAIT).toContain('columns=exception');
    // Away and back through the navigation's plain link.
    await page.locator('header.top nav a', { hasText: 'Workers' }).click();
    await page.waitForURL((url) => url.pathname === '/workers');
    await page.locator('header.top nav a', { hasText: 'Tasks' }).click();
    await page.waitForURL((url) => url.pathname === '/tasks');
    expect(await headers(page)).toContain('exception');
    expect(page.url()).toContain('columns=exception');
    // A typed URL without columns gets them back.
    await page.goto('/tasks?state=FAILURE');
    await expect.poll(() => page.url(), UI_WAIT).toContain('columns=exception');
    expect(new URL(page.url()).searchParams.get('state')).toBe('FAILURE');
    expect(await headers(page)).toContain('exception');
    await screenshot(page, 'columns-remembered-1280', [`${SHOTS}/columns-remembered-1280.png`]);
    // Unchecking them all goes back to the defaults, remembered as such.
    const chosen = await page.$$eval('input[name="columns"]:checked', (els) => els.map((el) => (el as HTMLInputElement).value));
    await page.locator('details.columns summary').click();
    for (const column of chosen) await page.locator(`input[name="columns"][value="${column}"]`).uncheck();
    await page.goto('/tasks');
    await expect.poll(() => headers(page), UI_WAIT).not.toContain('exception');
    expect(page.url()).not.toContain('columns=');
  });
});
