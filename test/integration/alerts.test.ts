// Alerts end to end with real parts: a Celery worker (Debian's python3-celery)
// on Redis fails a task three times; the real local entry (src/node.ts), given
// an --alerts file, notifies a webhook receiver in this test once when the
// task-failures rule fires and once when its window has passed; a webhook
// that answers 500 first is retried, one that never answers delays nothing
// (events keep being stored); the page, the API and /metrics show the alert;
// the worker killed with SIGKILL fires worker-offline.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CeleryWorker, REDIS_BROKER, runPython, sendAdd, startWorker, uniqueWorkerName } from '../support/celery';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases';
import { printLogsOnFailure, spawnManaged, stopAllProcesses } from '../support/processes';
import { type ApiTask, REPO_ROOT, type Stalk, startStalk, waitFor } from '../support/stalk';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook';

const WINDOW_SECONDS = 10;

describe('a bad --alerts file', () => {
  afterAll(() => stopAllProcesses());

  it.each([
    ['npm start', 'src/node.ts', 'stalk'],
    ['npm run collector', 'worker-collector/main.ts', 'stalk-collector'],
  ])(
    'stops %s with one line naming the rule and the field, exit 2',
    async (_, entry, program) => {
      const dir = mkdtempSync(join(tmpdir(), 'stalk-alerts-bad-'));
      const file = join(dir, 'alerts.json');
      writeFileSync(
        file,
        JSON.stringify({
          rules: [
            { name: 'ok', kind: 'tasks-lost', window: '1h' },
            { name: 'refunds failing', kind: 'task-failures', window: '5 minutes', threshold: 3 },
          ],
        }),
      );
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const key of Object.keys(env)) if (key.startsWith('STALK_') || key.startsWith('FLOWER_')) delete env[key];
      env.STALK_ALERTS = file;
      const proc = spawnManaged(program, process.execPath, ['--import', 'tsx', entry, '--db', join(dir, 'stalk.db'), '--port', '0'], {
        cwd: REPO_ROOT,
        env,
      });
      const exit = await proc.exited;
      expect(exit.code).toBe(2);
      expect(proc.output().trim()).toBe(
        `${program}: --alerts ${file}: rule 2 "refunds failing": window: "5 minutes" is not a duration (e.g. 30s, 5m, 1h)`,
      );
    },
    30_000,
  );
});

describe.each(DIALECTS)('alerts with a real worker on Redis, %s database', (dialect) => {
  let database: TestDatabase | undefined;
  let hooks: WebhookReceiver;
  let stalk: Stalk | undefined;
  let worker: CeleryWorker | undefined;
  const queue = `alerts-${process.pid}-${dialect}`;
  const target = { broker: REDIS_BROKER, queue };
  const hostname = uniqueWorkerName('alerts');

  printLogsOnFailure();

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    hooks = await startWebhookReceiver();
    hooks.answer = (path, seen) => (path === '/hang' ? 'hang' : path === '/flaky' && seen === 0 ? 500 : 200);
    const dir = mkdtempSync(join(tmpdir(), 'stalk-alerts-'));
    const file = join(dir, 'alerts.json');
    writeFileSync(
      file,
      JSON.stringify({
        webhooks: { ops: hooks.url('/ops'), flaky: hooks.url('/flaky'), slow: hooks.url('/hang') },
        rules: [
          {
            name: 'fail burst',
            kind: 'task-failures',
            task: 'stalk.fail',
            window: `${WINDOW_SECONDS}s`,
            threshold: 3,
            notify: ['ops', 'flaky', 'slow'],
          },
          { name: 'worker gone', kind: 'worker-offline', worker: hostname, for: '1s', notify: ['ops'] },
        ],
      }),
    );
    stalk = await startStalk({
      broker: REDIS_BROKER,
      db: database.url,
      extraArgs: ['--alerts', file, '--alerts-interval', '1s', '--public-url', 'http://stalk.test/p', '--queue-poll-interval', '0'],
    });
    worker = await startWorker({ ...target, hostname });
  });

  afterAll(async () => {
    await stopAllProcesses();
    await hooks?.close();
    await database?.drop();
  });

  const ops = () => hooks.received.filter((h) => h.path === '/ops');

  it('fires once on the third failure, retries a 500, and resolves once when the window has passed', async () => {
    if (!stalk || !worker) throw new Error('setup failed');
    await runPython(
      'send 3 failures',
      ['-c', "from stalk_tasks import fail\nfor i in range(3): print(fail.apply_async(('boom %d' % i,)).id)"],
      target,
    );
    const firing = await waitFor(
      () => ops().find((h) => h.body.alert === 'fail burst' && h.body.status === 'firing'),
      30_000,
      'the firing POST',
    );
    expect(firing.body).toMatchObject({
      alert: 'fail burst',
      status: 'firing',
      kind: 'task-failures',
      labels: { task: 'stalk.fail' },
      value: 3,
      threshold: 3,
      url: 'http://stalk.test/p/tasks?state=FAILURE&name=stalk.fail',
      text: `[FIRING] fail burst (task=stalk.fail): 3 failed; rule: at least 3 failures of stalk.fail in ${WINDOW_SECONDS}s`,
    });
    expect(Date.parse(String(firing.body.since))).toBeGreaterThan(Date.now() - 60_000);

    // The flaky webhook answered 500, then took the retry.
    await waitFor(() => hooks.received.filter((h) => h.path === '/flaky').length === 2, 10_000, 'the retry of the flaky webhook');

    // The slow webhook hangs meanwhile: events are still taken in and stored at once.
    expect(hooks.received.some((h) => h.path === '/hang')).toBe(true);
    const id = await sendAdd(target, 2, 3);
    await waitFor(
      async () => (await stalk!.fetchJson<ApiTask>(`/api/task/info/${id}`).catch(() => null))?.state === 'SUCCESS',
      10_000,
      'the add task stored',
    );

    const api = await stalk.fetchJson<{
      alerts: { alert: string; status: string; value: number; url: string }[];
      rules: { name: string }[];
    }>('/api/alerts');
    expect(api.rules.map((r) => r.name)).toEqual(['fail burst', 'worker gone']);
    expect(api.alerts).toContainEqual(
      expect.objectContaining({ alert: 'fail burst', status: 'firing', value: 3, url: '/tasks?state=FAILURE&name=stalk.fail' }),
    );
    const page = await stalk.fetchText('/alerts');
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-alert="fail burst" data-status="firing"');
    const metrics = await stalk.fetchText('/metrics');
    expect(metrics.text).toContain('stalk_alert_firing{alert="fail burst"} 1');
    expect(metrics.text).toContain('stalk_alert_firing{alert="worker gone"} 0');

    const resolved = await waitFor(
      () => ops().find((h) => h.body.alert === 'fail burst' && h.body.status === 'resolved'),
      WINDOW_SECONDS * 1000 + 20_000,
      'the resolved POST',
    );
    expect(resolved.body).toMatchObject({ status: 'resolved', value: 0, since: firing.body.since });
    // A few more evaluations: still one of each.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(
      ops()
        .filter((h) => h.body.alert === 'fail burst')
        .map((h) => h.body.status),
    ).toEqual(['firing', 'resolved']);
    expect((await stalk.fetchText('/metrics')).text).toContain('stalk_alert_firing{alert="fail burst"} 0');
  }, 90_000);

  it('fires worker-offline for a worker killed with SIGKILL', async () => {
    if (!stalk || !worker) throw new Error('setup failed');
    expect(ops().some((h) => h.body.alert === 'worker gone')).toBe(false);
    process.kill(-worker.process.child.pid!, 'SIGKILL');
    const firing = await waitFor(() => ops().find((h) => h.body.alert === 'worker gone'), 30_000, 'the worker-offline POST');
    expect(firing.body).toMatchObject({
      status: 'firing',
      kind: 'worker-offline',
      labels: { worker: hostname },
      threshold: 1,
      url: `http://stalk.test/p/worker/${encodeURIComponent(hostname)}`,
    });
    expect(Number(firing.body.value)).toBeGreaterThanOrEqual(1);
    const page = await stalk.fetchText('/alerts');
    expect(page.text).toContain('data-alert="worker gone" data-status="firing"');
  }, 60_000);
});
