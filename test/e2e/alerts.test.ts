// The alerts page in Chromium at desktop and phone widths: what fires, the
// history and the rules, fitting the screen, and updating in place when an
// alert resolves (htmx polling, no reload).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertsConfig } from '../../src/shared/alerts';
import { createLogger } from '../../src/shared/log';
import type { NewTaskRow } from '../../src/shared/schema';
import { AlertEvaluator } from '../../worker-collector/alerts/evaluator';
import { testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import {
  closeWatchedPages,
  fitsViewportWidth,
  markDocument,
  openWatchedPage,
  sameDocument,
  type ServedApp,
  screenshot,
  serveForChromium,
  type WatchedPage,
} from './browser';

type Db = Awaited<ReturnType<typeof openTestDatabase>>;

describe('the alerts page in Chromium', () => {
  let database: Db;
  let served: ServedApp;
  let evaluator: AlertEvaluator;
  const opened: WatchedPage[] = [];
  const now = Date.now() / 1000;

  beforeAll(async () => {
    database = await openTestDatabase('sqlite');
    const task = (i: number, fields: Partial<NewTaskRow> & Pick<NewTaskRow, 'name' | 'state' | 'timestamp'>): NewTaskRow => ({
      uuid: `e2e-${i}`,
      state_key: 'x',
      ...fields,
    });
    await database.db
      .insertInto('tasks')
      .values([
        ...[1, 2, 3, 4].map((i) => task(i, { name: 'billing.refund', state: 'FAILURE', timestamp: now - 10 * i, failed: now - 10 * i })),
        task(5, {
          name: 'reports.monthly_statement_for_a_very_long_customer_name',
          state: 'STARTED',
          timestamp: now - 5000,
          started: now - 5000,
        }),
      ])
      .execute();
    await database.db
      .insertInto('workers')
      .values({
        hostname: 'celery@web-frontend-worker-2.example.internal',
        status: 'offline',
        freq: 2,
        heartbeats: '[]',
        offline_at: now - 300,
        first_seen: now - 9000,
      })
      .execute();
    const config: AlertsConfig = {
      webhooks: { ops: 'http://127.0.0.1:9/unreachable' },
      rules: [
        { name: 'refunds failing', kind: 'task-failures', task: 'billing.refund', window: 300, threshold: 3, notify: ['ops'] },
        { name: 'web workers down', kind: 'worker-offline', worker: 'celery@web-*', for: 60, notify: ['ops'] },
        { name: 'stuck reports', kind: 'task-stuck', task: 'reports.*', running_longer_than: 3600, notify: [] },
        { name: 'backlog', kind: 'queue-length', queue: 'default', threshold: 1000, for: 120, notify: ['ops'] },
        { name: 'collector quiet', kind: 'collector-silent', for: 600, notify: ['ops'] },
      ],
    };
    evaluator = new AlertEvaluator({
      config,
      intervalMs: 1000,
      publicUrl: '',
      db: database.db,
      log: createLogger('alerts', 'error'),
      isActive: () => true,
      lastEventAt: () => now,
      startedAt: now,
      notifier: { tries: 1, timeoutMs: 200 },
    });
    await evaluator.evaluate();
    served = await serveForChromium(testApp(database, { staticFiles: true, ui: { refreshSeconds: 1 } }));
  });

  afterAll(async () => {
    expect(await closeWatchedPages(opened)).toEqual([]);
    await evaluator?.stop();
    await served?.close();
    await database?.drop();
  });

  it('shows what fires, the history and the rules, at desktop and phone widths', async () => {
    for (const [width, height] of [
      [1280, 900],
      [390, 844],
    ] as const) {
      const watched = await openWatchedPage(served.browser, served.baseUrl, { width, height });
      opened.push(watched);
      const { page } = watched;
      await page.goto('/alerts');
      expect(await page.locator('#alerts-firing tr[data-status="firing"]').count()).toBe(3);
      expect(await page.locator('#alerts-rules tr[data-rule]').count()).toBe(5);
      expect(await page.locator('nav a[aria-current="page"]').textContent()).toBe('Alerts');
      expect((await fitsViewportWidth(page)).fits).toBe(true);
      await screenshot(page, `alerts-${width}`);
    }
  });

  it('updates in place when an alert resolves', async () => {
    const watched = await openWatchedPage(served.browser, served.baseUrl);
    opened.push(watched);
    const { page } = watched;
    await page.goto('/alerts');
    await markDocument(page);
    await database.db.deleteFrom('tasks').where('name', '=', 'billing.refund').execute();
    await evaluator.evaluate();
    await page.locator('#alerts-firing tr[data-alert="refunds failing"]').waitFor({ state: 'detached', timeout: 10_000 });
    await page.locator('#alerts-history tr[data-status="resolved"]').first().waitFor({ timeout: 10_000 });
    expect(await sameDocument(page)).toBe(true);
    await screenshot(page, 'alerts-resolved');
  });
});
