// Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven
// by playwright-core (never a downloaded browser), pages that record what
// must not happen (dialogs, uncaught script errors), and small readers of
// what Stalk's pages show.

import { copyFileSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { serve } from '@hono/node-server';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { REPO_ROOT } from '../support/stalk';

export const SCREENSHOT_DIR = join(REPO_ROOT, 'test-artifacts', 'screenshots');

/** An app served in this process on a free port, and Chromium to look at it. */
export interface ServedApp {
  baseUrl: string;
  browser: Browser;
  close(): Promise<void>;
}

export async function serveForChromium(app: { fetch: (request: Request) => Response | Promise<Response> }): Promise<ServedApp> {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const browser = await launchChromium();
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    browser,
    async close() {
      await browser.close().catch(() => undefined);
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A page in its own context, with every dialog and uncaught page error
 * recorded. Dialogs are dismissed, unless `dialogs` is 'accept' (the control
 * actions ask for confirmation before they act).
 */
export interface WatchedPage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** `confirm: <message>`… for each dialog shown; with dismissed dialogs, any entry means a script ran that should not have. */
  readonly dialogs: string[];
  /** Uncaught errors thrown by the page's scripts. */
  readonly pageErrors: string[];
  close(): Promise<void>;
}

export async function openWatchedPage(
  browser: Browser,
  baseURL: string,
  viewport = { width: 1280, height: 900 },
  dialogs: 'dismiss' | 'accept' = 'dismiss',
  /** The browser's time zone (an IANA name), e.g. 'America/New_York'; the machine's when absent. */
  timezoneId?: string,
): Promise<WatchedPage> {
  const context = await browser.newContext({ baseURL, viewport, ...(timezoneId ? { timezoneId } : {}) });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  // Count htmx swaps, so a test can tell that a live update really replaced part of the page.
  await context.addInitScript(() => {
    const w = window as unknown as Record<string, unknown>;
    w.__stalkE2eSwaps = 0;
    document.addEventListener('htmx:afterSwap', () => {
      w.__stalkE2eSwaps = Number(w.__stalkE2eSwaps) + 1;
    });
  });
  const page = await context.newPage();
  const shown: string[] = [];
  const pageErrors: string[] = [];
  page.on('dialog', (dialog) => {
    shown.push(`${dialog.type()}: ${dialog.message()}`);
    void (dialogs === 'accept' ? dialog.accept() : dialog.dismiss()).catch(() => undefined);
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  return { context, page, dialogs: shown, pageErrors, close: () => context.close() };
}

/** Close the pages a test opened (emptying the list) and return what their scripts threw. */
export async function closeWatchedPages(opened: WatchedPage[]): Promise<string[]> {
  const pages = opened.splice(0);
  const errors = pages.flatMap((p) => p.pageErrors);
  await Promise.all(pages.map((p) => p.close().catch(() => undefined)));
  return errors;
}

/**
 * Mark the document; `sameDocument` is then true only as long as the page was not reloaded or
 * navigated (live updates must arrive without either).
 */
export async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as Record<string, unknown>).__stalkE2eMark = 'unchanged';
  });
}

export async function sameDocument(page: Page): Promise<boolean> {
  return page.evaluate(() => (window as unknown as Record<string, unknown>).__stalkE2eMark === 'unchanged');
}

/** How many htmx swaps the current document has seen. */
export async function swapCount(page: Page): Promise<number> {
  return page.evaluate(() => Number((window as unknown as Record<string, unknown>).__stalkE2eSwaps ?? 0));
}

/** One worker row of the dashboard as header -> cell text, or null while the row is absent. */
export async function workerRow(page: Page, hostname: string): Promise<Record<string, string> | null> {
  return page.evaluate((host) => {
    const table = document.querySelector('#workers-table');
    if (!table) return null;
    const headers = [...table.querySelectorAll('thead th')].map((th) => (th.textContent ?? '').trim());
    const row = [...table.querySelectorAll('tbody tr[data-worker]')].find((tr) => tr.getAttribute('data-worker') === host);
    if (!row) return null;
    const cells = [...row.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim());
    const result: Record<string, string> = {};
    headers.forEach((header, i) => {
      result[header] = cells[i] ?? '';
    });
    return result;
  }, hostname);
}

export function count(row: Record<string, string> | null, header: string): number {
  const text = row?.[header];
  if (text === undefined || !/^\d+$/.test(text)) return Number.NaN;
  return Number(text);
}

export interface ListedTask {
  id: string;
  state: string;
  name: string;
}

/** The rows of the tasks table as the page shows them now, in order. */
export async function listedTasks(page: Page): Promise<ListedTask[]> {
  return page.$$eval('#tasks-table tbody tr[data-task]', (rows) =>
    rows.map((tr) => ({
      id: tr.getAttribute('data-task') ?? '',
      state: tr.getAttribute('data-state') ?? '',
      name: (tr.querySelector('td.col-name')?.textContent ?? '').trim(),
    })),
  );
}

/** True when the document is no wider than the viewport (a table may still scroll inside its own box). */
export async function fitsViewportWidth(page: Page): Promise<{ fits: boolean; scrollWidth: number; clientWidth: number }> {
  return page.evaluate(() => {
    const { scrollWidth, clientWidth } = document.documentElement;
    return { fits: scrollWidth <= clientWidth + 1, scrollWidth, clientWidth };
  });
}

/** Full-page screenshot to test-artifacts/screenshots/<name>.png; also copied to each of `copies`. */
export async function screenshot(page: Page, name: string, copies: string[] = []): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  for (const copy of copies) {
    mkdirSync(dirname(copy), { recursive: true });
    copyFileSync(path, copy);
  }
  return path;
}
