// Alert evaluation over a real database (SQLite and MariaDB): each kind
// measured from stored rows, the state and history written, webhooks sent
// once per edge (retried on 500, never awaited when they hang), a restart
// that carries on without notifying again, and what /alerts, /api/alerts and
// /metrics show.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AlertsConfig } from '../../src/shared/alerts';
import { createLogger } from '../../src/shared/log';
import type { NewTaskRow } from '../../src/shared/schema';
import { AlertEvaluator, HISTORY_MAX_ROWS, pruneHistory } from '../../worker-collector/alerts/evaluator';
import { LeaseKeeper } from '../../worker-collector/lease';
import { testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook';

const NOW = 1_900_000_000;

type Db = Awaited<ReturnType<typeof openTestDatabase>>;

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let serial = 0;
function task(fields: Partial<NewTaskRow> & Pick<NewTaskRow, 'name' | 'state' | 'timestamp'>): NewTaskRow {
  return { uuid: `t-${++serial}`, state_key: 'x', ...fields };
}

describe.each(DIALECTS)('alert evaluation on %s', (dialect) => {
  let database: Db;
  let hooks: WebhookReceiver;
  let now = NOW;
  const logs: string[] = [];
  const log = createLogger('alerts', 'debug', (_level, line) => logs.push(line));

  beforeAll(async () => {
    hooks = await startWebhookReceiver();
  });
  afterAll(async () => {
    await hooks.close();
  });
  beforeEach(async () => {
    database = await openTestDatabase(dialect);
    hooks.received.length = 0;
    hooks.answer = () => 200;
    now = NOW;
    logs.length = 0;
  });
  afterEach(async () => {
    await database.drop();
  });

  function evaluator(config: AlertsConfig, extra: { lastEventAt?: number | null; active?: () => boolean } = {}) {
    return new AlertEvaluator({
      config,
      intervalMs: 1000,
      publicUrl: 'https://stalk.example/flower',
      db: database.db,
      log,
      isActive: extra.active ?? (() => true),
      lastEventAt: () => extra.lastEventAt ?? null,
      startedAt: NOW - 5000,
      now: () => now,
      notifier: { backoffMs: 50, timeoutMs: 500, tries: 3 },
    });
  }

  async function settled(e: AlertEvaluator) {
    await e.notifier.settle(5_000);
    // The delivery outcome is written after the deliveries.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  it('task-failures: fires once at the threshold with the payload, stays quiet while firing, resolves once when the window passes', async () => {
    const config: AlertsConfig = {
      webhooks: { ops: hooks.url('/ops') },
      rules: [{ name: 'refunds failing', kind: 'task-failures', task: 'billing.refund', window: 300, threshold: 3, notify: ['ops'] }],
    };
    const e = evaluator(config);
    const failedAt = (t: number) => task({ name: 'billing.refund', state: 'FAILURE', timestamp: t, failed: t });
    await database.db
      .insertInto('tasks')
      .values([
        failedAt(NOW - 100),
        failedAt(NOW - 50),
        task({ name: 'billing.other', state: 'FAILURE', timestamp: NOW - 10, failed: NOW - 10 }),
        failedAt(NOW - 400),
      ])
      .execute();
    await e.evaluate();
    expect(hooks.received).toEqual([]);
    await database.db
      .insertInto('tasks')
      .values(failedAt(NOW - 5))
      .execute();
    await e.evaluate();
    now += 15;
    await e.evaluate();
    await settled(e);
    expect(hooks.received).toHaveLength(1);
    const firing = hooks.received[0]!;
    expect(firing.path).toBe('/ops');
    expect(firing.body).toEqual({
      alert: 'refunds failing',
      status: 'firing',
      kind: 'task-failures',
      labels: { task: 'billing.refund' },
      value: 3,
      threshold: 3,
      since: new Date(NOW * 1000).toISOString(),
      url: 'https://stalk.example/flower/tasks?state=FAILURE&name=billing.refund',
      text: '[FIRING] refunds failing (task=billing.refund): 3 failed; rule: at least 3 failures of billing.refund in 5m',
    });

    const app = testApp(database, { now });
    const api = (await (await app.request('/api/alerts')).json()) as { alerts: { alert: string; status: string; value: number }[] };
    expect(api.alerts).toEqual([expect.objectContaining({ alert: 'refunds failing', status: 'firing', value: 3, threshold: 3 })]);
    const page = await (await app.request('/alerts')).text();
    expect(page).toContain('data-alert="refunds failing" data-status="firing"');
    expect(page).toContain('href="/tasks?state=FAILURE&amp;name=billing.refund"');
    expect(page).toContain('ops: delivered');
    const metrics = await (await app.request('/metrics')).text();
    expect(metrics).toContain('stalk_alert_firing{alert="refunds failing"} 1');

    now = NOW + 400;
    await e.evaluate();
    now += 15;
    await e.evaluate();
    await settled(e);
    expect(hooks.received.map((h) => h.body.status)).toEqual(['firing', 'resolved']);
    expect(hooks.received[1]!.body).toMatchObject({ status: 'resolved', value: 0, since: new Date(NOW * 1000).toISOString() });
    expect(hooks.received[1]!.body.text).toMatch(/^\[RESOLVED\] refunds failing/);
    const after = await (await testApp(database, { now }).request('/metrics')).text();
    expect(after).toContain('stalk_alert_firing{alert="refunds failing"} 0');
    const history = await database.db.selectFrom('alert_history').select(['status', 'delivery']).orderBy('id').execute();
    expect(history).toEqual([
      { status: 'firing', delivery: 'ops: delivered' },
      { status: 'resolved', delivery: 'ops: delivered' },
    ]);
  });

  it('a restarted evaluator (or the next lease holder) reads the firing state back and does not notify again; a standby evaluates nothing', async () => {
    const config: AlertsConfig = {
      webhooks: { ops: hooks.url('/ops') },
      rules: [{ name: 'lost', kind: 'tasks-lost', window: 600, threshold: 1, notify: ['ops'] }],
    };
    await database.db
      .insertInto('tasks')
      .values(task({ name: 'x', state: 'LOST', timestamp: NOW - 60 }))
      .execute();
    const standby = evaluator(config, { active: () => false });
    await standby.evaluate();
    expect(await database.db.selectFrom('alert_state').selectAll().execute()).toEqual([]);
    const first = evaluator(config);
    await first.evaluate();
    await settled(first);
    const second = evaluator(config);
    now += 30;
    await second.evaluate();
    await settled(second);
    expect(hooks.received.map((h) => [h.body.alert, h.body.status, h.body.value])).toEqual([['lost', 'firing', 1]]);
    const state = await database.db.selectFrom('alert_state').select(['alert', 'status', 'since']).execute();
    expect(state.map((s) => ({ ...s, since: Number(s.since) }))).toEqual([{ alert: 'lost', status: 'firing', since: NOW }]);
  });

  it('measures every kind from stored rows, one instance per worker, queue and stuck task name', async () => {
    await database.db
      .insertInto('workers')
      .values([
        { hostname: 'celery@web-1', status: 'online', freq: 2, heartbeats: '[]', last_heartbeat: NOW - 1, first_seen: NOW - 900 },
        // Heartbeat expired 100 s ago (2 × freq after the last one).
        { hostname: 'celery@web-2', status: 'online', freq: 2, heartbeats: '[]', last_heartbeat: NOW - 104, first_seen: NOW - 900 },
        {
          hostname: 'celery@web-3',
          status: 'offline',
          freq: 2,
          heartbeats: '[]',
          last_heartbeat: null,
          offline_at: NOW - 20,
          first_seen: NOW - 900,
        },
        {
          hostname: 'other@db-1',
          status: 'offline',
          freq: 2,
          heartbeats: '[]',
          last_heartbeat: null,
          offline_at: NOW - 999,
          first_seen: NOW - 9000,
        },
      ])
      .execute();
    await database.db
      .insertInto('queues')
      .values([
        { name: 'default', messages: 500, measured_at: NOW },
        { name: 'low', messages: 3, measured_at: NOW },
      ])
      .execute();
    await database.db
      .insertInto('tasks')
      .values([
        task({ name: 'report.build', state: 'STARTED', timestamp: NOW - 7200, started: NOW - 7200 }),
        task({ name: 'report.build', state: 'STARTED', timestamp: NOW - 4000, started: NOW - 4000 }),
        task({ name: 'report.mail', state: 'STARTED', timestamp: NOW - 60, started: NOW - 60 }),
        task({ name: 'billing.pay', state: 'SUCCESS', timestamp: NOW - 30, succeeded: NOW - 30 }),
        task({ name: 'billing.pay', state: 'FAILURE', timestamp: NOW - 20, failed: NOW - 20 }),
        task({ name: 'billing.pay', state: 'FAILURE', timestamp: NOW - 10, failed: NOW - 10 }),
        task({ name: 'billing.refund', state: 'SUCCESS', timestamp: NOW - 10, succeeded: NOW - 10 }),
      ])
      .execute();
    const config: AlertsConfig = {
      webhooks: { ops: hooks.url('/ops') },
      rules: [
        { name: 'web down', kind: 'worker-offline', worker: 'celery@web-*', for: 30, notify: ['ops'] },
        { name: 'backlog', kind: 'queue-length', queue: '*', threshold: 100, for: 20, notify: ['ops'] },
        { name: 'stuck reports', kind: 'task-stuck', task: 'report.*', running_longer_than: 3600, notify: ['ops'] },
        { name: 'billing rate', kind: 'task-failure-rate', task: 'billing.*', window: 300, ratio: 0.5, min_count: 4, notify: ['ops'] },
        { name: 'billing rate strict', kind: 'task-failure-rate', task: 'billing.*', window: 300, ratio: 0.5, min_count: 5, notify: [] },
        { name: 'silent', kind: 'collector-silent', for: 600, notify: ['ops'] },
      ],
    };
    const e = evaluator(config, { lastEventAt: NOW - 700 });
    await e.evaluate();
    await settled(e);
    const fired = hooks.received.map(
      (h) => `${h.body.alert} ${JSON.stringify(h.body.labels)} ${Math.round(Number(h.body.value) * 100) / 100}`,
    );
    expect(fired.sort()).toEqual(
      [
        'web down {"worker":"celery@web-2"} 100',
        'stuck reports {"task":"report.build"} 7200',
        'billing rate {"task":"billing.*"} 0.5',
        'silent {} 700',
      ].sort(),
    );
    const pending = await database.db
      .selectFrom('alert_state')
      .select(['alert', 'labels', 'status'])
      .where('status', '=', 'pending')
      .execute();
    expect(pending).toEqual([{ alert: 'backlog', labels: '{"queue":"default"}', status: 'pending' }]);
    hooks.received.length = 0;
    now += 20;
    await e.evaluate();
    await settled(e);
    // web-3 said goodbye 40 s ago now (for: 30 s); the backlog held for its 20 s.
    expect(hooks.received.map((h) => `${h.body.alert} ${JSON.stringify(h.body.labels)}`).sort()).toEqual([
      'backlog {"queue":"default"}',
      'web down {"worker":"celery@web-3"}',
    ]);
    const metrics = await (await testApp(database, { now }).request('/metrics')).text();
    expect(metrics).toContain('stalk_alert_firing{alert="web down"} 2');
    expect(metrics).toContain('stalk_alert_firing{alert="billing rate strict"} 0');
    const page = await (await testApp(database, { now }).request('/alerts')).text();
    expect(page).toContain('href="/worker/celery%40web-3"');
    expect(page).toContain('data-rule="billing rate strict"');
  });

  it('retries a webhook that answers 500, and records one that never answers without waiting for it', async () => {
    hooks.answer = (path, seen) => (path === '/flaky' ? (seen === 0 ? 500 : 200) : path === '/hang' ? 'hang' : 200);
    const config: AlertsConfig = {
      webhooks: { flaky: hooks.url('/flaky'), hang: hooks.url('/hang') },
      rules: [{ name: 'quiet', kind: 'collector-silent', for: 60, notify: ['flaky', 'hang'] }],
    };
    const e = evaluator(config, { lastEventAt: NOW - 120 });
    await e.evaluate();
    // Evaluated and written while the slow webhook is still being tried: nothing waited for it.
    const [pendingRow] = await database.db.selectFrom('alert_history').select('delivery').execute();
    expect(pendingRow).toEqual({ delivery: null });
    expect(e.notifier.failed).toBe(0);
    await settled(e);
    expect(hooks.received.filter((h) => h.path === '/flaky').length).toBe(2);
    // 3 tries of 500 ms each, with backoff between.
    expect(hooks.received.filter((h) => h.path === '/hang').length).toBe(3);
    const [row] = await database.db.selectFrom('alert_history').select('delivery').execute();
    expect(row?.delivery).toMatch(/^flaky: delivered \(try 2\); hang: failed after 3 tries \(.*\)$/);
    expect(e.notifier.failed).toBe(1);
    expect(logs.some((l) => l.includes('ERROR') && l.includes('webhook hang failed after 3 tries'))).toBe(true);
  });

  it('two collectors on one database: only the lease holder notifies, and the one that takes over does not notify again', async () => {
    const config: AlertsConfig = {
      webhooks: { ops: hooks.url('/ops') },
      rules: [{ name: 'lost', kind: 'tasks-lost', window: 600, threshold: 1, notify: ['ops'] }],
    };
    await database.db
      .insertInto('tasks')
      .values(task({ name: 'x', state: 'LOST', timestamp: NOW - 60 }))
      .execute();
    const keeper = (id: string) =>
      new LeaseKeeper({
        name: 'collector',
        ttlSeconds: 5,
        db: database.db,
        collectorId: id,
        log: createLogger('lease', 'error'),
        pollMs: 100,
      });
    const a = keeper('a');
    const b = keeper('b');
    await a.start();
    await b.start();
    try {
      expect([a.active, b.active]).toEqual([true, false]);
      const onA = evaluator(config, { active: () => a.active });
      const onB = evaluator(config, { active: () => b.active });
      await Promise.all([onA.evaluate(), onB.evaluate()]);
      now += 15;
      await Promise.all([onA.evaluate(), onB.evaluate()]);
      await settled(onA);
      expect(hooks.received.map((h) => h.body.status)).toEqual(['firing']);
      await a.stop();
      await waitUntil(() => b.active);
      now += 15;
      await Promise.all([onA.evaluate(), onB.evaluate()]);
      await settled(onB);
      expect(hooks.received.map((h) => h.body.status)).toEqual(['firing']);
      await database.db.deleteFrom('tasks').where('state', '=', 'LOST').execute();
      now += 15;
      await Promise.all([onA.evaluate(), onB.evaluate()]);
      await settled(onB);
      expect(hooks.received.map((h) => h.body.status)).toEqual(['firing', 'resolved']);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('replaces the stored rules when loaded, dropping instances of rules that left the file; prunes history to its bound', async () => {
    await database.db
      .insertInto('alert_state')
      .values({ alert: 'gone', labels_key: '{}', labels: '{}', status: 'firing', since: NOW, value: 1, threshold: 1, updated_at: NOW })
      .execute();
    const e = evaluator({ webhooks: {}, rules: [{ name: 'kept', kind: 'tasks-lost', window: 60, threshold: 1, notify: [] }] });
    await e.evaluate();
    expect(await database.db.selectFrom('alert_state').selectAll().execute()).toEqual([]);
    expect((await database.db.selectFrom('alert_rules').select('name').execute()).map((r) => r.name)).toEqual(['kept']);
    const rows = Array.from({ length: HISTORY_MAX_ROWS + 5 }, (_, i) => ({
      at: i < 3 ? NOW - 31 * 86400 : NOW,
      alert: 'kept',
      kind: 'tasks-lost',
      labels: '{}',
      status: 'firing' as const,
      since: NOW,
      value: 1,
      threshold: 1,
      delivery: null,
    }));
    for (let i = 0; i < rows.length; i += 1000)
      await database.db
        .insertInto('alert_history')
        .values(rows.slice(i, i + 1000))
        .execute();
    await pruneHistory(database.db, NOW);
    const left = await database.db
      .selectFrom('alert_history')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(left.n)).toBe(HISTORY_MAX_ROWS);
    const oldest = await database.db
      .selectFrom('alert_history')
      .select((eb) => eb.fn.min<number>('at').as('at'))
      .executeTakeFirstOrThrow();
    expect(Number(oldest.at)).toBe(NOW);
  }, 60_000);
});
