// npm run bench:web -- [--tasks 1000000] [--requests 60] [--dialect sqlite|mariadb|both] [--keep]
//                       [--stats-names 50] [--stats-days 30] [--stats-only]
//
// Seeds a database with N finished tasks through the real store (the same
// upserts, timelines, counters and search index the collector writes), then
// times page requests through the real app (in process, so the figures are
// query + render time, no network): the task list with no filter, with
// state:FAILURE, with text searches, and the workers dashboard.
// Prints p50/p95 per page and dialect. The task statistics (/api/stats/tasks
// and the queries of the /stats pages) are timed over --stats-days of rows
// for --stats-names task names, seeded directly in the shape the collector
// and its rollup keep: minute rows for the last 48 hours, hour rows before. A seeded SQLite file is kept under
// ./data/bench-web-<N>.db with --keep and reused by later runs.

import { existsSync } from 'node:fs';
import { createConnection } from 'mysql2/promise';
import { createApp } from '../src/app';
import { authSettings } from '../src/auth/config';
import { NO_AUTH_INPUT } from '../test/support/app';
import type { Services } from '../src/services';
import { NO_HOT_STATE } from '../src/shared/hot-state';
import { createLogger } from '../src/shared/log';
import type { NewTaskRow } from '../src/shared/schema';
import { stateKey } from '../src/shared/task-states';
import { DEFAULT_UI } from '../src/ui/context';
import { TASK_COLUMNS } from '../worker-collector/fold/merge';
import { migrateToLatest } from '../worker-collector/migrations';
import { type OpenDatabase, openDatabase } from '../worker-collector/store/db';
import { StoreWriter } from '../worker-collector/store/writer';
import { SearchIndexer } from '../worker-collector/store/search-index';
import { foldWorkerEvent, workerToRow } from '../worker-collector/fold/worker';
import { BulkWrite } from '../worker-collector/store/upsert';
import { exceptionStats, taskTypeStats, totalStatsSeries } from '../src/queries/stats';
import { STATS_BIN_COUNT, TASK_STATS_VALUE_COLUMNS } from '../src/shared/stats-bins';

interface Args {
  tasks: number;
  requests: number;
  dialects: ('sqlite' | 'mariadb')[];
  keep: boolean;
  mysqlServer: string;
  statsNames: number;
  statsDays: number;
  statsOnly: boolean;
}

function readArgs(argv: string[]): Args {
  const args: Args = {
    tasks: 1_000_000,
    requests: 60,
    dialects: ['sqlite', 'mariadb'],
    keep: false,
    statsNames: 50,
    statsDays: 30,
    statsOnly: false,
    mysqlServer: process.env.STALK_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!.replace(/^--/, '');
    if (flag === 'keep') args.keep = true;
    else if (flag === 'stats-only') args.statsOnly = true;
    else if (flag === 'stats-names') args.statsNames = Number(argv[++i]);
    else if (flag === 'stats-days') args.statsDays = Number(argv[++i]);
    else if (flag === 'tasks') args.tasks = Number(argv[++i]);
    else if (flag === 'requests') args.requests = Number(argv[++i]);
    else if (flag === 'dialect') {
      const d = argv[++i];
      args.dialects = d === 'both' ? ['sqlite', 'mariadb'] : [d as 'sqlite' | 'mariadb'];
    } else throw new Error(`unknown option --${flag}`);
  }
  return args;
}

const NOW = Date.now() / 1000;
const WORKERS = ['celery@worker-1', 'celery@worker-2', 'celery@worker-3', 'celery@worker-4'];

/** A finished task as the collector would have stored it. */
function task(n: number, total: number): NewTaskRow {
  const uuid = `${((n * 2654435761) >>> 0).toString(16).padStart(8, '0')}-${n.toString(16).padStart(4, '0').slice(-4)}-4000-8000-${n.toString(16).padStart(12, '0')}`;
  const failed = n % 10 === 0;
  const received = NOW - (total - n) * 0.01;
  const started = received + 0.002;
  const done = started + 0.005 + (n % 50) / 1000;
  const state = failed ? 'FAILURE' : 'SUCCESS';
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
    kwargs: `{'customer': 'c${n % 5000}', 'priority': ${n % 3}}`,
    result: failed ? null : `{'order': ${n}, 'ok': True}`,
    exception: failed ? `ValueError('order ${n} refused by the bank')` : null,
    traceback: failed ? 'Traceback (most recent call last):\n  File "app/tasks.py", line 12, in job\nValueError' : null,
    worker: WORKERS[n % WORKERS.length]!,
    client: 'web@frontend',
    runtime: done - started,
    retries: 0,
    eta: null,
    expires: null,
    root_id: uuid,
    parent_id: null,
    queue: 'celery',
    exchange: '',
    routing_key: 'celery',
  };
}

async function seed(database: OpenDatabase, total: number): Promise<void> {
  const existing = Number(
    (
      await database.db
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );
  if (existing >= total) {
    console.log(`  reusing ${existing} seeded tasks`);
    return;
  }
  const writer = new StoreWriter(database, createLogger('bench', 'error'));
  const started = performance.now();
  const chunk = 20_000;
  const workers = WORKERS.map((hostname) =>
    workerToRow(
      foldWorkerEvent(undefined, {
        kind: 'worker',
        type: 'worker-heartbeat',
        hostname,
        timestamp: NOW,
        clock: 1,
        utcoffset: 0,
        pid: 1,
        localReceived: NOW,
        freq: 2,
        sw_ident: 'py-celery',
        sw_ver: '5.2.6',
        sw_sys: 'Linux',
        loadavg: [0.5, 0.4, 0.3],
        active: 1,
        processed: total,
      }),
    ),
  );
  for (let from = existing; from < total; from += chunk) {
    const rows = Array.from({ length: Math.min(chunk, total - from) }, (_, i) => task(from + i, total));
    const byType = new Map<string, number>();
    for (const row of rows) {
      const key = `${row.worker}\0${row.name}\0${row.state === 'FAILURE' ? 'task-failed' : 'task-succeeded'}\0${row.state === 'FAILURE' ? 'ValueError' : ''}`;
      byType.set(key, (byType.get(key) ?? 0) + 1);
    }
    await writer.write({
      tasks: rows.map((row) => TASK_COLUMNS.map((c) => (row as unknown as Record<string, unknown>)[c] ?? null)),
      timelines: rows.map((row) => [
        row.uuid,
        JSON.stringify([{ type: 'task-succeeded', timestamp: row.timestamp, hostname: row.worker, clock: row.clock, data: null }]),
      ]),
      unresolved: [],
      workers: from === existing ? workers : [],
      counters: [...byType].map(([key, count]) => {
        const [hostname = '', task_name = '', type = '', exception = ''] = key.split('\0');
        return { hostname, task_name, queue: 'celery', type, exception, count };
      }),
      histogramBuckets: [],
      histogramTotals: [],
      taskStats: [],
      taskStatsAll: [],
      taskStatsExceptions: [],
      status: null,
      runtimeBounds: [],
    });
    if ((from / chunk) % 10 === 0) process.stdout.write(`  seeded ${from + rows.length}\r`);
  }
  console.log(`  seeded ${total - existing} tasks in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  // SQLite's text index is filled after the writes, as the collector's store thread does between flushes.
  if (database.dialect === 'sqlite') await new SearchIndexer(database.db).drain();
}

const STATS_MINUTE_HOURS = 48;

/** Task statistics rows for `names` task names over `days` days before NOW (skipped when already there). */
async function seedStats(database: OpenDatabase, names: number, days: number): Promise<void> {
  const { n } = await database.db
    .selectFrom('task_stats')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  if (Number(n) > 0) {
    console.log(`  reusing ${n} task_stats rows`);
    return;
  }
  const started = performance.now();
  const columns = ['step', 'bucket', 'task_name', ...TASK_STATS_VALUE_COLUMNS];
  const write = new BulkWrite(database.db, database.dialect, 'task_stats', columns, undefined, { sqlite: database.sqlite });
  const writeAll = new BulkWrite(
    database.db,
    database.dialect,
    'task_stats_all',
    ['step', 'bucket', ...TASK_STATS_VALUE_COLUMNS],
    undefined,
    {
      sqlite: database.sqlite,
    },
  );
  const exceptions = new BulkWrite(database.db, database.dialect, 'task_stats_exceptions', [
    'step',
    'bucket',
    'task_name',
    'exception',
    'count',
  ]);
  const minuteStart = Math.floor((NOW - STATS_MINUTE_HOURS * 3600) / 3600) * 3600;
  const first = Math.floor((NOW - days * 86_400) / 3600) * 3600;
  let seed = 1;
  const random = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  /** One name's counts and bins for a bucket of `minutes` minutes. */
  const valuesFor = (i: number, minutes: number): number[] => {
    const done = Math.floor((5 + random() * 20) * minutes);
    const failed = Math.floor(done * 0.05 * random());
    const values = new Array<number>(TASK_STATS_VALUE_COLUMNS.length).fill(0);
    // sent, received, started, succeeded, failed, retried
    values[0] = done;
    values[1] = done;
    values[2] = done;
    values[3] = done - failed;
    values[4] = failed;
    values[5] = Math.floor(failed / 2);
    // Runtimes over three bins, queue waits over two.
    const bin = 2 + (i % 12);
    values[8 + bin] = Math.floor((done - failed) * 0.7);
    values[8 + bin + 1] = Math.floor((done - failed) * 0.25);
    values[8 + bin + 3] = done - failed - values[8 + bin]! - values[8 + bin + 1]!;
    const wait = 8 + STATS_BIN_COUNT;
    values[wait + 1] = Math.floor(done * 0.9);
    values[wait + 6] = done - values[wait + 1]!;
    return values;
  };
  const addInto = (into: number[], values: number[]) => {
    for (let k = 0; k < values.length; k++) into[k]! += values[k]!;
  };
  let rows: unknown[][] = [];
  let totals: unknown[][] = [];
  let failures: unknown[][] = [];
  let total = 0;
  const flush = async () => {
    await database.db.transaction().execute(async (trx) => {
      await write.run(trx, rows);
      await writeAll.run(trx, totals);
      await exceptions.run(trx, failures);
    });
    total += rows.length;
    rows = [];
    totals = [];
    failures = [];
  };
  const zero = () => new Array<number>(TASK_STATS_VALUE_COLUMNS.length).fill(0);
  const dayRows = new Map<string, number[]>();
  const push = (step: number, bucket: number, i: number, values: number[]) => {
    if (step === 3600) {
      const key = `${bucket - (bucket % 86_400)}|${i}`;
      const sum = dayRows.get(key) ?? zero();
      addInto(sum, values);
      dayRows.set(key, sum);
    }
    rows.push([step, bucket, `app.tasks.job_${i}`, ...values]);
    if (values[4]! > 0) failures.push([step, bucket, `app.tasks.job_${i}`, i % 2 ? 'ValueError' : 'TimeoutError', values[4]]);
  };
  // As the collector and retention leave them: hours only before the last 48 h, minutes and their hours after.
  for (let hour = first; hour < NOW; hour += 3600) {
    const hourTotal = zero();
    for (let i = 0; i < names; i++) {
      let values: number[];
      if (hour < minuteStart) values = valuesFor(i, 60);
      else {
        values = zero();
        for (let minute = hour; minute < Math.min(hour + 3600, NOW); minute += 60) {
          const m = valuesFor(i, 1);
          push(60, minute, i, m);
          addInto(values, m);
        }
      }
      push(3600, hour, i, values);
      addInto(hourTotal, values);
    }
    totals.push([3600, hour, ...hourTotal]);
    if (hour >= minuteStart) {
      // The all-names minute rows: the minute rows of this hour summed over names.
      const byMinute = new Map<number, number[]>();
      for (const row of rows) {
        if (row[0] !== 60 || (row[1] as number) < hour || (row[1] as number) >= hour + 3600) continue;
        const sum = byMinute.get(row[1] as number) ?? zero();
        addInto(sum, row.slice(3) as number[]);
        byMinute.set(row[1] as number, sum);
      }
      for (const [minute, sum] of byMinute) totals.push([60, minute, ...sum]);
    }
    await flush();
  }
  for (const [key, values] of dayRows) {
    const [day, i] = key.split('|').map(Number) as [number, number];
    push(86_400, day, i, values);
  }
  await flush();
  console.log(`  seeded ${total} task_stats rows (${names} names, ${days} days) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function timed(label: string, requests: number, run: () => Promise<{ status: number; size: number }>): Promise<void> {
  const times: number[] = [];
  let outcome = { status: 0, size: 0 };
  for (let i = 0; i < requests + 3; i++) {
    const started = performance.now();
    outcome = await run();
    if (i >= 3) times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  console.log(
    `  ${label.padEnd(46)} p50 ${percentile(times, 50).toFixed(1).padStart(7)} ms   p95 ${percentile(times, 95).toFixed(1).padStart(7)} ms   (${outcome.status ? `HTTP ${outcome.status}, ` : ''}${outcome.size} bytes)`,
  );
}

async function measureStats(database: OpenDatabase, app: ReturnType<typeof createApp>, requests: number, days: number): Promise<void> {
  const to = Math.ceil(NOW);
  const from = to - days * 86_400;
  const day = to - 86_400;
  const hour = to - 3600;
  const get = (path: string) => async () => {
    const response = await app.request(path);
    return { status: response.status, size: (await response.text()).length };
  };
  const call = (f: () => Promise<unknown>) => async () => ({ status: 0, size: JSON.stringify(await f()).length });
  const cases: [string, () => Promise<{ status: number; size: number }>][] = [
    [`/api/stats/tasks ${days} d, hours, one name`, get(`/api/stats/tasks?from=${from}&to=${to}&step=3600&name=app.tasks.job_7`)],
    [`/api/stats/tasks ${days} d, hours, all names`, get(`/api/stats/tasks?from=${from}&to=${to}&step=3600`)],
    ['/api/stats/tasks 24 h, minutes, one name', get(`/api/stats/tasks?from=${day}&to=${to}&step=60&name=app.tasks.job_7`)],
    ['/api/stats/tasks 1 h, minutes, all names', get(`/api/stats/tasks?from=${hour}&to=${to}&step=60`)],
    [`totalStatsSeries ${days} d, hours (/stats chart)`, call(() => totalStatsSeries(database.db, { from, to, step: 3600 }))],
    ['totalStatsSeries 24 h, minutes', call(() => totalStatsSeries(database.db, { from: day, to, step: 60 }))],
    [`taskTypeStats ${days} d, 30 slices`, call(() => taskTypeStats(database.db, { from, to, slices: 30 }))],
    [`exceptionStats ${days} d, top 20`, call(() => exceptionStats(database.db, { from, to, limit: 20 }))],
    ['taskTypeStats 1 h (minutes), 30 slices', call(() => taskTypeStats(database.db, { from: hour, to, slices: 30 }))],
  ];
  for (const [label, run] of cases) await timed(label, requests, run);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function benchApp(database: OpenDatabase) {
  const services: Services = {
    db: database.db,
    dialect: database.dialect,
    log: createLogger('bench', 'error'),
    hot: NO_HOT_STATE,
    control: null,
    readOnly: false,
    auth: authSettings({ ...NO_AUTH_INPUT, unauthenticatedApi: true }),
    inspectTimeoutMs: 1000,
    ui: DEFAULT_UI,
    purgeOfflineWorkers: 0,
    now: () => Date.now() / 1000,
    health: async () => ({ ok: true, problems: [] }),
  };
  return createApp({ services: () => services });
}

async function measure(database: OpenDatabase, requests: number): Promise<void> {
  const app = benchApp(database);
  const pages: [string, string][] = [
    ['task list, no filter', '/tasks'],
    ['task list, state:FAILURE', `/tasks?q=${encodeURIComponent('state:FAILURE')}`],
    ['task list, text "refused" (10% of tasks)', `/tasks?q=refused`],
    ['task list, text "order-424242" (1 task)', `/tasks?q=${encodeURIComponent('order-424242')}`],
    ['task list, page 40 (offset 1000)', '/tasks?offset=1000'],
    ['task list, sort received ascending', '/tasks?sort=received'],
    ['task list, sort runtime ascending, page 40', '/tasks?sort=runtime&offset=1000'],
    ['task list, "refused" sorted name ascending', '/tasks?q=refused&sort=name'],
    [
      'DataTables, started ascending',
      `/tasks/datatable?draw=1&start=0&length=15&order[0][column]=0&order[0][dir]=asc&columns[0][data]=started`,
    ],
    // Flower's DataTables endpoint, 15 rows, as its tasks page asks (issue 11's targets).
    ['DataTables, no filter', '/tasks/datatable?draw=1&start=0&length=15'],
    ['DataTables, state:FAILURE', `/tasks/datatable?draw=1&start=0&length=15&search[value]=${encodeURIComponent('state:FAILURE')}`],
    ['DataTables, text "refused" (10% of tasks)', '/tasks/datatable?draw=1&start=0&length=15&search[value]=refused'],
    ['workers dashboard (no hot state: SQL)', '/workers'],
    ['API /api/tasks?limit=25', '/api/tasks?limit=25'],
  ];
  for (const [label, path] of pages) {
    const times: number[] = [];
    let status = 0;
    let size = 0;
    for (let i = 0; i < requests + 3; i++) {
      const started = performance.now();
      const response = await app.request(path);
      const body = await response.text();
      const elapsed = performance.now() - started;
      status = response.status;
      size = body.length;
      if (i >= 3) times.push(elapsed); // the first few warm caches and the JIT
    }
    times.sort((a, b) => a - b);
    console.log(
      `  ${label.padEnd(46)} p50 ${percentile(times, 50).toFixed(1).padStart(7)} ms   p95 ${percentile(times, 95).toFixed(1).padStart(7)} ms   (HTTP ${status}, ${size} bytes)`,
    );
  }
}

async function main(): Promise<void> {
  const args = readArgs(process.argv.slice(2));
  console.log(`bench:web  tasks=${args.tasks}  requests=${args.requests} per page`);
  for (const dialect of args.dialects) {
    let url: string;
    let drop = async () => {};
    if (dialect === 'sqlite') {
      url = `./data/bench-web-${args.tasks}.db`;
      if (!args.keep && existsSync(url)) console.log(`  (reusing ${url}; delete it to seed afresh)`);
    } else {
      const name = `stalk_bench_web_${args.tasks}`;
      const admin = await createConnection(args.mysqlServer);
      await admin.query(`CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
      await admin.end();
      url = `${args.mysqlServer.replace(/\/$/, '')}/${name}`;
      if (!args.keep) {
        drop = async () => {
          const conn = await createConnection(args.mysqlServer);
          await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
          await conn.end();
        };
      }
    }
    console.log(`${dialect}: ${url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:****@')}`);
    const database = await openDatabase(url);
    await migrateToLatest(database.db);
    if (!args.statsOnly) {
      await seed(database, args.tasks);
      await measure(database, args.requests);
    }
    await seedStats(database, args.statsNames, args.statsDays);
    await measureStats(database, benchApp(database), args.requests, args.statsDays);
    await database.close();
    await drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
