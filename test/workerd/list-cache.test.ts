// The Worker's task-list cache (src/edge/list-cache.ts), under workerd: the
// built Worker reads a seeded MariaDB through the PlanetScale stand-in, which
// counts every statement. A second identical request for a task list within
// the cache's two seconds is a HIT and sends no statement; another query is
// not served from the entry; a request without valid credentials is refused
// before the cache; a signed-in viewer's full page is never shared; and
// DataTables' counter is the asker's own.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlanetScaleStandIn } from '../../dev/standins/planetscale';
import { startUpstashStandIn } from '../../dev/standins/upstash';
import type { NewTaskRow } from '../../src/shared/schema';
import { stateKey } from '../../src/shared/task-states';
import { createTestDatabase, openTestConnection } from '../support/databases';
import { waitFor } from '../support/stalk';
import { migrateToLatest } from '../../worker-collector/migrations';
import { buildWorker, startWorkerd, type WorkerBuild, type Workerd } from './harness';

/** Nothing here writes hot state: a Redis database no other test uses. */
const UPSTASH_REDIS = 'redis://127.0.0.1:6379/9';
const PASSWORD = randomBytes(12).toString('hex');
const AUTH = { Authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` };
const FRAGMENT = { 'HX-Request': 'true' };
const T0 = Math.floor(Date.now() / 1000) - 3_600;

function task(n: number): NewTaskRow {
  const failed = n % 3 === 0;
  const state = failed ? 'FAILURE' : 'SUCCESS';
  return {
    uuid: `list-cache-${String(n).padStart(3, '0')}`,
    name: `jobs.kind_${n % 2}`,
    state,
    state_key: stateKey(state, T0 + n),
    timestamp: T0 + n,
    clock: n,
    received: T0 + n - 1,
    started: T0 + n - 0.5,
    succeeded: failed ? null : T0 + n,
    failed: failed ? T0 + n : null,
    args: `(${n},)`,
    kwargs: '{}',
    exception: failed ? `ValueError('refused ${n}')` : null,
    worker: 'celery@cache',
    runtime: 0.5,
    retries: 0,
    root_id: null,
    parent_id: n % 5 === 1 ? `list-cache-${String(n - 1).padStart(3, '0')}` : null,
    queue: 'celery',
    exchange: '',
    routing_key: 'celery',
  };
}

let build: WorkerBuild | undefined;
let workerd: Workerd | undefined;
let statements = 0;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  const building = buildWorker();
  const target = await createTestDatabase('mariadb');
  cleanups.push(() => target.drop());
  const database = await openTestConnection(target.url);
  await migrateToLatest(database.db);
  await database.db
    .insertInto('tasks')
    .values(Array.from({ length: 30 }, (_, n) => task(n)))
    .execute();
  await database.close();
  const planetscale = await startPlanetScaleStandIn({
    mysqlUrl: target.url,
    username: 'cache',
    password: randomBytes(9).toString('hex'),
    onStatement: () => {
      statements++;
    },
  });
  cleanups.unshift(() => planetscale.close());
  const upstash = await startUpstashStandIn({ redisUrl: UPSTASH_REDIS, token: randomBytes(12).toString('hex') });
  cleanups.unshift(() => upstash.close());
  build = await building;
  cleanups.unshift(() => build?.remove());
  workerd = await startWorkerd(
    build.script,
    {
      DATABASE_URL: planetscale.url,
      UPSTASH_REDIS_REST_URL: upstash.url,
      UPSTASH_REDIS_REST_TOKEN: upstash.token,
      BASIC_AUTH: `admin:${PASSWORD}`,
      COOKIE_SECRET: randomBytes(24).toString('hex'),
    },
    { headers: AUTH },
  );
  cleanups.unshift(() => workerd?.dispose());
}, 180_000);

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

function running(): Workerd {
  if (!workerd) throw new Error('the set-up did not finish (see its failure)');
  return workerd;
}

/** A query no other test asked for, so its entry is this test's alone. */
const fresh = () => randomBytes(4).toString('hex');

/**
 * Asks until the answer comes from the cache (it is stored after the first
 * answer went out), then asks once more, counting the statements that one
 * sent. The entry was stored just before the first HIT, so the last request
 * falls in its two seconds.
 */
async function cachedTwice(path: string, headers: Record<string, string> = {}) {
  const worker = running();
  const first = await worker.fetch(path, headers);
  expect(first.status, path).toBe(200);
  expect(first.headers.get('x-stalk-cache'), path).toBe('MISS');
  await waitFor(async () => (await worker.fetch(path, headers)).headers.get('x-stalk-cache') === 'HIT', 1_500, `${path} in the cache`, 20);
  const before = statements;
  const second = await worker.fetch(path, headers);
  return { first, second, sent: statements - before };
}

describe('the task-list cache at the edge', () => {
  it('serves the /tasks panel again from the cache without asking the database', async () => {
    const path = `/tasks?state=FAILURE&name=jobs.kind_1&probe=${fresh()}`;
    const { first, second, sent } = await cachedTwice(path, FRAGMENT);
    expect(second.headers.get('x-stalk-cache')).toBe('HIT');
    expect(sent).toBe(0);
    expect(second.text).toBe(first.text);
    expect(first.text).toContain('list-cache-003');
    expect(first.text).not.toContain('<html');
  });

  it('serves /api/tasks again from the cache, and another query from the database', async () => {
    const probe = fresh();
    const { first, second, sent } = await cachedTwice(`/api/tasks?limit=5&state=FAILURE&probe=${probe}`);
    expect(second.headers.get('x-stalk-cache')).toBe('HIT');
    expect(sent).toBe(0);
    expect(JSON.parse(second.text)).toEqual(JSON.parse(first.text));
    expect(Object.keys(JSON.parse(first.text))).toHaveLength(5);

    // The same list with another filter, or another page: not the entry above.
    for (const other of [`/api/tasks?limit=5&state=SUCCESS&probe=${probe}`, `/api/tasks?limit=5&state=FAILURE&offset=5&probe=${probe}`]) {
      const before = statements;
      const answer = await running().fetch(other);
      expect(answer.status, other).toBe(200);
      expect(answer.headers.get('x-stalk-cache'), other).toBe('MISS');
      expect(statements - before, other).toBeGreaterThan(0);
      expect(answer.text, other).not.toBe(first.text);
    }
  });

  it("serves the DataTables list to every asker with the asker's own draw", async () => {
    const probe = fresh();
    const path = (draw: number) => `/tasks/datatable?draw=${draw}&start=0&length=4&search%5Bvalue%5D=refused&_=${probe}${draw}`;
    const worker = running();
    const first = await worker.fetch(path(1));
    expect(first.headers.get('x-stalk-cache')).toBe('MISS');
    let hit: Awaited<ReturnType<Workerd['fetch']>> | undefined;
    let sent = -1;
    let draw = 2;
    await waitFor(
      async () => {
        draw++;
        const before = statements;
        hit = await worker.fetch(path(draw));
        sent = statements - before;
        return hit.headers.get('x-stalk-cache') === 'HIT';
      },
      1_500,
      'the list in the cache',
      20,
    );
    expect(sent).toBe(0);
    const cached = JSON.parse(hit?.text ?? '{}') as Record<string, unknown>;
    const original = JSON.parse(first.text) as Record<string, unknown>;
    expect(cached.draw).toBe(draw);
    expect(original.draw).toBe(1);
    expect({ ...cached, draw: 1 }).toEqual(original);
    expect(original.recordsFiltered).toBe(10);

    // A draw the route refuses is refused, entry or not.
    const refused = await worker.fetch(`/tasks/datatable?draw=x1&start=0&length=4&search%5Bvalue%5D=refused&_=${probe}`);
    expect(refused.status).toBe(400);
    expect(refused.headers.get('x-stalk-cache')).toBeNull();
  });

  it('refuses a request without valid credentials before the cache', async () => {
    const path = `/api/tasks?limit=3&probe=${fresh()}`;
    const panel = `/tasks?probe=${fresh()}`;
    await cachedTwice(path);
    await cachedTwice(panel, FRAGMENT);
    const wrong = { Authorization: `Basic ${Buffer.from('admin:not-the-password').toString('base64')}` };
    for (const headers of [{ Authorization: '' }, wrong]) {
      const api = await running().fetch(path, headers);
      expect(api.status).toBe(401);
      expect(api.headers.get('x-stalk-cache')).toBeNull();
      expect(api.text).not.toContain('list-cache-');
      const fragment = await running().fetch(panel, { ...FRAGMENT, ...headers });
      expect(fragment.status).toBe(401);
      expect(fragment.text).not.toContain('list-cache-');
    }
  });

  it("never shares a signed-in viewer's full tasks page, and lets no-cache through", async () => {
    const path = `/tasks?probe=${fresh()}`;
    for (let i = 0; i < 2; i++) {
      const before = statements;
      const page = await running().fetch(path);
      expect(page.status).toBe(200);
      expect(page.text).toContain('<html');
      expect(page.headers.get('x-stalk-cache')).toBeNull();
      expect(statements - before).toBeGreaterThan(0);
    }
    const api = `/api/tasks?limit=2&probe=${fresh()}`;
    await cachedTwice(api);
    const before = statements;
    const fresher = await running().fetch(api, { 'Cache-Control': 'no-cache' });
    expect(fresher.headers.get('x-stalk-cache')).toBeNull();
    expect(statements - before).toBeGreaterThan(0);
  });

  it('asks the database again once the entry is over', async () => {
    const path = `/tasks?probe=${fresh()}`;
    const { second } = await cachedTwice(path, FRAGMENT);
    expect(second.headers.get('x-stalk-cache')).toBe('HIT');
    const before = statements;
    const later = await waitFor(
      async () => {
        const answer = await running().fetch(path, FRAGMENT);
        return answer.headers.get('x-stalk-cache') === 'MISS' ? answer : undefined;
      },
      10_000,
      'the panel rendered again',
      100,
    );
    expect(later.status).toBe(200);
    expect(statements - before).toBeGreaterThan(0);
  });
});
