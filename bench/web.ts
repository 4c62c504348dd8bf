// npm run bench:web -- [--tasks 1000000] [--requests 60] [--dialect sqlite|mariadb|both] [--keep]
//
// Seeds a database with N finished tasks through the real store (the same
// upserts, timelines, counters and search index the collector writes), then
// times page requests through the real app (in process, so the figures are
// query + render time, no network): the task list with no filter, with
// state:FAILURE, with text searches, and the workers dashboard.
// Prints p50/p95 per page and dialect. A seeded SQLite file is kept under
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

interface Args {
  tasks: number;
  requests: number;
  dialects: ('sqlite' | 'mariadb')[];
  keep: boolean;
  mysqlServer: string;
}

function readArgs(argv: string[]): Args {
  const args: Args = {
    tasks: 1_000_000,
    requests: 60,
    dialects: ['sqlite', 'mariadb'],
    keep: false,
    mysqlServer: process.env.STALK_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!.replace(/^--/, '');
    if (flag === 'keep') args.keep = true;
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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function measure(database: OpenDatabase, requests: number): Promise<void> {
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
  const app = createApp({ services: () => services });
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
    await seed(database, args.tasks);
    await measure(database, args.requests);
    await database.close();
    await drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
