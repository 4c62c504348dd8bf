// /metrics at the edge from the collector's stored rendering (migration 008,
// src/metrics/snapshot.ts, worker-collector/metrics-snapshot.ts). The built
// Worker under workerd reads MariaDB through the PlanetScale stand-in, which
// counts statements. A fresh rendering is served byte for byte as the Node
// app renders the same state (gzipped or not, as the scraper asks), in one
// statement; a stale one, or one rendered with other options, is not served:
// the Worker renders live and says so. The collector's thread stores
// renderings on its own, every interval.

import { randomBytes } from 'node:crypto';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlanetScaleStandIn } from '../../dev/standins/planetscale';
import { startUpstashStandIn } from '../../dev/standins/upstash';
import { DEFAULT_RUNTIME_BUCKETS } from '../../src/metrics/buckets';
import { readMetricsSnapshot } from '../../src/metrics/snapshot';
import { createLogger } from '../../src/shared/log';
import { formatLe, STORED_BUCKETS } from '../../src/shared/histograms';
import type { EventCountersTable, HistogramBucketsTable, HistogramTotalsTable } from '../../src/shared/schema';
import { foldWorkerEvent, workerToRow } from '../../worker-collector/fold/worker';
import { type MetricsSnapshotSettings, storeMetricsSnapshot } from '../../worker-collector/metrics-render';
import { startMetricsSnapshots } from '../../worker-collector/metrics-snapshot';
import { migrateToLatest } from '../../worker-collector/migrations';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { testApp } from '../support/app';
import { createTestDatabase, openTestConnection } from '../support/databases';
import { waitFor } from '../support/stalk';
import { buildWorker, startWorkerd, type WorkerBuild, type Workerd } from './harness';

const UPSTASH_REDIS = 'redis://127.0.0.1:6379/9';
const PASSWORD = randomBytes(12).toString('hex');
const METRICS_TOKEN = randomBytes(16).toString('hex');
const SCRAPE = { Authorization: `Bearer ${METRICS_TOKEN}` };
/** The Worker's defaults (wrangler.toml): no purge, Flower's buckets. */
const SETTINGS: MetricsSnapshotSettings = { intervalSeconds: 15, purgeOfflineWorkers: 0, runtimeBuckets: DEFAULT_RUNTIME_BUCKETS };

let database: OpenDatabase | undefined;
let build: WorkerBuild | undefined;
let workerd: Workerd | undefined;
let statements: string[] = [];
const cleanups: (() => Promise<unknown> | unknown)[] = [];

/** Counters and histograms of a small cluster, and its workers (heartbeating now, so alive either way). */
async function seed(db: OpenDatabase): Promise<void> {
  const now = Date.now() / 1000;
  const hosts = ['celery@m-1', 'celery@m-2', 'celery@m-3'];
  const counters: EventCountersTable[] = [];
  const buckets: HistogramBucketsTable[] = [];
  const totals: HistogramTotalsTable[] = [];
  for (const hostname of hosts) {
    for (let n = 0; n < 6; n++) {
      const base = { hostname, task_name: `jobs.kind_${n}`, queue: 'celery' };
      for (const type of ['task-received', 'task-started', 'task-succeeded'])
        counters.push({ ...base, type, exception: '', count: 10 + n });
      counters.push({ ...base, type: 'task-failed', exception: 'ValueError', count: n });
      for (const metric of ['runtime', 'queue_wait']) {
        [...STORED_BUCKETS.map(formatLe), '+Inf'].forEach((le, i) => {
          buckets.push({ ...base, metric, le, count: (i + n) % 4 });
        });
        totals.push({ ...base, metric, sum: 1.25 * n, count: 7 });
      }
    }
    const worker = foldWorkerEvent(undefined, {
      kind: 'worker',
      type: 'worker-heartbeat',
      hostname,
      timestamp: now,
      clock: 1,
      utcoffset: 0,
      pid: 1,
      localReceived: now,
      freq: 2,
      sw_ident: 'py-celery',
      sw_ver: '5.4.0',
      sw_sys: 'Linux',
      loadavg: [0.1, 0.1, 0.1],
      active: 0,
      processed: 5,
    });
    await db.db.insertInto('workers').values(workerToRow(worker)).execute();
  }
  await db.db.insertInto('event_counters').values(counters).execute();
  await db.db.insertInto('histogram_buckets').values(buckets).execute();
  await db.db.insertInto('histogram_totals').values(totals).execute();
}

beforeAll(async () => {
  const building = buildWorker();
  const target = await createTestDatabase('mariadb');
  cleanups.push(() => target.drop());
  database = await openTestConnection(target.url);
  cleanups.unshift(() => database?.close());
  await migrateToLatest(database.db);
  await seed(database);
  const planetscale = await startPlanetScaleStandIn({
    mysqlUrl: target.url,
    username: 'metrics',
    password: randomBytes(9).toString('hex'),
    onStatement: (s) => statements.push(s.sql),
  });
  cleanups.unshift(() => planetscale.close());
  const upstash = await startUpstashStandIn({ redisUrl: UPSTASH_REDIS, token: randomBytes(12).toString('hex') });
  cleanups.unshift(() => upstash.close());
  build = await building;
  cleanups.unshift(() => build?.remove());
  workerd = await startWorkerd(build.script, {
    DATABASE_URL: planetscale.url,
    UPSTASH_REDIS_REST_URL: upstash.url,
    UPSTASH_REDIS_REST_TOKEN: upstash.token,
    BASIC_AUTH: `admin:${PASSWORD}`,
    COOKIE_SECRET: randomBytes(24).toString('hex'),
    METRICS_TOKEN,
  });
  cleanups.unshift(() => workerd?.dispose());
}, 180_000);

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

function ready(): { db: OpenDatabase; worker: Workerd } {
  if (!database || !workerd) throw new Error('the set-up did not finish (see its failure)');
  return { db: database, worker: workerd };
}

/** What the Node app's /metrics answers for the stored state, as of `now`. */
async function nodeMetrics(db: OpenDatabase, now: number): Promise<string> {
  const response = await testApp(db, { now }).request('/metrics');
  expect(response.status).toBe(200);
  return response.text();
}

/** The Worker's /metrics with the statements it sent, and its raw body bytes (undecoded). */
async function scrape(headers: Record<string, string>) {
  statements = [];
  const response = await ready().worker.mf.dispatchFetch('http://stalk.test/metrics', { headers: { ...SCRAPE, ...headers } });
  const bytes = Buffer.from(await response.arrayBuffer());
  return { response, bytes, sent: [...statements] };
}

/** /metrics over plain HTTP from workerd's own socket: the bytes as sent, no decoding. */
async function rawScrape(headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; bytes: Buffer }> {
  const url = await ready().worker.mf.ready;
  return new Promise((resolve, reject) => {
    const request = httpGet(new URL('/metrics', url), { headers: { ...SCRAPE, ...headers } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, bytes: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

describe('/metrics from the stored rendering', () => {
  it('serves a fresh rendering byte for byte as Node renders the same state, in one statement', async () => {
    const { db } = ready();
    const now = Date.now() / 1000;
    const figures = await storeMetricsSnapshot(db.db, SETTINGS, now);
    expect(figures.parts).toBe(1);
    const expected = await nodeMetrics(db, now);
    expect(expected).toContain('flower_events_total');
    expect(expected).toContain('celery_task_runtime_bucket');
    expect(figures.textBytes).toBe(Buffer.byteLength(expected));

    // A scraper that takes gzip (Prometheus) gets the stored bytes as they are, over the wire (not decoded by a client).
    statements = [];
    const zipped = await rawScrape({ 'Accept-Encoding': 'gzip' });
    expect(zipped.status).toBe(200);
    expect(zipped.headers['x-stalk-metrics']).toMatch(/^snapshot; age=\d+\.\d$/);
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatch(/metrics_snapshot/);
    const stored = await readMetricsSnapshot(db.db);
    expect(zipped.bytes.equals(Buffer.from(stored?.gzip ?? []))).toBe(true);
    expect(gunzipSync(zipped.bytes).toString('utf8')).toBe(expected);

    // One that does not gets the text.
    const plain = await scrape({ 'Accept-Encoding': 'identity' });
    expect(plain.response.headers.get('content-encoding')).toBeNull();
    expect(plain.response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(plain.bytes.toString('utf8')).toBe(expected);
    expect(plain.sent).toHaveLength(1);
  });

  it('keeps a rendering larger than one part whole', async () => {
    const { db } = ready();
    const now = Date.now() / 1000;
    // Random label values do not compress: enough of them make several parts of 512 KiB.
    const noise = Array.from({ length: 12_000 }, (_, i) => ({
      hostname: 'celery@m-1',
      task_name: `noise.${randomBytes(40).toString('base64url')}`,
      queue: 'celery',
      type: 'task-received',
      exception: '',
      count: i,
    }));
    for (let i = 0; i < noise.length; i += 2_000)
      await db.db
        .insertInto('event_counters')
        .values(noise.slice(i, i + 2_000))
        .execute();
    try {
      const figures = await storeMetricsSnapshot(db.db, SETTINGS, now);
      expect(figures.parts).toBeGreaterThan(1);
      const plain = await scrape({ 'Accept-Encoding': 'identity' });
      expect(plain.response.headers.get('x-stalk-metrics')).toMatch(/^snapshot/);
      expect(plain.bytes.toString('utf8')).toBe(await nodeMetrics(db, now));
    } finally {
      await db.db.deleteFrom('event_counters').where('task_name', 'like', 'noise.%').execute();
    }
  });

  it('renders live when the rendering is stale, or was rendered with other options', async () => {
    const { db } = ready();
    // Two intervals old: stale.
    await storeMetricsSnapshot(db.db, SETTINGS, Date.now() / 1000 - 2 * SETTINGS.intervalSeconds - 1);
    const stale = await scrape({ 'Accept-Encoding': 'gzip' });
    expect(stale.response.status).toBe(200);
    expect(stale.response.headers.get('x-stalk-metrics')).toMatch(/^live; stale \(3\d\.\d s old\)$/);
    expect(stale.sent.length).toBeGreaterThan(1);
    expect(stale.response.headers.get('content-encoding')).toBeNull();
    expect(stale.bytes.toString('utf8')).toBe(await nodeMetrics(db, Date.now() / 1000));

    // Fresh, but with buckets the Worker was not given: its own would differ.
    await storeMetricsSnapshot(db.db, { ...SETTINGS, runtimeBuckets: [1, 5, 10] }, Date.now() / 1000);
    const other = await scrape({});
    expect(other.response.headers.get('x-stalk-metrics')).toBe('live; rendered with other options');
    expect(other.bytes.toString('utf8')).toContain('le="0.005"');
  });

  it('is stored by the collector thread every interval', async () => {
    const { db } = ready();
    await db.db.deleteFrom('metrics_snapshot').execute();
    const snapshots = startMetricsSnapshots(db.url, 'mysql', { ...SETTINGS, intervalSeconds: 1 }, createLogger('test', 'error'));
    expect(snapshots).not.toBeNull();
    try {
      const first = await waitFor(async () => (await readMetricsSnapshot(db.db)) ?? undefined, 20_000, 'a stored rendering', 100);
      const second = await waitFor(
        async () => {
          const now = await readMetricsSnapshot(db.db);
          return now && now.takenAt > first.takenAt ? now : undefined;
        },
        10_000,
        'the next rendering',
        100,
      );
      // The first is rendered once the thread's connection is open, the next on the timer a second after it started.
      expect(second.takenAt - first.takenAt).toBeGreaterThan(0.2);
      expect(second.takenAt - first.takenAt).toBeLessThan(2.5);
      expect(second.intervalSeconds).toBe(1);
      expect(gunzipSync(second.gzip).toString('utf8')).toBe(await nodeMetrics(db, second.takenAt));
    } finally {
      await snapshots?.stop();
    }
    // Nothing for SQLite, nor with 0.
    expect(startMetricsSnapshots(db.url, 'sqlite', SETTINGS, createLogger('test', 'error'))).toBeNull();
    expect(startMetricsSnapshots(db.url, 'mysql', { ...SETTINGS, intervalSeconds: 0 }, createLogger('test', 'error'))).toBeNull();
  });
});
