// The retry buttons in headless Chromium: the task page's Retry (after its
// confirmation) sends the task again and links the new task; the failure
// list's "Retry N failed tasks" states the count in its confirmation and
// retries them. The app runs in-process over SQLite with the collector's real
// executor; only the broker is a recording publisher (the Celery side is
// test/integration/retry.test.ts).

import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/log';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { ControlExecutor } from '../../worker-collector/control/executor';
import { InProcessControl } from '../../worker-collector/control/in-process';
import type { OutgoingTask } from '../../worker-collector/control/types';
import { failed, received, succeeded } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { closeWatchedPages, openWatchedPage, type ServedApp, screenshot, serveForChromium, type WatchedPage } from './browser';

const UI_WAIT = { timeout: 10_000, interval: 100 };
const T0 = 1_900_000_000;
const VIEWPORTS = [
  { width: 1280, height: 900 },
  { width: 390, height: 844 },
];

describe('retry buttons in headless Chromium', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let served: ServedApp | undefined;
  let browser: Browser;
  let baseUrl = '';
  const opened: WatchedPage[] = [];
  const published: (OutgoingTask & { id: string })[] = [];

  beforeAll(async () => {
    database = await openTestDatabase('sqlite');
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    for (let i = 0; i < 3; i++) {
      const story = { uuid: `charge-${i}`, name: 'billing.charge', args: `(${i}, 'card é')`, kwargs: "{'retry': True}" };
      batch.add(received(story, T0 + i), workers);
      batch.add(failed(story, T0 + i + 1, "ValueError('declined')"), workers);
    }
    const fine = { uuid: 'fine-1', name: 'billing.charge' };
    batch.add(received(fine, T0), workers);
    batch.add(succeeded(fine, T0 + 1), workers);
    await store(database, batch, workers);
    let n = 0;
    const broker = {
      mailbox: { call: async () => ({}), close: async () => undefined },
      publisher: {
        send: async (task: OutgoingTask) => {
          n += 1;
          const id = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
          published.push({ ...task, id });
          return id;
        },
        close: async () => undefined,
      },
      queues: { lengths: async () => [], close: async () => undefined },
      close: async () => undefined,
    };
    const executor = new ControlExecutor(broker, database.db, database.dialect, createLogger('test', 'error'), { inspectTimeoutMs: 500 });
    const app = testApp(database, { now: T0 + 10, staticFiles: true, ui: { refreshSeconds: 0 }, control: new InProcessControl(executor) });
    served = await serveForChromium(app);
    ({ baseUrl, browser } = served);
    mkdirSync('test-artifacts/screenshots', { recursive: true });
  }, 60_000);

  afterEach(async () => {
    expect(await closeWatchedPages(opened)).toEqual([]);
  });

  afterAll(async () => {
    await served?.close();
    await database?.drop();
  });

  const open = async (viewport: { width: number; height: number }) => {
    const watched = await openWatchedPage(browser, baseUrl, viewport, 'accept');
    opened.push(watched);
    return { page: watched.page, dialogs: watched.dialogs };
  };

  it('Retry on a failed task asks first, sends it with its arguments, and both pages link to each other', async () => {
    const { page, dialogs } = await open(VIEWPORTS[0]!);
    await page.goto('/task/charge-0');
    await screenshot(page, 'retry-task-1280');
    await page.locator('#task-retry button', { hasText: 'Retry' }).click();
    await expect.poll(() => page.locator('#task-results').textContent(), UI_WAIT).toContain('Retried as');
    expect(dialogs).toEqual(['confirm: Send this task again, as a new task with the same arguments?']);
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({ name: 'billing.charge', args: [0, 'card é'], kwargs: { retry: true } });
    await screenshot(page, 'retry-task-done-1280');
    await page.locator('#task-results a').click();
    await page.waitForURL((url) => url.pathname === `/task/${published[0]!.id}`);
    expect(await page.locator('main').textContent()).toContain('Retry of');
    await page.goto('/task/charge-0');
    expect(await page.locator('#task-retries a').getAttribute('href')).toBe(`/task/${published[0]!.id}`);
    // A success offers no Retry.
    await page.goto('/task/fine-1');
    expect(await page.locator('#task-retry').count()).toBe(0);
    const { page: phone } = await open(VIEWPORTS[1]!);
    await phone.goto('/task/charge-0');
    await screenshot(phone, 'retry-task-390');
  });

  it('the failure list offers "Retry 3 failed tasks", states the count in its confirmation and retries them', async () => {
    const { page, dialogs } = await open(VIEWPORTS[0]!);
    await page.goto('/tasks?state=SUCCESS');
    expect(await page.locator('#bulk-retry').count()).toBe(0);
    await page.goto('/tasks?state=FAILURE&name=billing.charge');
    const button = page.locator('#bulk-retry button');
    expect(await button.textContent()).toBe('Retry 3 failed tasks');
    await screenshot(page, 'retry-bulk-1280');
    const before = published.length;
    await button.click();
    await expect.poll(() => page.locator('#bulk-retry-results').textContent(), UI_WAIT).toContain('Retried 3 tasks');
    expect(dialogs).toEqual(['confirm: Send 3 failed tasks again, each as a new task with the same arguments?']);
    expect(
      published
        .slice(before)
        .map((t) => t.args[0])
        .sort(),
    ).toEqual([0, 1, 2]);
    await screenshot(page, 'retry-bulk-done-1280');
    const { page: phone } = await open(VIEWPORTS[1]!);
    await phone.goto('/tasks?state=FAILURE&name=billing.charge');
    await screenshot(phone, 'retry-bulk-390');
  });
});
