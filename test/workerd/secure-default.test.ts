// The Worker is on the internet the moment it is deployed, so it is closed
// by default: with only the database and Upstash secrets set, every route of
// the app (read from Hono's own route table) answers the configuration page,
// and only /healthcheck and /static/* are served. PUBLIC_READ_ONLY=true opens
// pages and the read API to anyone while refusing every action; auth opens
// everything to signed-in users. Nothing reaches the command channel unless
// someone signed in asked for it.

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlanetScaleStandIn } from '../../dev/standins/planetscale';
import { startUpstashStandIn } from '../../dev/standins/upstash';
import { COMMAND_QUEUE_KEY } from '../../src/shared/control';
import { testApp } from '../support/app';
import { createTestDatabase } from '../support/databases';
import { concretePath, handlerRoutes } from '../security/support';
import { migrateToLatest } from '../../worker-collector/migrations';
import { openDatabase, type OpenDatabase } from '../../worker-collector/store/db';
import { buildWorker, startWorkerd, type WorkerBuild, type Workerd } from './harness';

/** The Upstash stand-in's Redis: a database no other test file uses. */
const REDIS = 'redis://127.0.0.1:6379/12';
const ORIGIN = 'http://stalk.test';

let build: WorkerBuild | undefined;
let database: OpenDatabase | undefined;
let secrets: Record<string, string> = {};
const redis = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 2 });
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  const building = buildWorker();
  building.then((b) => cleanups.push(() => b.remove())).catch(() => undefined);
  await redis.connect();
  await redis.del(COMMAND_QUEUE_KEY);
  const target = await createTestDatabase('mariadb');
  cleanups.push(() => target.drop());
  database = await openDatabase(target.url);
  const opened = database;
  cleanups.push(() => opened.close());
  await migrateToLatest(opened.db);
  // A collector that reported just now, so /healthcheck can say OK.
  const now = Date.now() / 1000;
  await opened.db
    .insertInto('collector_status')
    .values({
      id: 'collector@test',
      started_at: now,
      updated_at: now + 3600,
      broker_url: 'redis://broker',
      broker_connected: 1,
      last_event_at: null,
      events_total: 0,
      dropped: '{}',
      lag_seconds: null,
      flush_seconds: null,
    })
    .execute();
  const planetscale = await startPlanetScaleStandIn({ mysqlUrl: target.url, username: 'edge', password: randomBytes(9).toString('hex') });
  cleanups.push(() => planetscale.close());
  const upstash = await startUpstashStandIn({ redisUrl: REDIS, token: randomBytes(12).toString('hex') });
  cleanups.push(() => upstash.close());
  secrets = { DATABASE_URL: planetscale.url, UPSTASH_REDIS_REST_URL: upstash.url, UPSTASH_REDIS_REST_TOKEN: upstash.token };
  build = await building;
}, 90_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse())
    await Promise.resolve()
      .then(cleanup)
      .catch(() => undefined);
  await redis.del(COMMAND_QUEUE_KEY).catch(() => undefined);
  redis.disconnect();
});

/** The Worker with these bindings on top of the stand-ins' secrets; disposed after `use`. */
async function withWorker(bindings: Record<string, string>, use: (workerd: Workerd) => Promise<void>): Promise<void> {
  if (!build) throw new Error('the set-up did not finish (see its failure)');
  const workerd = await startWorkerd(build.script, { ...secrets, ...bindings });
  try {
    await use(workerd);
  } finally {
    await workerd.dispose();
  }
}

async function request(workerd: Workerd, method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}) {
  const response = await workerd.mf.dispatchFetch(`${ORIGIN}${path}`, {
    method,
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Every route the app has, with concrete paths, and a POST body each action accepts. */
function everyRoute(): { method: string; path: string }[] {
  if (!database) throw new Error('no database');
  const routes = handlerRoutes(testApp(database)).flatMap((r) =>
    (r.method === 'ALL' ? ['GET', 'POST'] : [r.method]).map((method) => ({ method, path: concretePath(r.path) })),
  );
  // Not a tautology: the table holds the pages, the API and the actions.
  expect(routes.length).toBeGreaterThan(30);
  return routes;
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('the Worker with no sign-in configured', () => {
  it('serves the configuration page on every route but /healthcheck and /static/*, and sends no command', async () => {
    await withWorker({}, async (workerd) => {
      const health = await request(workerd, 'GET', '/healthcheck');
      expect(health.status).toBe(200);
      expect(health.text).toBe('OK');
      const css = await request(workerd, 'GET', '/static/stalk.css');
      expect(css.status).toBe(200);
      expect(css.text).toContain('{');

      for (const { method, path } of everyRoute()) {
        if (path === '/healthcheck') continue;
        const label = `${method} ${path}`;
        const answer = await request(
          workerd,
          method,
          path,
          method === 'POST' ? { headers: FORM, body: 'name=stalk.add&n=1&queue=q&workername=w1%40host&ratelimit=1%2Fs&min=1&max=2' } : {},
        );
        expect(answer.status, label).toBe(500);
        expect(answer.headers.get('content-security-policy'), label).toContain("default-src 'self'");
        expect(answer.headers.get('cache-control'), label).toBe('no-store');
        if (path.startsWith('/api/')) {
          const body = JSON.parse(answer.text) as { problems: string[] };
          expect(body.problems.join('\n'), label).toContain('PUBLIC_READ_ONLY=true');
        } else {
          expect(answer.text, label).toContain('Stalk is not configured');
          expect(answer.text, label).toContain('BASIC_AUTH');
          expect(answer.text, label).toContain('PUBLIC_READ_ONLY=true');
        }
        // Nothing of the database leaks onto the page.
        expect(answer.text, label).not.toContain('collector@test');
      }
      expect(await redis.llen(COMMAND_QUEUE_KEY)).toBe(0);
      expect(workerd.stderr()).toContain('No sign-in is configured');
    });
  }, 60_000);

  it('refuses PUBLIC_READ_ONLY combined with a sign-in method, naming the conflict', async () => {
    await withWorker({ PUBLIC_READ_ONLY: 'true', BASIC_AUTH: 'admin:pw', COOKIE_SECRET: 'x'.repeat(40) }, async (workerd) => {
      const page = await request(workerd, 'GET', '/');
      expect(page.status).toBe(500);
      expect(page.text).toContain('cannot be combined with BASIC_AUTH');
      const bad = await withWorkerText({ PUBLIC_READ_ONLY: 'maybe' });
      expect(bad).toContain('PUBLIC_READ_ONLY: &#39;maybe&#39; is not true or false');
    });
  }, 60_000);
});

async function withWorkerText(bindings: Record<string, string>): Promise<string> {
  let text = '';
  await withWorker(bindings, async (workerd) => {
    text = (await request(workerd, 'GET', '/')).text;
  });
  return text;
}

describe('the Worker with PUBLIC_READ_ONLY=true', () => {
  it('shows pages, the read API and /metrics to anyone, without action forms', async () => {
    await withWorker({ PUBLIC_READ_ONLY: 'true' }, async (workerd) => {
      for (const path of ['/', '/workers', '/tasks', '/broker', '/audit']) {
        const page = await request(workerd, 'GET', path);
        expect(page.status, path).toBe(200);
        expect(page.text, path).toMatch(/^<!DOCTYPE html>|^<html/i);
      }
      expect((await request(workerd, 'GET', '/tasks')).text).not.toContain('Send a task');
      const api = await request(workerd, 'GET', '/api/tasks');
      expect(api.status).toBe(200);
      expect(JSON.parse(api.text)).toEqual({});
      expect((await request(workerd, 'GET', '/api/workers')).status).toBe(200);
      const metrics = await request(workerd, 'GET', '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.text).toContain('stalk_collector_up');
    });
  }, 60_000);

  it('refuses every action, inspect refreshes included, and sends no command', async () => {
    await withWorker({ PUBLIC_READ_ONLY: 'true' }, async (workerd) => {
      const json = { 'content-type': 'application/json' };
      const refused: [string, string, { headers?: Record<string, string>; body?: string }][] = [
        ['POST', '/api/task/async-apply/stalk.add', { headers: json, body: '{"args": [1, 2]}' }],
        ['POST', '/api/task/send-task/stalk.add', { headers: json, body: '{}' }],
        ['POST', '/api/task/revoke/task-1', { headers: FORM, body: 'terminate=true' }],
        ['POST', '/api/worker/shutdown/w1@host', {}],
        ['POST', '/api/worker/pool/grow/w1@host', { headers: FORM, body: 'n=1' }],
        ['POST', '/tasks/send', { headers: FORM, body: 'name=stalk.add' }],
        ['GET', '/api/task/result/task-1', {}],
        ['GET', '/api/queues/length', {}],
      ];
      for (const [method, path, init] of refused) {
        const answer = await request(workerd, method, path, init);
        expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(403);
      }
      const refresh = await request(workerd, 'GET', '/api/workers?refresh=1');
      expect(refresh.status).toBe(403);
      expect(refresh.text).toContain('read-only');
      expect(await redis.llen(COMMAND_QUEUE_KEY)).toBe(0);
    });
  }, 60_000);
});

describe('the Worker with basic auth', () => {
  it('asks for credentials, and opens to them', async () => {
    const password = randomBytes(9).toString('hex');
    await withWorker({ BASIC_AUTH: `admin:${password}`, COOKIE_SECRET: randomBytes(24).toString('hex') }, async (workerd) => {
      const anonymous = await request(workerd, 'GET', '/tasks');
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      const signedIn = await request(workerd, 'GET', '/tasks', {
        headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` },
      });
      expect(signedIn.status).toBe(200);
      expect(signedIn.text).toContain('id="tasks-panel"');
    });
  }, 60_000);
});
