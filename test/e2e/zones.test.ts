// Times in one zone and offline workers, in headless Chromium set to zones
// other than the server's (UTC): the received range entered as the table shows
// it finds the task; the UTC/local toggle switches every time on the page and
// persists across navigation; an offline worker shows when it was last seen,
// and its actions are disabled. The app runs in-process over a SQLite
// database filled through the real store (no broker or Celery needed).

import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { received, started, succeeded, workerEvent } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { closeWatchedPages, listedTasks, openWatchedPage, type ServedApp, screenshot, serveForChromium, type WatchedPage } from './browser';

const UI_WAIT = { timeout: 10_000, interval: 100 };
const PHONE = { width: 390, height: 844 };
const SHOTS = '/tmp/shots-zones';
// 2026-03-15 14:00:00 UTC: New York is on summer time (EDT, UTC-4), Kolkata at UTC+5:30.
const BASE = Date.UTC(2026, 2, 15, 14, 0) / 1000;
const NOW = BASE + 600;

/** What stalk.js should show for an ISO instant in a zone: 'YYYY-MM-DD HH:MM:SS.mmm'. */
function stampIn(iso: string, timeZone: string): string {
  const date = new Date(iso);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}.${String(date.getUTCMilliseconds()).padStart(3, '0')}`;
}

/** Every <time> of the page: its instant, its text, and whether it is bare (its header names the zone). */
async function timesOn(page: Page): Promise<{ iso: string; text: string; bare: boolean; natural: boolean }[]> {
  return page.$$eval('time[datetime]', (els) =>
    els.map((el) => ({
      iso: el.getAttribute('datetime') ?? '',
      text: (el.textContent ?? '').trim(),
      bare: el.hasAttribute('data-bare'),
      natural: el.hasAttribute('data-natural'),
    })),
  );
}

/** True when every absolute time of the page is shown in `zone` ('UTC' or an IANA name) labelled `label` unless bare. */
async function allTimesIn(page: Page, zone: string, label: string): Promise<boolean> {
  const times = (await timesOn(page)).filter((t) => !t.natural);
  if (times.length === 0) return false;
  return times.every((t) => t.text === (t.bare ? stampIn(t.iso, zone) : `${stampIn(t.iso, zone)} ${label}`));
}

async function zoneLabels(page: Page): Promise<string[]> {
  return page.$$eval('[data-zone]', (els) => els.map((el) => el.textContent ?? ''));
}

describe('times and offline workers in headless Chromium', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let served: ServedApp | undefined;
  let baseUrl = '';
  let browser: Browser;
  const opened: WatchedPage[] = [];

  beforeAll(async () => {
    database = await openTestDatabase('sqlite');
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    // A task a minute, 14:01 to 14:05 UTC, each received at :20 and done 2 s later.
    for (let i = 1; i <= 5; i++) {
      const story = { uuid: `zone-${i}`, name: 'zone.job' };
      for (const e of [received(story, BASE + i * 60 + 20), started(story, BASE + i * 60 + 21), succeeded(story, BASE + i * 60 + 22)]) {
        batch.add(e, workers);
      }
    }
    batch.add(workerEvent('worker-online', 'gone@host', BASE), workers);
    batch.add(workerEvent('worker-heartbeat', 'gone@host', BASE + 100), workers);
    batch.add(workerEvent('worker-offline', 'gone@host', BASE + 130.25), workers);
    batch.add(workerEvent('worker-online', 'up@host', BASE), workers);
    batch.add(workerEvent('worker-heartbeat', 'up@host', NOW - 1), workers);
    await store(database, batch, workers);
    const app = testApp(database, { now: NOW, staticFiles: true });
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

  async function open(timezoneId: string, viewport?: { width: number; height: number }): Promise<Page> {
    if (!browser) throw new Error('Chromium did not start (see beforeAll)');
    const watched = await openWatchedPage(browser, baseUrl, viewport, 'dismiss', timezoneId);
    opened.push(watched);
    return watched.page;
  }

  // Headers name the zone all year round; a lone time names it at that time.
  for (const [zone, header] of [
    ['America/New_York', 'ET'],
    ['Asia/Kolkata', 'India Time'],
  ] as const) {
    it(`tasks page in ${zone}: the received range entered as the table shows it finds the task`, async () => {
      const page = await open(zone);
      await page.goto('/tasks?columns=name&columns=received');
      await page.locator('tr[data-task="zone-3"]').waitFor();
      // The table shows the reader's zone, named in the header.
      await expect.poll(() => zoneLabels(page), UI_WAIT).toEqual([header, header]);
      const shown = (await page.locator('tr[data-task="zone-3"] td.col-received time').innerText()).trim();
      expect(shown).toBe(stampIn(new Date((BASE + 3 * 60 + 20) * 1000).toISOString(), zone));
      // Enter that minute, from and to the next one, as displayed.
      const minute = shown.slice(0, 16);
      const next = new Date(`${minute.replace(' ', 'T')}:00Z`);
      next.setUTCMinutes(next.getUTCMinutes() + 1);
      await page.fill('input[name="received_start"]', minute.replace(' ', 'T'));
      await page.fill('input[name="received_end"]', next.toISOString().slice(0, 16));
      await expect.poll(async () => (await listedTasks(page)).map((t) => t.id), UI_WAIT).toEqual(['zone-3']);
      // The URL carries UTC; reloaded, the form shows the range in the reader's zone again, and still finds it.
      await expect.poll(() => new URL(page.url()).searchParams.get('received_start'), UI_WAIT).toBe('2026-03-15T14:03Z');
      await page.reload();
      await page.locator('tr[data-task="zone-3"]').waitFor();
      expect(await page.inputValue('input[name="received_start"]')).toBe(minute.replace(' ', 'T'));
      expect((await listedTasks(page)).map((t) => t.id)).toEqual(['zone-3']);
      await screenshot(page, `zones-tasks-${zone.replace('/', '-')}`, [`${SHOTS}/tasks-${zone.replace('/', '-')}-1280.png`]);
      await page.setViewportSize(PHONE);
      await screenshot(page, `zones-tasks-${zone.replace('/', '-')}-390`, [`${SHOTS}/tasks-${zone.replace('/', '-')}-390.png`]);
    }, 30_000);
  }

  it('the UTC/local toggle switches every time on the page, keeps the filter instant, and persists across navigation', async () => {
    const zone = 'America/New_York';
    const page = await open(zone);
    await page.goto('/tasks?columns=name&columns=received&columns=started');
    await page.locator('tr[data-task="zone-1"]').waitFor();
    await expect.poll(() => allTimesIn(page, zone, 'EDT'), UI_WAIT).toBe(true);
    await page.fill('input[name="received_start"]', '2026-03-15T10:02');
    await expect.poll(async () => (await listedTasks(page)).map((t) => t.id), UI_WAIT).toEqual(['zone-5', 'zone-4', 'zone-3', 'zone-2']);
    const toggle = page.locator('#zone-toggle');
    await expect.poll(() => toggle.innerText(), UI_WAIT).toBe('Times: local (ET)');

    await toggle.click();
    expect(await toggle.innerText()).toBe('Times: UTC');
    expect(await allTimesIn(page, 'UTC', 'UTC')).toBe(true);
    expect(await zoneLabels(page)).toEqual(['UTC', 'UTC', 'UTC']);
    // The entered time is the same instant, now in UTC.
    expect(await page.inputValue('input[name="received_start"]')).toBe('2026-03-15T14:02');
    // A live refresh keeps UTC.
    await page.locator('#tasks-panel').evaluate((el) => el.setAttribute('data-before-swap', '1'));
    await page.locator('th.col-received a').click();
    await page.waitForFunction(() => !document.querySelector('#tasks-panel')?.hasAttribute('data-before-swap'));
    expect(await allTimesIn(page, 'UTC', 'UTC')).toBe(true);
    await screenshot(page, 'zones-tasks-utc', [`${SHOTS}/tasks-utc-1280.png`]);

    // Other pages, opened afresh: UTC still.
    await page.goto('/task/zone-2');
    await page.locator('time[datetime]').first().waitFor();
    await expect.poll(() => allTimesIn(page, 'UTC', 'UTC'), UI_WAIT).toBe(true);
    await page.goto('/worker/gone@host');
    await expect.poll(() => allTimesIn(page, 'UTC', 'UTC'), UI_WAIT).toBe(true);
    expect(await page.locator('#worker-last-seen').innerText()).toBe('2026-03-15 14:02:10.250 UTC');

    // And back to the reader's zone, which persists too.
    await page.locator('#zone-toggle').click();
    expect(await allTimesIn(page, zone, 'EDT')).toBe(true);
    await page.goto('/task/zone-2');
    await expect.poll(() => allTimesIn(page, zone, 'EDT'), UI_WAIT).toBe(true);
    expect(await page.locator('#zone-toggle').innerText()).toBe('Times: local (ET)');
    await screenshot(page, 'zones-task-1280', [`${SHOTS}/task-1280.png`]);
    await page.setViewportSize(PHONE);
    await screenshot(page, 'zones-task-390', [`${SHOTS}/task-390.png`]);
  }, 40_000);

  it('an offline worker shows when it was last seen, and its actions are disabled, saying why', async () => {
    const zone = 'Asia/Kolkata';
    for (const viewport of [undefined, PHONE]) {
      const page = await open(zone, viewport);
      await page.goto('/');
      const lastSeen = page.locator('tr[data-worker="gone@host"] time');
      await lastSeen.waitFor({ state: 'attached' });
      expect(await lastSeen.getAttribute('datetime')).toBe('2026-03-15T14:02:10.250Z');
      await expect.poll(async () => (await lastSeen.innerText()).trim(), UI_WAIT).toMatch(/ ago$/);
      expect(await page.locator('tr[data-worker="up@host"] .badge').innerText()).toBe('Online');
      await screenshot(page, `zones-dashboard-${viewport ? 390 : 1280}`, [`${SHOTS}/dashboard-${viewport ? 390 : 1280}.png`]);

      await page.goto('/worker/gone@host');
      await expect.poll(() => page.locator('#worker-last-seen').innerText(), UI_WAIT).toBe('2026-03-15 19:32:10.250 GMT+5:30');
      const buttons = page.locator('#worker-actions button');
      expect(await buttons.count()).toBe(5);
      for (let i = 0; i < 5; i++) {
        expect(await buttons.nth(i).isDisabled()).toBe(true);
        expect(await buttons.nth(i).getAttribute('title')).toBe('gone@host is offline and cannot answer control commands');
      }
      expect(await page.locator('#worker-actions input').first().isDisabled()).toBe(true);
      await screenshot(page, `zones-worker-offline-${viewport ? 390 : 1280}`, [`${SHOTS}/worker-offline-${viewport ? 390 : 1280}.png`]);
    }
    // An online worker's actions are on.
    const page = await open(zone);
    await page.goto('/worker/up@host');
    await page.locator('#worker-actions button').first().waitFor();
    expect(await page.locator('#worker-actions button:disabled').count()).toBe(0);
  }, 40_000);
});
