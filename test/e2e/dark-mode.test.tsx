// Every page in the dark theme, in headless Chromium: the theme chosen in
// the header applies on every page before its first paint, the background is
// dark, and no text is left hard to read (each visible text's contrast with
// the background behind it is at least 3:1). Screenshots of each page at
// desktop and phone width go to test-artifacts/screenshots/dark-*.png.

import { Hono } from 'hono';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_UI } from '../../src/ui/context';
import { LoginPage } from '../../templates/pages/login';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { workerEvent } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { seedScenario } from '../support/stats-scenario';
import {
  closeWatchedPages,
  fitsViewportWidth,
  openWatchedPage,
  type ServedApp,
  screenshot,
  serveForChromium,
  type WatchedPage,
} from './browser';

const PHONE = { width: 390, height: 844 };
const NOW = Math.floor(Date.UTC(2026, 11, 2, 9, 30, 20) / 1000);
const DARK_BG = 'rgb(17, 19, 24)';

const PAGES: [string, string][] = [
  ['workers', '/'],
  ['workers-list', '/workers'],
  ['worker', '/worker/w1@host'],
  ['tasks', '/tasks?columns=name&columns=state&columns=received&columns=runtime&columns=worker&columns=exception'],
  ['task-failed', '/task/scenario-7'],
  ['broker', '/broker'],
  ['audit', '/audit'],
  ['login', '/login-preview'],
  ['stats', '/stats?period=1h'],
  ['stats-name', '/stats/billing.charge?period=1h'],
];

interface LowContrast {
  text: string;
  color: string;
  background: string;
  ratio: number;
}

/** Visible text (outside SVG) whose colour is too close to the background behind it. */
async function lowContrast(page: Page): Promise<LowContrast[]> {
  return page.evaluate(() => {
    const rgba = (text: string) => {
      const m = /rgba?\(([^)]+)\)/.exec(text);
      const [r = 0, g = 0, b = 0, a = 1] = m ? m[1]!.split(',').map((x) => Number(x.trim())) : [];
      return { r, g, b, a };
    };
    const luminance = ({ r, g, b }: { r: number; g: number; b: number }) => {
      const lin = (c: number) => {
        const s = c / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    };
    const backgroundOf = (el: Element | null): string => {
      for (let e = el; e; e = e.parentElement) {
        const bg = getComputedStyle(e).backgroundColor;
        if (rgba(bg).a > 0.5) return bg;
      }
      return getComputedStyle(document.documentElement).backgroundColor;
    };
    const found: LowContrast[] = [];
    for (const el of document.body.querySelectorAll('*')) {
      if (el.closest('svg') || el.getClientRects().length === 0) continue;
      const text = [...el.childNodes]
        .filter((n) => n.nodeType === Node.TEXT_NODE)
        .map((n) => n.textContent ?? '')
        .join('')
        .trim();
      if (!text) continue;
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden' || Number(style.opacity) < 0.9) continue;
      const color = style.color;
      const background = backgroundOf(el);
      const [l1, l2] = [luminance(rgba(color)), luminance(rgba(background))].sort((a, b) => b - a) as [number, number];
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      if (ratio < 3) found.push({ text: text.slice(0, 40), color, background, ratio: Math.round(ratio * 100) / 100 });
    }
    return found;
  });
}

describe('the dark theme on every page', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let served: ServedApp | undefined;
  let baseUrl = '';
  let browser: Browser;
  const opened: WatchedPage[] = [];

  beforeAll(async () => {
    database = await openTestDatabase('sqlite');
    await seedScenario(database, NOW);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    batch.add(workerEvent('worker-online', 'w1@host', NOW - 60), workers);
    batch.add(workerEvent('worker-heartbeat', 'w1@host', NOW - 1), workers);
    await store(database, batch, workers);
    const app = testApp(database, { now: NOW, staticFiles: true });
    // The sign-in page shows only with an OAuth provider configured: rendered here as Stalk renders it after a refusal.
    const outer = new Hono()
      .get('/login-preview', (c) =>
        c.html(<LoginPage ui={DEFAULT_UI} provider="google" message="Sign-in refused: access_denied" next="/stats" />),
      )
      .route('/', app);
    served = await serveForChromium(outer);
    ({ baseUrl, browser } = served);
  }, 60_000);

  afterEach(async () => {
    expect(await closeWatchedPages(opened)).toEqual([]);
  });

  afterAll(async () => {
    await served?.close();
    await database?.drop();
  });

  async function open(viewport?: { width: number; height: number }): Promise<WatchedPage> {
    if (!browser) throw new Error('Chromium did not start (see beforeAll)');
    const watched = await openWatchedPage(browser, baseUrl, viewport);
    opened.push(watched);
    await watched.context.addInitScript(() => {
      const w = window as unknown as Record<string, unknown>;
      new MutationObserver((_, observer) => {
        if (!document.body) return;
        w.__firstBackground = getComputedStyle(document.body).backgroundColor;
        observer.disconnect();
      }).observe(document, { childList: true, subtree: true });
    });
    return watched;
  }

  for (const [viewport, width] of [
    [undefined, 1280],
    [PHONE, 390],
  ] as const) {
    it(`chosen in the header, it holds on every page, readable, at ${width} px`, async () => {
      const { page } = await open(viewport);
      // A light system: the dark theme is the reader's choice, not the system's.
      await page.emulateMedia({ colorScheme: 'light' });
      await page.goto('/stats?period=1h');
      await page.selectOption('#theme-select', 'dark');
      for (const [name, path] of PAGES) {
        await page.goto(path);
        const first = await page.evaluate(() => (window as unknown as Record<string, unknown>).__firstBackground);
        expect(first, path).toBe(DARK_BG);
        expect(await lowContrast(page), path).toEqual([]);
        if (width === 390) expect((await fitsViewportWidth(page)).fits, path).toBe(true);
        await screenshot(page, `dark-${name}-${width}`);
      }
    });
  }

  it('light pages stay readable too', async () => {
    const { page } = await open();
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto('/stats?period=1h');
    await page.selectOption('#theme-select', 'light');
    for (const [name, path] of PAGES) {
      await page.goto(path);
      expect(await lowContrast(page), path).toEqual([]);
      if (name === 'stats' || name === 'task-failed') await screenshot(page, `light-${name}-1280`);
    }
  });
});
