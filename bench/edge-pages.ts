// npm run bench:edge-pages -- [--requests 15] [--latency 20] [--tasks 2000] [--metric-names 100] [--metric-workers 20]
//   [--only /metrics] [--redis-db 12]
//
// What each Worker page costs in database round trips. The Worker (built by
// wrangler, run under workerd through Miniflare) reads a seeded MariaDB
// through the PlanetScale stand-in, and the collector's hot state through the
// Upstash stand-in; every fetch() the Worker makes is timed on its way out.
// Every request says `Cache-Control: no-cache`, so the edge cache steps aside
// and each one reaches the database.
//
// Per page and fragment, p50 over --requests:
// - seq: sequential round trips, the longest chain of subrequests (PlanetScale
//   and Upstash) each of which left only after the one before was answered,
//   measured with --latency ms added to every answer (so that overlapping
//   queries overlap plainly). One round trip = the page waits one latency.
// - sql: SQL statements the PlanetScale stand-in answered; rest: Upstash calls.
// - wall@L: the request's wall time with the latency.
// - wall@0 and cpu~: with no latency added, the wall time, and the wall time
//   less the time spent waiting for subrequests. workerd does not report CPU
//   per request; cpu~ is the proxy (it still includes Miniflare's dispatch).
//
// Seeds --tasks tasks (a tenth failed, some with children) on 4 workers, and
// for /metrics the counters and histograms of --metric-names task names on
// --metric-workers workers (Flower's and celery-exporter's series, as a
// cluster of that size would have). Needs MariaDB on 3306 and Redis on 6379,
// as the tests do.

import { randomBytes } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { type ExecutedStatement, startPlanetScaleStandIn } from '../dev/standins/planetscale';
import { startUpstashStandIn } from '../dev/standins/upstash';
import { workerRecords } from '../src/queries/workers';
import { HOT_WORKERS_KEY, type WorkersSnapshot } from '../src/shared/hot-state';
import { formatLe, STORED_BUCKETS } from '../src/shared/histograms';
import { createLogger } from '../src/shared/log';
import type { EventCountersTable, HistogramBucketsTable, HistogramTotalsTable, NewTaskRow } from '../src/shared/schema';
import { stateKey } from '../src/shared/task-states';
import { DEFAULT_RUNTIME_BUCKETS } from '../src/metrics/buckets';
import { buildWorker, startWorkerd, type Workerd } from '../test/workerd/harness';
import { storeMetricsSnapshot } from '../worker-collector/metrics-render';
import { foldWorkerEvent, workerToRow } from '../worker-collector/fold/worker';
import { TASK_COLUMNS } from '../worker-collector/fold/merge';
import { migrateToLatest } from '../worker-collector/migrations';
import { type OpenDatabase, openDatabase } from '../worker-collector/store/db';
import { StoreWriter } from '../worker-collector/store/writer';

interface Args {
  requests: number;
  latency: number;
  tasks: number;
  metricNames: number;
  metricWorkers: number;
  only: string[];
  redisDb: number;
  mysqlServer: string;
}

function readArgs(argv: string[]): Args {
  const args: Args = {
    requests: 15,
    latency: 20,
    tasks: 2_000,
    metricNames: 100,
    metricWorkers: 20,
    only: [],
    redisDb: 12,
    mysqlServer: process.env.STALK_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!.replace(/^--/, '');
    const text = argv[++i] ?? '';
    if (flag === 'only') {
      args.only.push(text);
      continue;
    }
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${flag} needs a number`);
    if (flag === 'requests') args.requests = Math.max(1, value);
    else if (flag === 'latency') args.latency = value;
    else if (flag === 'tasks') args.tasks = value;
    else if (flag === 'metric-names') args.metricNames = value;
    else if (flag === 'metric-workers') args.metricWorkers = value;
    else if (flag === 'redis-db') args.redisDb = value;
    else throw new Error(`unknown option --${flag}`);
  }
  return args;
}

const args = readArgs(process.argv.slice(2));
const NOW = Date.now() / 1000;
const WORKERS = ['celery@edge-1', 'celery@edge-2', 'celery@edge-3', 'celery@edge-4'];
const PASSWORD = randomBytes(12).toString('hex');
const AUTH = { Authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` };
const log = createLogger('bench', 'error');
/** The Worker's defaults (wrangler.toml), so its snapshot is servable; an interval long enough for the measurement. */
const SNAPSHOT_SETTINGS = { intervalSeconds: 600, purgeOfflineWorkers: 0, runtimeBuckets: DEFAULT_RUNTIME_BUCKETS };

const uuidOf = (n: number) =>
  `${((n * 2654435761) >>> 0).toString(16).padStart(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/** A finished task as the collector would have stored it; every tenth task is a child of the one before. */
function task(n: number, total: number): NewTaskRow {
  const uuid = uuidOf(n);
  const failed = n % 10 === 3;
  const received = NOW - (total - n) * 0.5;
  const started = received + 0.002;
  const done = started + 0.005 + (n % 50) / 1000;
  const state = failed ? 'FAILURE' : 'SUCCESS';
  const parent = n % 10 === 1 ? uuidOf(n - 1) : null;
  return {
    uuid,
    name: `app.tasks.job_${n % 20}`,
    state,
    state_key: stateKey(state, done),
    timestamp: done,
    clock: n,
    sent: received - 0.001,
    received,
    started,
    succeeded: failed ? null : done,
    failed: failed ? done : null,
    retried: null,
    revoked: null,
    rejected: null,
    args: `(${n}, 'order-${n}')`,
    kwargs: `{'customer': 'c${n % 500}'}`,
    result: failed ? null : `{'order': ${n}, 'ok': True}`,
    exception: failed ? `ValueError('order ${n} refused by the bank')` : null,
    traceback: failed ? 'Traceback (most recent call last):\n  File "app/tasks.py", line 12, in job\nValueError' : null,
    worker: WORKERS[n % WORKERS.length]!,
    client: 'web@frontend',
    runtime: done - started,
    retries: 0,
    eta: null,
    expires: null,
    root_id: parent ?? uuid,
    parent_id: parent,
    queue: 'celery',
    exchange: '',
    routing_key: 'celery',
  };
}

function workerRow(hostname: string) {
  return workerToRow(
    foldWorkerEvent(undefined, {
      kind: 'worker',
      type: 'worker-heartbeat',
      hostname,
      timestamp: Date.now() / 1000,
      clock: 1,
      utcoffset: 0,
      pid: 1,
      localReceived: Date.now() / 1000,
      freq: 2,
      sw_ident: 'py-celery',
      sw_ver: '5.2.6',
      sw_sys: 'Linux',
      loadavg: [0.5, 0.4, 0.3],
      active: 0,
      processed: 100,
    }),
  );
}

const EMPTY_BATCH = {
  tasks: [],
  timelines: [],
  unresolved: [],
  workers: [],
  counters: [],
  histogramBuckets: [],
  histogramTotals: [],
  taskStats: [],
  taskStatsAll: [],
  taskStatsExceptions: [],
  status: null,
  runtimeBounds: [],
};

async function seed(database: OpenDatabase): Promise<void> {
  const writer = new StoreWriter(database, log);
  const rows = Array.from({ length: args.tasks }, (_, n) => task(n, args.tasks));
  await writer.write({
    ...EMPTY_BATCH,
    tasks: rows.map((row) => TASK_COLUMNS.map((c) => (row as unknown as Record<string, unknown>)[c] ?? null)),
    timelines: rows.map((row) => [
      row.uuid,
      JSON.stringify([{ type: 'task-succeeded', timestamp: row.timestamp, hostname: row.worker, clock: row.clock, data: null }]),
    ]),
    workers: WORKERS.map(workerRow),
  });
  // /metrics: every series a cluster of --metric-names x --metric-workers has.
  const hosts = Array.from({ length: args.metricWorkers }, (_, i) => `celery@metrics-${i}`);
  const names = Array.from({ length: args.metricNames }, (_, i) => `app.tasks.kind_${i}`);
  const labels = [...STORED_BUCKETS.map(formatLe), '+Inf'];
  for (const hostname of hosts) {
    const counters: EventCountersTable[] = [];
    const buckets: HistogramBucketsTable[] = [];
    const totals: HistogramTotalsTable[] = [];
    for (const task_name of names) {
      const base = { hostname, task_name, queue: 'celery' };
      for (const type of ['task-sent', 'task-received', 'task-started', 'task-succeeded', 'task-retried', 'task-revoked', 'task-rejected'])
        counters.push({ ...base, type, exception: '', count: 50 });
      counters.push({ ...base, type: 'task-failed', exception: 'ValueError', count: 5 });
      for (const metric of ['runtime', 'queue_wait']) {
        labels.forEach((le, i) => {
          buckets.push({ ...base, metric, le, count: (i * 7) % 11 });
        });
        totals.push({ ...base, metric, sum: 12.5, count: 55 });
      }
    }
    await writer.write({ ...EMPTY_BATCH, workers: [workerRow(hostname)], counters, histogramBuckets: buckets, histogramTotals: totals });
  }
}

interface Page {
  label: string;
  path: string;
  headers?: Record<string, string>;
  /** Runs before the page is measured (the metrics snapshot is stored, or removed). */
  prepare?: 'snapshot' | 'no-snapshot';
}

const PAGES: Page[] = [
  { label: '/', path: '/' },
  { label: '/workers (fragment)', path: '/workers', headers: { 'HX-Request': 'true' } },
  { label: '/worker/:name', path: `/worker/${encodeURIComponent(WORKERS[0]!)}` },
  { label: '/tasks', path: '/tasks' },
  { label: '/tasks (fragment)', path: '/tasks?state=FAILURE', headers: { 'HX-Request': 'true' } },
  { label: '/task/:id', path: `/task/${uuidOf(args.tasks - 10)}` },
  { label: '/tasks/datatable', path: '/tasks/datatable?draw=1&start=0&length=15' },
  { label: '/tasks/datatable (search)', path: '/tasks/datatable?draw=1&start=0&length=15&search%5Bvalue%5D=refused' },
  { label: '/api/tasks', path: '/api/tasks?limit=15' },
  { label: '/broker', path: '/broker' },
  // Prometheus asks for gzip.
  { label: '/metrics (live)', path: '/metrics', prepare: 'no-snapshot' },
  { label: '/metrics (snapshot)', path: '/metrics', headers: { 'Accept-Encoding': 'gzip' }, prepare: 'snapshot' },
];

interface Interval {
  startedAt: number;
  endedAt: number;
}

/** The longest chain of intervals each starting after the one before ended: the round trips waited for one after another. */
export function sequentialRoundTrips(intervals: Interval[]): number {
  const sorted = [...intervals].sort((a, b) => a.startedAt - b.startedAt);
  const depth: number[] = [];
  let longest = 0;
  sorted.forEach((current, i) => {
    let before = 0;
    for (let j = 0; j < i; j++) if (sorted[j]!.endedAt <= current.startedAt) before = Math.max(before, depth[j]!);
    depth[i] = before + 1;
    longest = Math.max(longest, depth[i]!);
  });
  return longest;
}

/** Time covered by at least one interval. */
function covered(intervals: Interval[]): number {
  const sorted = [...intervals].sort((a, b) => a.startedAt - b.startedAt);
  let total = 0;
  let end = -Infinity;
  for (const { startedAt, endedAt } of sorted) {
    if (endedAt <= end) continue;
    total += endedAt - Math.max(startedAt, end);
    end = endedAt;
  }
  return total;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
};

interface Sample {
  wall: number;
  waiting: number;
  seq: number;
  sql: number;
  rest: number;
  status: number;
  bytes: number;
  /** Lines that are not comments: the series of a /metrics answer. */
  series: number;
  variant: string;
}

async function main(): Promise<void> {
  console.log(
    `bench:edge-pages  requests=${args.requests} per page  latency=${args.latency} ms  tasks=${args.tasks}  metrics=${args.metricNames} names x ${args.metricWorkers} workers`,
  );
  const name = `stalk_bench_edge_${process.pid}`;
  const admin = await createConnection(args.mysqlServer);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  const cleanups: (() => Promise<unknown>)[] = [
    async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await admin.end();
    },
  ];
  let workerd: Workerd | undefined;
  try {
    const mysqlUrl = `${args.mysqlServer.replace(/\/$/, '')}/${name}`;
    const database = await openDatabase(mysqlUrl);
    cleanups.unshift(() => database.close());
    await migrateToLatest(database.db);
    const seeding = performance.now();
    await seed(database);
    console.log(`  seeded in ${((performance.now() - seeding) / 1000).toFixed(1)} s`);

    const redisUrl = `redis://127.0.0.1:6379/${args.redisDb}`;
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
    cleanups.unshift(async () => {
      await redis.del(HOT_WORKERS_KEY);
      redis.disconnect();
    });
    // The collector's hot state, as it would publish it (the dashboard reads workers from it).
    const records = await workerRecords(database.db);
    const publish = () =>
      redis.set(HOT_WORKERS_KEY, JSON.stringify({ updated_at: Date.now() / 1000, workers: records } satisfies WorkersSnapshot), 'EX', 60);

    const statements: ExecutedStatement[] = [];
    const planetscale = await startPlanetScaleStandIn({
      mysqlUrl,
      username: 'bench',
      password: randomBytes(12).toString('hex'),
      onStatement: (s) => statements.push(s),
    });
    cleanups.unshift(() => planetscale.close());
    const upstash = await startUpstashStandIn({ redisUrl, token: randomBytes(12).toString('hex') });
    cleanups.unshift(() => upstash.close());
    const upstashPort = new URL(upstash.url).port;
    // Upstash's round trip is simulated here, at the Worker's door, as PlanetScale's is in its stand-in.
    let upstashDelay = 0;

    const build = await buildWorker();
    cleanups.unshift(async () => build.remove());
    const subrequests: (Interval & { url: string })[] = [];
    workerd = await startWorkerd(
      build.script,
      {
        DATABASE_URL: planetscale.url,
        UPSTASH_REDIS_REST_URL: upstash.url,
        UPSTASH_REDIS_REST_TOKEN: upstash.token,
        BASIC_AUTH: `admin:${PASSWORD}`,
        COOKIE_SECRET: randomBytes(24).toString('hex'),
        LOG_LEVEL: 'error',
      },
      {
        headers: { ...AUTH, 'Cache-Control': 'no-cache' },
        onSubrequestDone: (url, startedAt, endedAt) => subrequests.push({ url, startedAt, endedAt }),
        subrequestDelayMs: (url) => (new URL(url).port === upstashPort ? upstashDelay : 0),
      },
    );

    const base = await workerd.mf.ready;
    /** A GET to workerd over plain HTTP; the body as sent (gzip stays gzip), as text only when it was not encoded. */
    function rawFetch(path: string, headers: Record<string, string>) {
      return new Promise<{ status: number; headers: Headers; text: string; raw: number }>((resolve, reject) => {
        const request = httpGet(new URL(path, base), { headers: { ...AUTH, 'Cache-Control': 'no-cache', ...headers } }, (answer) => {
          const chunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => chunks.push(chunk));
          answer.on('end', () => {
            const body = Buffer.concat(chunks);
            const encoded = answer.headers['content-encoding'] === 'gzip';
            const own = new Headers();
            for (const [name, value] of Object.entries(answer.headers)) if (typeof value === 'string') own.set(name, value);
            resolve({ status: answer.statusCode ?? 0, headers: own, text: encoded ? '' : body.toString('utf8'), raw: body.byteLength });
          });
          answer.on('error', reject);
        });
        request.on('error', reject);
      });
    }

    async function measure(page: Page): Promise<Sample> {
      statements.length = 0;
      subrequests.length = 0;
      const started = performance.now();
      // Pages asked for gzip are read raw from workerd's socket, as a scraper would: no client decoding in the figure.
      const response = page.headers?.['Accept-Encoding']
        ? await rawFetch(page.path, page.headers)
        : await workerd!.fetch(page.path, page.headers ?? {});
      const wall = performance.now() - started;
      const upstashCalls = subrequests.filter((s) => new URL(s.url).port === upstashPort);
      return {
        wall,
        waiting: covered(subrequests),
        seq: sequentialRoundTrips(subrequests),
        sql: statements.length,
        rest: upstashCalls.length,
        status: response.status,
        bytes: 'raw' in response ? Number(response.raw) : Buffer.byteLength(response.text),
        series: response.text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length,
        variant: (response.headers.get('X-Stalk-Metrics') ?? '').split(';')[0] ?? '',
      };
    }

    const pages = args.only.length > 0 ? PAGES.filter((p) => args.only.includes(p.label) || args.only.includes(p.path)) : PAGES;
    const header = ['page', 'status', 'seq', 'sql', 'rest', `wall@${args.latency}`, 'wall@0', 'cpu~', 'KB'];
    const table: string[][] = [];
    const notes: string[] = [];
    for (const page of pages) {
      await publish();
      if (page.prepare === 'no-snapshot') await database.db.deleteFrom('metrics_snapshot').execute();
      if (page.prepare === 'snapshot') {
        // As the collector's thread does every interval (worker-collector/metrics-snapshot.ts).
        const f = await storeMetricsSnapshot(database.db, SNAPSHOT_SETTINGS);
        notes.push(
          `collector's rendering: read ${f.readMs.toFixed(0)} ms, render ${f.renderMs.toFixed(0)} ms (its own thread), ${(f.textBytes / 1e6).toFixed(1)} MB -> ${(f.gzipBytes / 1e6).toFixed(2)} MB gzipped in ${f.parts} part(s)`,
        );
      }
      // Warm-up: the isolate, the connection pools, MariaDB's caches.
      for (let i = 0; i < 3; i++) await measure(page);
      planetscale.setLatency(0);
      upstashDelay = 0;
      const fast: Sample[] = [];
      for (let i = 0; i < args.requests; i++) fast.push(await measure(page));
      planetscale.setLatency(args.latency);
      upstashDelay = args.latency;
      const slow: Sample[] = [];
      for (let i = 0; i < args.requests; i++) slow.push(await measure(page));
      planetscale.setLatency(0);
      upstashDelay = 0;
      const first = slow[0]!;
      table.push([
        page.label + (first.variant ? ` [${first.variant}]` : ''),
        String(first.status),
        String(median(slow.map((s) => s.seq))),
        String(median(slow.map((s) => s.sql))),
        String(median(slow.map((s) => s.rest))),
        `${median(slow.map((s) => s.wall)).toFixed(1)} ms`,
        `${median(fast.map((s) => s.wall)).toFixed(1)} ms`,
        `${median(fast.map((s) => s.wall - s.waiting)).toFixed(1)} ms`,
        (first.bytes / 1024).toFixed(1),
      ]);
      if (first.status !== 200) console.log(`  ${page.label}: status ${first.status}`);
      if (page.prepare === 'no-snapshot') notes.push(`/metrics: ${first.series} series, ${(first.bytes / 1e6).toFixed(1)} MB`);
      if (page.headers?.['Accept-Encoding']) notes.push(`${page.label}: KB as sent (gzip when the Worker sent it so)`);
    }
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
    console.log(line(header));
    console.log(`|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
    for (const row of table) console.log(line(row));
    for (const note of notes) console.log(note);
    console.log(
      `seq: sequential round trips (PlanetScale + Upstash); sql: statements; rest: Upstash calls; cpu~: wall@0 less the time waiting on subrequests (p50s).`,
    );
  } finally {
    await workerd?.dispose().catch(() => undefined);
    for (const cleanup of cleanups) await cleanup().catch((error: unknown) => console.error(error));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
