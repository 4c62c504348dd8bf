// /metrics from the Worker: the bundle `wrangler deploy` builds, run under
// workerd (prom-client with nodejs_compat), reading MariaDB through the
// PlanetScale stand-in, must answer what the Node app answers from the same
// database.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlanetScaleStandIn } from '../../dev/standins/planetscale';
import { migrateToLatest } from '../../worker-collector/migrations';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { testApp } from '../support/app';
import { createTestDatabase, openTestConnection } from '../support/databases';
import { buildWorker, startWorkerd, type Workerd } from '../workerd/harness';
import { canonical, type Family, parseExposition, sampleValue } from './exposition';
import { ALPHA, seedCluster } from './seed';

let database: OpenDatabase | undefined;
let workerd: Workerd | undefined;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

function running(): { database: OpenDatabase; workerd: Workerd } {
  if (!database || !workerd) throw new Error('the set-up did not finish (see its failure)');
  return { database, workerd };
}

async function fromWorker(workerd: Workerd): Promise<Map<string, Family>> {
  const response = await workerd.fetch('/metrics');
  expect(response.status, response.text).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(response.text);
}

beforeAll(async () => {
  const building = buildWorker();
  building.then((b) => cleanups.push(() => b.remove())).catch(() => undefined);
  const target = await createTestDatabase('mariadb');
  cleanups.push(() => target.drop());
  const opened = await openTestConnection(target.url);
  cleanups.push(() => opened.close());
  await migrateToLatest(opened.db);
  await seedCluster(opened);
  const planetscale = await startPlanetScaleStandIn({
    mysqlUrl: target.url,
    username: 'metrics',
    password: randomBytes(9).toString('hex'),
  });
  cleanups.push(() => planetscale.close());
  const build = await building;
  // /metrics reads no Redis: the Upstash bindings only have to be well-formed.
  const started = await startWorkerd(build.script, {
    DATABASE_URL: planetscale.url,
    UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:9',
    UPSTASH_REDIS_REST_TOKEN: 'unused',
    // Signed-in users for pages; Prometheus scrapes without credentials.
    BASIC_AUTH: `admin:${randomBytes(9).toString('hex')}`,
    COOKIE_SECRET: randomBytes(24).toString('hex'),
    METRICS_OPEN: 'true',
  });
  cleanups.push(() => started.dispose());
  database = opened;
  workerd = started;
}, 90_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse())
    await Promise.resolve()
      .then(cleanup)
      .catch(() => undefined);
});

describe('/metrics from the Worker under workerd', () => {
  it("answers the Node app's numbers for the same database", async () => {
    const { database, workerd } = running();
    const edge = await fromWorker(workerd);
    const response = await testApp(database).request('/metrics');
    const node = parseExposition(await response.text());
    expect(canonical(edge)).toEqual(canonical(node));
    // And they are the seeded ones (not two empty answers).
    expect(sampleValue(edge, 'flower_events_total', { task: 'tasks.add', type: 'task-succeeded', worker: ALPHA })).toBe(5);
    expect(
      sampleValue(edge, 'celery_task_failed_total', {
        name: 'tasks.fail',
        hostname: 'web-1',
        exception: 'ValueError',
        queue_name: 'celery',
      }),
    ).toBe(2);
    expect(sampleValue(edge, 'celery_task_runtime_count', { name: 'tasks.add', hostname: 'web-1', queue_name: 'celery' })).toBe(5);
    expect(sampleValue(edge, 'celery_queue_length', { queue_name: 'celery' })).toBe(7);
    expect(sampleValue(edge, 'stalk_events_dropped_total', { reason: 'buffer-full' })).toBe(5);
  });

  it('computes every scrape afresh from the database', async () => {
    const { database, workerd } = running();
    const before = await fromWorker(workerd);
    expect(canonical(await fromWorker(workerd))).toEqual(canonical(before));
    await database.db.updateTable('queues').set({ messages: 11 }).where('name', '=', 'celery').execute();
    const after = await fromWorker(workerd);
    expect(sampleValue(after, 'celery_queue_length', { queue_name: 'celery' })).toBe(11);
    expect(sampleValue(after, 'flower_events_total', { task: 'tasks.add', type: 'task-succeeded', worker: ALPHA })).toBe(5);
  });
});
