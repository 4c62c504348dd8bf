// The edge data path end to end: a real Celery worker runs the scenario on
// Redis, the real collector (worker-collector/main.ts, a child process) writes
// it to MariaDB and publishes hot state through the Upstash stand-in; the
// Worker, built by `wrangler deploy --dry-run` and run under workerd through
// the Miniflare API, reads it back through the PlanetScale and Upstash
// stand-ins. Every page and API the dashboard needs is checked through the
// Worker, as are the hot state, the shared-page cache, static assets and the
// configuration check. The Worker runs with Basic auth and a cookie secret
// (the collector has the same secret): control commands from the Worker
// are signed, reach the real Celery worker, and come back on their reply
// list within a handful of subrequests, while forged ones are refused.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlanetScaleStandIn } from '../../dev/standins/planetscale';
import { startUpstashStandIn } from '../../dev/standins/upstash';
import { deriveCommandKey, signCommand, verifyReply } from '../../src/shared/command-signing';
import { COMMAND_QUEUE_KEY, REPLY_KEY_PREFIX } from '../../src/shared/control';
import { HOT_WORKERS_KEY } from '../../src/shared/hot-state';
import { HTMX_SCRIPT, IDIOMORPH_SCRIPT } from '../../src/ui/vendor';
import { type CeleryWorker, runScenario, type ScenarioIds, startWorker, uniqueWorkerName } from '../support/celery';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { type ManagedProcess, printLogsOnFailure, spawnManaged, stopAllProcesses } from '../support/processes';
import { type ApiTask, type ApiWorker, REPO_ROOT, waitFor } from '../support/stalk';
import { buildWorker, type CountingProxy, startCountingProxy, startWorkerd, type WorkerBuild, type Workerd } from './harness';

/**
 * The Celery broker: Redis, in a database of its own. Every Celery worker on
 * one broker shares the `celery` queue, so a worker of another test file
 * running at the same time on db 0 would take this scenario's tasks (and
 * `--purge` them); db 10 keeps the scenario on this file's `-c 1` worker.
 */
const BROKER = 'redis://localhost:6379/10';
/** Where the Upstash stand-in keeps the hot state: a Redis database no other test uses, so the key is this file's alone. */
const HOT_STATE_REDIS = 'redis://127.0.0.1:6379/11';

/** Auth for the Worker: one Basic user, and the cookie secret that also keys the command channel. */
const BASIC_PASSWORD = randomBytes(12).toString('hex');
const AUTH = { Authorization: `Basic ${Buffer.from(`admin:${BASIC_PASSWORD}`).toString('base64')}` };
const COOKIE_SECRET = randomBytes(24).toString('hex');

/** The state every scenario task ends in. */
const FINAL_STATES: Record<keyof ScenarioIds, string> = {
  succeeded: 'SUCCESS',
  failed: 'FAILURE',
  retried: 'SUCCESS',
  hostile: 'SUCCESS',
  terminated: 'REVOKED',
  blocker: 'SUCCESS',
  revoked_queued: 'REVOKED',
};

type Tasks = Record<string, ApiTask>;

interface Setup {
  database: TestDatabase;
  collector: ManagedProcess;
  worker: CeleryWorker;
  ids: ScenarioIds;
  workerd: Workerd;
  proxy: CountingProxy;
  /** The URL of every subrequest the Worker made so far. */
  subrequests: string[];
  upstashUrl: string;
  /** The Worker's bindings that point at the stand-ins. */
  secrets: Record<string, string>;
  build: WorkerBuild;
}

let setup: Setup | undefined;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
const hotRedis = new Redis(HOT_STATE_REDIS, { lazyConnect: true, maxRetriesPerRequest: 2 });

function ready(): Setup {
  if (!setup) throw new Error('the set-up did not finish (see its failure)');
  return setup;
}

/** A query string nobody asked for yet: its own shared-cache entry, so the page is rendered now. */
const fresh = () => `fresh=${randomBytes(4).toString('hex')}`;

async function json<T>(workerd: Workerd, path: string): Promise<T> {
  const { status, text } = await workerd.fetch(path);
  if (status !== 200) throw new Error(`GET ${path}: HTTP ${status}: ${text}`);
  return JSON.parse(text) as T;
}

async function sqlOn<T>(database: TestDatabase, run: (conn: Awaited<ReturnType<typeof createConnection>>) => Promise<T>): Promise<T> {
  const conn = await createConnection({ uri: database.url, charset: 'utf8mb4' });
  try {
    return await run(conn);
  } finally {
    await conn.end();
  }
}

/**
 * Run `statement` with the collector stopped (SIGSTOP), so that it neither
 * writes nor publishes until the caller sends SIGCONT. A flush caught in the
 * middle of its transaction holds row locks: then let it run on a moment and
 * try again.
 */
async function sqlWithCollectorPaused(
  collector: ManagedProcess,
  database: TestDatabase,
  statement: string,
  params: unknown[] = [],
): Promise<void> {
  collector.signal('SIGSTOP');
  await waitFor(
    async () => {
      try {
        await sqlOn(database, async (conn) => {
          await conn.query('SET SESSION innodb_lock_wait_timeout = 2');
          await conn.query(statement, params);
        });
        return true;
      } catch (error) {
        collector.signal('SIGCONT');
        await new Promise((resolve) => setTimeout(resolve, 300));
        collector.signal('SIGSTOP');
        throw error;
      }
    },
    20_000,
    statement,
  );
}

printLogsOnFailure();

beforeAll(async () => {
  await hotRedis.connect();
  await hotRedis.del(HOT_WORKERS_KEY);
  // The build (about 8 s) runs while Celery and the collector do their part.
  const building = buildWorker();
  building.then((b) => cleanups.push(() => b.remove())).catch(() => undefined);

  const database = await createTestDatabase('mariadb');
  cleanups.push(() => database.drop());
  const planetscale = await startPlanetScaleStandIn({ mysqlUrl: database.url, username: 'edge', password: randomBytes(9).toString('hex') });
  cleanups.push(() => planetscale.close());
  const upstash = await startUpstashStandIn({ redisUrl: HOT_STATE_REDIS, token: randomBytes(12).toString('hex') });
  cleanups.push(() => upstash.close());
  const proxy = await startCountingProxy(planetscale.url);
  cleanups.push(() => proxy.close());

  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('STALK_') || key.startsWith('UPSTASH_') || key === 'CELERY_BROKER_URL') delete env[key];
  }
  const collector = spawnManaged(
    'collector',
    process.execPath,
    [
      '--import',
      'tsx',
      'worker-collector/main.ts',
      '--db',
      database.url,
      '--state-url',
      upstash.url,
      '--state-token',
      upstash.token,
      '--cookie-secret',
      COOKIE_SECRET,
      '--broker',
      BROKER,
    ],
    { cwd: REPO_ROOT, env },
  );
  // Subscribed before the worker starts, so worker-online and every task event are seen.
  await collector.waitForOutput(/connected to \S+, subscribed to/, 30_000);
  const worker = await startWorker({ broker: BROKER, hostname: uniqueWorkerName('edge') });
  const ids = await runScenario({ broker: BROKER });

  const build = await building;
  const secrets = {
    DATABASE_URL: proxy.url,
    UPSTASH_REDIS_REST_URL: upstash.url,
    UPSTASH_REDIS_REST_TOKEN: upstash.token,
    BASIC_AUTH: `admin:${BASIC_PASSWORD}`,
    COOKIE_SECRET,
  };
  const subrequests: string[] = [];
  const workerd = await startWorkerd(build.script, secrets, { headers: AUTH, onSubrequest: (url) => subrequests.push(url) });
  cleanups.push(() => workerd.dispose());

  // Every scenario task in its final state, as the Worker reads it.
  let pending: string[] = [];
  await waitFor(
    async () => {
      const tasks = await json<Tasks>(workerd, '/api/tasks');
      pending = Object.entries(FINAL_STATES)
        .filter(([outcome, state]) => tasks[ids[outcome as keyof ScenarioIds]]?.state !== state)
        .map(
          ([outcome, state]) =>
            `${outcome} ${ids[outcome as keyof ScenarioIds]}: ${tasks[ids[outcome as keyof ScenarioIds]]?.state ?? 'missing'}, want ${state}`,
        );
      return pending.length === 0;
    },
    30_000,
    'every scenario task in its final state through the Worker',
  ).catch((error: unknown) => {
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}; pending: ${pending.join('; ')}\n--- collector ---\n${collector.output()}\n--- worker ---\n${worker.process.output().slice(-5000)}\n--- workerd ---\n${workerd.stderr()}`,
    );
  });
  setup = { database, collector, worker, ids, workerd, proxy, subrequests, upstashUrl: upstash.url, secrets, build };
}, 150_000);

afterAll(async () => {
  await stopAllProcesses();
  for (const cleanup of cleanups.reverse())
    await Promise.resolve()
      .then(cleanup)
      .catch(() => undefined);
  await hotRedis.del(HOT_WORKERS_KEY).catch(() => undefined);
  hotRedis.disconnect();
});

describe('the Worker under workerd, fed by the real collector', () => {
  it('answers /healthcheck OK (database reachable, collector reporting)', async () => {
    const { workerd } = ready();
    const health = await workerd.fetch('/healthcheck');
    expect(health.text).toBe('OK');
    expect(health.status).toBe(200);
    expect(health.headers.get('cache-control')).toBe('no-store');
  });

  it('lists the Celery worker on the dashboard, as a full page and as the htmx fragment', async () => {
    const { workerd, worker } = ready();
    for (const path of ['/', '/workers']) {
      const page = await workerd.fetch(path);
      expect(page.status, path).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.text).toMatch(/^<!DOCTYPE html>|^<html/i);
      expect(page.text).toContain(`data-worker="${worker.hostname}"`);

      const fragment = await workerd.fetch(path, { 'HX-Request': 'true' });
      expect(fragment.status, `${path} fragment`).toBe(200);
      expect(fragment.text).not.toContain('<html');
      expect(fragment.text).toContain('id="workers-panel"');
      expect(fragment.text).toContain(`data-worker="${worker.hostname}"`);
    }
    const flower = await json<{ data: { hostname: string; status: boolean }[] }>(workerd, '/workers?json=1');
    expect(flower.data.map((w) => w.hostname)).toContain(worker.hostname);
  });

  it("answers a live panel's poll naming the panel's ETag with 304 (signed in, through the shared cache), and serves the npm htmx", async () => {
    const { workerd } = ready();
    const hx = { 'HX-Request': 'true' };
    for (const path of ['/', '/workers', '/broker', '/tasks', '/alerts']) {
      // The collector writes meanwhile (heartbeats): asked again until a poll lands on the same panel.
      const poll = await waitFor(
        async () => {
          const first = await workerd.fetch(path, hx);
          const tag = first.headers.get('etag');
          expect(first.status, path).toBe(200);
          expect(tag, path).toMatch(/^"[0-9a-f]{40}"$/);
          const again = await workerd.fetch(path, { ...hx, 'If-None-Match': tag ?? '' });
          return again.status === 304 ? { again, tag } : undefined;
        },
        15_000,
        `a 304 for ${path}`,
        100,
      );
      expect(poll.again.text, path).toBe('');
      expect(poll.again.headers.get('etag'), path).toBe(poll.tag);
    }
    // Without HX-Request the page is whole, with no ETag.
    const page = await workerd.fetch('/tasks', { 'If-None-Match': '*' });
    expect(page.status).toBe(200);
    expect(page.headers.get('etag')).toBeNull();
    const htmx = await workerd.fetch(HTMX_SCRIPT);
    expect(htmx.status).toBe(200);
    expect(htmx.text).toBe(readFileSync(join(REPO_ROOT, 'node_modules/htmx.org/dist/htmx.min.js'), 'utf8'));
    const morph = await workerd.fetch(IDIOMORPH_SCRIPT);
    expect(morph.status).toBe(200);
    expect(morph.text).toContain('defineExtension("morph"');
  });

  it('shows the scenario on /tasks, and only the failure under state=FAILURE', async () => {
    const { workerd, ids } = ready();
    const all = await workerd.fetch('/tasks?limit=500');
    expect(all.status).toBe(200);
    for (const [outcome, id] of Object.entries(ids)) {
      expect(all.text, outcome).toContain(`data-task="${id}" data-state="${FINAL_STATES[outcome as keyof ScenarioIds]}"`);
    }
    const failures = await workerd.fetch('/tasks?state=FAILURE&limit=500');
    expect(failures.status).toBe(200);
    expect(failures.text).toContain(`data-task="${ids.failed}"`);
    for (const [outcome, id] of Object.entries(ids)) if (outcome !== 'failed') expect(failures.text, outcome).not.toContain(id);

    const fragment = await workerd.fetch('/tasks?state=FAILURE&limit=500', { 'HX-Request': 'true' });
    expect(fragment.text).not.toContain('<html');
    expect(fragment.text).toContain(`data-task="${ids.failed}"`);
  });

  it('shows the failed task with its exception escaped', async () => {
    const { workerd, ids } = ready();
    const page = await workerd.fetch(`/task/${ids.failed}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain(ids.failed);
    expect(page.text).toContain('stalk.fail');
    expect(page.text).toContain('boom &lt;b&gt;refused&lt;/b&gt;');
    expect(page.text).not.toContain('<b>refused</b>');
    expect(page.text).toContain('Traceback (most recent call last)');

    const hostile = await workerd.fetch(`/task/${ids.hostile}`);
    expect(hostile.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(hostile.text).not.toContain('<script>alert(1)</script>');
    expect(hostile.text).toContain('é漢😀');

    expect((await workerd.fetch('/task/no-such-task')).status).toBe(404);
  });

  it('serves the Flower API: tasks, task info, workers', async () => {
    const { workerd, ids, worker } = ready();
    const tasks = await json<Tasks>(workerd, '/api/tasks');
    for (const [outcome, id] of Object.entries(ids)) {
      expect(tasks[id], outcome).toMatchObject({ uuid: id, state: FINAL_STATES[outcome as keyof ScenarioIds], worker: worker.hostname });
    }
    expect(tasks[ids.succeeded]).toMatchObject({ name: 'stalk.add', result: '5', args: '(2, 3)' });
    // BIGINT and DOUBLE columns come over HTTP as strings; the API still gives numbers.
    expect(tasks[ids.succeeded]!.received).toEqual(expect.any(Number));
    expect(tasks[ids.succeeded]!.runtime).toEqual(expect.any(Number));

    const info = await json<ApiTask>(workerd, `/api/task/info/${ids.failed}`);
    expect(info).toMatchObject({ uuid: ids.failed, name: 'stalk.fail', state: 'FAILURE', worker: worker.hostname });
    expect(info.exception).toMatch(/^ValueError\('boom <b>refused<\/b>'\)/);
    expect(info.traceback).toContain('ValueError: boom <b>refused</b>');
    const missing = await workerd.fetch('/api/task/info/no-such-task');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.text)).toEqual({ error: expect.any(String) });

    const workers = await json<Record<string, ApiWorker>>(workerd, '/api/workers');
    expect(workers[worker.hostname]).toMatchObject({ hostname: worker.hostname, sw_ident: 'py-celery', pid: worker.process.pid });
    expect(workers[worker.hostname]!.events['task-succeeded']).toBeGreaterThanOrEqual(4);
    const status = await json<Record<string, boolean>>(workerd, '/api/workers?status=1');
    expect(Object.keys(status)).toContain(worker.hostname);
  });

  it('renders the broker page (page and fragment)', async () => {
    const { workerd } = ready();
    const page = await workerd.fetch('/broker');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<html');
    expect(page.text).toContain('id="broker-panel"');
    expect(page.text).toContain(`<code>${BROKER}</code>`);
    const fragment = await workerd.fetch('/broker', { 'HX-Request': 'true' });
    expect(fragment.status).toBe(200);
    expect(fragment.text).not.toContain('<html');
    expect(fragment.text).toContain('id="broker-panel"');
  });

  it('renders /stats and the stats of one task name over MariaDB (page and fragment), and serves the theme script', async () => {
    const { workerd } = ready();
    for (const path of ['/stats?period=24h', '/stats/stalk.add?period=1h']) {
      const page = await workerd.fetch(path);
      expect(page.status, path).toBe(200);
      expect(page.text).toContain('id="stats-panel"');
      expect(page.text.match(/<svg class="chart-svg"/g)?.length, path).toBe(4);
      const fragment = await workerd.fetch(path, { 'HX-Request': 'true' });
      expect(fragment.status).toBe(200);
      expect(fragment.text.startsWith('<section id="stats-panel"')).toBe(true);
    }
    const theme = await workerd.fetch('/static/theme.js');
    expect(theme.status).toBe(200);
    expect(theme.text).toBe(readFileSync(join(REPO_ROOT, 'public/static/theme.js'), 'utf8'));
  });

  it('serves /static files from [assets] without running the Worker', async () => {
    const { workerd, proxy } = ready();
    const before = proxy.queries().length;
    const css = await workerd.fetch('/static/stalk.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(css.text).toBe(readFileSync(join(REPO_ROOT, 'public/static/stalk.css'), 'utf8'));
    expect(css.headers.get('x-stalk-cache')).toBeNull();
    expect(proxy.queries().length).toBe(before);
    expect((await workerd.fetch('/static/no-such-file.css')).status).toBe(404);
  });

  it('draws the dashboard from the hot state while it is fresh, from SQL without it', async () => {
    const { workerd, worker, collector, database } = ready();
    // Hold the collector still so it neither writes rows back nor republishes.
    try {
      await sqlWithCollectorPaused(collector, database, 'DELETE FROM workers');
      const [rows] = await sqlOn(database, (conn) => conn.query('SELECT COUNT(*) AS n FROM workers'));
      expect((rows as { n: number }[])[0]!.n).toBe(0);
      expect(await hotRedis.get(HOT_WORKERS_KEY)).toContain(worker.hostname);

      const hot = await workerd.fetch(`/workers?${fresh()}`);
      expect(hot.status).toBe(200);
      expect(hot.text).toContain(`data-worker="${worker.hostname}"`);
      expect(Object.keys(await json<Record<string, ApiWorker>>(workerd, '/api/workers'))).toContain(worker.hostname);

      // Without the snapshot the Worker falls back to the database, where the rows are gone.
      await hotRedis.del(HOT_WORKERS_KEY);
      const cold = await workerd.fetch(`/workers?${fresh()}`);
      expect(cold.status).toBe(200);
      expect(cold.text).toContain('id="workers-panel"');
      expect(cold.text).not.toContain(`data-worker="${worker.hostname}"`);
      expect(Object.keys(await json<Record<string, ApiWorker>>(workerd, '/api/workers'))).not.toContain(worker.hostname);
    } finally {
      collector.signal('SIGCONT');
    }
    // The collector carries on: the worker's next heartbeat rewrites its row and the snapshot.
    await waitFor(async () => (await hotRedis.get(HOT_WORKERS_KEY))?.includes(worker.hostname), 15_000, 'the snapshot republished');
    await waitFor(
      async () => {
        const [rows] = await sqlOn(database, (conn) => conn.query('SELECT hostname FROM workers WHERE hostname = ?', [worker.hostname]));
        return (rows as unknown[]).length > 0;
      },
      15_000,
      'the workers row rewritten',
    );
  });

  it('serves a shared page from the edge cache for about a second, without querying the database', async () => {
    const { workerd, proxy, database, collector } = ready();
    try {
      await sharedCacheChecks(workerd, proxy, database, collector);
    } finally {
      collector.signal('SIGCONT');
    }

    // Pages that are not shared are never cached.
    const tasksBefore = proxy.queries().length;
    const tasks = await workerd.fetch('/tasks');
    expect(tasks.headers.get('x-stalk-cache')).toBeNull();
    expect(proxy.queries().length).toBeGreaterThan(tasksBefore);
  });

  /**
   * The broker panel's data changes under the cache (the collector, which
   * rewrites the queues table as it measures, held still). What is shared is
   * the htmx fragment: a signed-in viewer's full page carries their name and
   * CSRF token, so it is never shared.
   */
  async function sharedCacheChecks(
    workerd: Workerd,
    proxy: CountingProxy,
    database: TestDatabase,
    collector: ManagedProcess,
  ): Promise<void> {
    const fragment = { 'HX-Request': 'true' };
    // The fragment is shared for a second: its first request, its entry seen stored, the database
    // changed and the second request fit in it on an idle machine. On a loaded one a round may not
    // (the change waits for the collector to be held still): it is tried again on a fresh path.
    let round: Awaited<ReturnType<typeof cacheRound>>;
    for (let attempt = 1; ; attempt++) {
      round = await cacheRound(workerd, proxy, database, collector, fragment);
      if (round) break;
      if (attempt === 5) throw new Error('five rounds in a row did not fit in the second the fragment is cached');
    }
    const { path, queue, first, second, askedAt, queriesBefore } = round;
    expect(second.headers.get('x-stalk-cache')).toBe('HIT');
    expect(second.text).toBe(first.text);
    expect(second.text).not.toContain(queue);
    expect(second.headers.get('vary')).toBe('HX-Request');
    expect(proxy.queries().slice(queriesBefore)).toEqual([]);

    // The signed-in viewer's full page is never shared: rendered now, with the new row.
    const page = await workerd.fetch(path);
    expect(page.headers.get('x-stalk-cache')).toBeNull();
    expect(page.text).toContain('<html');
    expect(page.text).toContain(`data-queue="${queue}"`);
    expect(proxy.queries().length).toBeGreaterThan(queriesBefore);

    // Once the second is over, the fragment is rendered again from the database.
    let queriesThen = 0;
    const third = await waitFor(
      async () => {
        queriesThen = proxy.queries().length;
        const response = await workerd.fetch(path, fragment);
        return response.headers.get('x-stalk-cache') === 'MISS' ? response : undefined;
      },
      10_000,
      'the fragment rendered again',
      50,
    );
    // Stored after the first request was made, so not gone before a second after that.
    expect(Date.now() - askedAt).toBeGreaterThanOrEqual(1_000);
    expect(third.text).toContain(`data-queue="${queue}"`);
    expect(proxy.queries().length).toBeGreaterThan(queriesThen);
  }

  /** One try at a cached fragment and a change under it; undefined when the second request came after the cached second. */
  async function cacheRound(
    workerd: Workerd,
    proxy: CountingProxy,
    database: TestDatabase,
    collector: ManagedProcess,
    fragment: Record<string, string>,
  ) {
    const path = `/broker?${fresh()}`;
    const queue = `edge-probe-${randomBytes(4).toString('hex')}`;
    // The entry is stored after this: it lasts at least a second from here.
    const askedAt = Date.now();
    const first = await workerd.fetch(path, fragment);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-stalk-cache')).toBe('MISS');
    expect(first.text).not.toContain('<html');
    expect(first.text).not.toContain(queue);
    // The entry is stored after the response went out (waitUntil): wait until it is there.
    const stored = await waitFor(
      async () => (await workerd.fetch(path, fragment)).headers.get('x-stalk-cache') === 'HIT',
      1_000,
      'the fragment in the cache',
      20,
    ).catch(() => false);
    if (!stored) return undefined;

    // Change what the panel shows, directly in the database.
    await sqlWithCollectorPaused(
      collector,
      database,
      'INSERT INTO queues (name, messages, ready, unacked, consumers, measured_at) VALUES (?, 42, NULL, NULL, NULL, ?)',
      [queue, Date.now() / 1000],
    );
    const queriesBefore = proxy.queries().length;
    const second = await workerd.fetch(path, fragment);
    if (Date.now() - askedAt >= 1_000) return undefined;
    return { path, queue, first, second, askedAt, queriesBefore };
  }

  it('serves everything under URL_PREFIX, static files included', async () => {
    const { build, secrets, worker } = ready();
    const prefixed = await startWorkerd(build.script, { ...secrets, URL_PREFIX: '/flower/' }, { headers: AUTH });
    try {
      expect((await prefixed.fetch('/flower/healthcheck')).text).toBe('OK');
      const page = await prefixed.fetch('/flower/workers');
      expect(page.status).toBe(200);
      expect(page.text).toContain('href="/flower/static/stalk.css"');
      expect(page.text).toContain(`data-worker="${worker.hostname}"`);
      const css = await prefixed.fetch('/flower/static/stalk.css');
      expect(css.status).toBe(200);
      expect(css.text).toBe(readFileSync(join(REPO_ROOT, 'public/static/stalk.css'), 'utf8'));
      // Served by the Worker from the assets binding, with the security headers added.
      expect(css.headers.get('x-content-type-options')).toBe('nosniff');
      expect(css.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect((await prefixed.fetch('/flower/static/no-such-file.css')).status).toBe(404);
      expect((await prefixed.fetch('/workers')).status).toBe(404);
    } finally {
      await prefixed.dispose();
    }
  });
});

describe('the Worker with bad bindings', () => {
  it('answers 500 naming what is missing or malformed, logs it once, and never echoes a secret', async () => {
    const { build } = ready();
    const workerd = await startWorkerd(build.script, {
      DATABASE_URL: 'postgres://stalk:hunter2-secret@db.example.com/stalk',
      UPSTASH_REDIS_REST_URL: 'https://example.upstash.io',
      UPSTASH_REDIS_REST_TOKEN: undefined,
      AUTO_REFRESH: 'soon',
      TASK_RUNTIME_METRIC_BUCKETS: '1,3',
    });
    try {
      const page = await workerd.fetch('/');
      expect(page.status).toBe(500);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.text).toContain('Stalk is not configured');
      expect(page.text).toContain('UPSTASH_REDIS_REST_TOKEN is missing');
      expect(page.text).toContain('DATABASE_URL must start with https:// or http:// or mysql://');
      expect(page.text).toContain('AUTO_REFRESH: &#39;soon&#39; is not a duration');
      expect(page.text).toContain('TASK_RUNTIME_METRIC_BUCKETS: 3 is not a stored bucket bound');
      expect(page.text).not.toContain('hunter2-secret');

      const api = await workerd.fetch('/api/workers');
      expect(api.status).toBe(500);
      const body = JSON.parse(api.text) as { error: string; problems: string[] };
      expect(body.problems).toHaveLength(4);
      expect(body.problems).toContain(
        'UPSTASH_REDIS_REST_TOKEN is missing (set it with `wrangler secret put UPSTASH_REDIS_REST_TOKEN`, or in .dev.vars locally)',
      );
      expect(body.error).not.toContain('hunter2-secret');

      const health = await workerd.fetch('/healthcheck');
      expect(health.status).toBe(500);
      expect(health.text).toContain('UPSTASH_REDIS_REST_TOKEN is missing');

      await waitFor(() => workerd.stderr().includes('Stalk is not configured'), 5_000, 'the configuration error in the log');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(workerd.stderr().split('Stalk is not configured').length - 1).toBe(1);
      expect(workerd.stderr()).not.toContain('hunter2-secret');
    } finally {
      await workerd.dispose();
    }
  });
});

describe('control from the edge, through Upstash and the collector', () => {
  const post = async (path: string) => {
    const { workerd } = ready();
    const { status, text } = await workerd.fetch(path, {}, 'POST');
    return { status, text };
  };
  /** Subrequests to Upstash while `act` runs. */
  async function upstashRequests<T>(act: () => Promise<T>): Promise<{ result: T; requests: number }> {
    const { subrequests, upstashUrl } = ready();
    const before = subrequests.length;
    const result = await act();
    return { result, requests: subrequests.slice(before).filter((url) => url.startsWith(upstashUrl)).length };
  }

  it('carries a signed command from the Worker to the Celery worker and its reply back, in two Upstash subrequests', async () => {
    const { worker, workerd } = ready();
    const { result: grown, requests } = await upstashRequests(() =>
      post(`/api/worker/pool/grow/${encodeURIComponent(worker.hostname)}?n=1`),
    );
    expect(grown).toEqual({ status: 200, text: JSON.stringify({ message: `Growing '${worker.hostname}' worker's pool by 1` }) });
    // The push, and one blocking pop that the reply ends.
    expect(requests).toBe(2);
    // pool_grow adds a process (max-concurrency stays the configured -c); it takes a moment to start.
    await waitFor(
      async () => {
        const refreshed = await json<Record<string, { stats?: { pool?: { processes?: unknown[] } } }>>(
          workerd,
          `/api/workers?refresh=1&workername=${encodeURIComponent(worker.hostname)}`,
        );
        return refreshed[worker.hostname]?.stats?.pool?.processes?.length === 2;
      },
      15_000,
      'the pool to show 2 processes in stats',
    );
    const shrunk = await post(`/api/worker/pool/shrink/${encodeURIComponent(worker.hostname)}?n=1`);
    expect(shrunk.status).toBe(200);
    const audit = await workerd.fetch('/audit');
    expect(audit.text).toMatch(/<td>admin<\/td><td>pool_grow<\/td>/);
  });

  it('times out on a destination that does not answer', async () => {
    const { database } = ready();
    await sqlOn(database, (conn) =>
      conn.query(
        "INSERT INTO workers (hostname, status, heartbeats, first_seen) VALUES ('ghost@nowhere', 'offline', '[]', 1) ON DUPLICATE KEY UPDATE status = 'offline'",
      ),
    );
    const started = Date.now();
    const ghost = await post('/api/worker/pool/grow/ghost%40nowhere?n=1');
    expect(ghost.status).toBe(403);
    expect(ghost.text).toBe("Failed to grow 'ghost@nowhere' worker's pool: 'ghost@nowhere' did not answer in time");
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it('waits out a command nobody answers with a few blocking pops, not a poll every moment', async () => {
    const { collector } = ready();
    collector.signal('SIGSTOP');
    try {
      const started = Date.now();
      const { result, requests } = await upstashRequests(() => post('/api/task/revoke/edge-unanswered-1'));
      // Flower's answer to a failed revoke is 403 with the reason.
      expect(result.status).toBe(403);
      expect(result.text).toContain('the collector did not answer in time');
      // inspect timeout (1 s) + 5 s to wait, +2 s for a late refusal.
      expect(Date.now() - started).toBeGreaterThanOrEqual(7_500);
      expect(requests).toBeGreaterThanOrEqual(2);
      expect(requests).toBeLessThanOrEqual(3);
    } finally {
      collector.signal('SIGCONT');
    }
  });

  it('refuses forged commands pushed straight onto the list, answering them signed and auditing them as unverified', async () => {
    const redis = new Redis(HOT_STATE_REDIS);
    try {
      const key = await deriveCommandKey(COOKIE_SECRET);
      const now = Date.now() / 1000;
      const forgedTask = `edge-forged-${randomBytes(3).toString('hex')}`;
      await redis.lpush(
        COMMAND_QUEUE_KEY,
        JSON.stringify({
          id: 'edge-unsigned-1',
          user: 'mallory',
          deadline: now + 30,
          command: { kind: 'revoke', task: forgedTask, terminate: false, signal: 'SIGTERM' },
        }),
      );
      const wrongKey = await deriveCommandKey(`not-the-cookie-secret-${randomBytes(16).toString('hex')}`);
      const other = await signCommand(
        wrongKey,
        { id: 'edge-wrong-key-1', user: 'mallory', deadline: now + 30, command: { kind: 'queues' } },
        now,
      );
      await redis.lpush(COMMAND_QUEUE_KEY, JSON.stringify(other));
      await redis.lpush(COMMAND_QUEUE_KEY, 'not json at all');
      const reply = async (id: string) => {
        const popped = await redis.blpop(`${REPLY_KEY_PREFIX}${id}`, 10);
        if (!popped) throw new Error(`no reply to ${id}`);
        return verifyReply(key, id, popped[1]);
      };
      expect(await reply('edge-unsigned-1')).toMatchObject({
        ok: false,
        status: 403,
        error: expect.stringMatching(/^unsigned command refused/),
      });
      expect(await reply('edge-wrong-key-1')).toMatchObject({ ok: false, status: 403, error: expect.stringMatching(/^bad signature/) });
      // The garbage line was dropped, and the channel still works.
      expect((await post('/api/task/revoke/edge-nothing-1')).status).toBe(200);
      const audit = await ready().workerd.fetch('/audit');
      expect(audit.text).toMatch(/<td>\(unverified\)<\/td><td>refused<\/td>/);
      expect(audit.text).toContain('mallory');
      expect(audit.text).not.toMatch(/<td>mallory<\/td>/);
      // Nothing forged ran.
      expect(audit.text).not.toMatch(new RegExp(`<td>revoke</td><td>${forgedTask}</td>`));
    } finally {
      redis.disconnect();
    }
  });
});
