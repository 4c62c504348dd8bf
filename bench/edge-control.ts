// npm run bench:edge-control -- [--seconds 30] [--wait 50] [--redis-db 8] [--broker-db 7]
//
// What the edge's command channel costs, measured on the real programs:
//
// 1. An idle collector (a real Celery worker heartbeating, no tasks) for
//    --seconds, with --state-url over Upstash REST (commands counted at the
//    Upstash stand-in) and over TCP (commands counted by a RESP-reading proxy
//    in front of Redis). Upstash bills per command.
// 2. The Worker (built by wrangler, run under workerd through Miniflare, every
//    fetch() it makes counted on the way out: the subrequests Cloudflare
//    limits to 50 per request on the free plan) for a command the collector
//    answers (revoke), and for one nobody answers (/api/task/result with
//    ?timeout=--wait, so the Worker waits --wait + 5 s, the collector stopped).
//
// Needs Redis on 6379, MariaDB on 3306 and python3-celery, as the tests do.

import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { Redis } from 'ioredis';
import { startPlanetScaleStandIn } from '../dev/standins/planetscale';
import { startUpstashStandIn } from '../dev/standins/upstash';
import { COMMAND_QUEUE_KEY } from '../src/shared/control';
import { HOT_WORKERS_KEY } from '../src/shared/hot-state';
import { createLogger } from '../src/shared/log';
import { openMigratedDatabase } from '../worker-collector/setup';
import { startWorker } from '../test/support/celery';
import { type ManagedProcess, spawnManaged, stopAllProcesses } from '../test/support/processes';
import { REPO_ROOT } from '../test/support/stalk';
import { buildWorker, startWorkerd } from '../test/workerd/harness';
import { startRespCounter } from './resp-counter';

interface Args {
  seconds: number;
  wait: number;
  redisDb: number;
  brokerDb: number;
  mysqlServer: string;
}

function readArgs(argv: string[]): Args {
  const args: Args = {
    seconds: 30,
    wait: 50,
    redisDb: 8,
    brokerDb: 7,
    mysqlServer: process.env.STALK_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!.replace(/^--/, '');
    const value = Number(argv[++i]);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${flag} needs a number`);
    if (flag === 'seconds') args.seconds = value;
    else if (flag === 'wait') args.wait = value;
    else if (flag === 'redis-db') args.redisDb = value;
    else if (flag === 'broker-db') args.brokerDb = value;
    else throw new Error(`unknown option --${flag}`);
  }
  return args;
}

const args = readArgs(process.argv.slice(2));
const STATE_REDIS = `redis://127.0.0.1:6379/${args.redisDb}`;
const BROKER = `redis://localhost:6379/${args.brokerDb}`;
const SECRET = randomBytes(24).toString('hex');
const PASSWORD = randomBytes(12).toString('hex');
const AUTH = { Authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` };
const log = createLogger('bench', 'warn');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts by name, as "BRPOP 2, SET 3". */
function describeCounts(counts: Map<string, number>): string {
  return (
    [...counts.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, n]) => `${name.toUpperCase()} ${n}`)
      .join(', ') || 'none'
  );
}

const total = (counts: Map<string, number>) => [...counts.values()].reduce((a, b) => a + b, 0);

function diff(after: Map<string, number>, before: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, n] of after) if (n - (before.get(name) ?? 0) > 0) out.set(name, n - (before.get(name) ?? 0));
  return out;
}

function collectorEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('STALK_') || key.startsWith('UPSTASH_') || key.startsWith('FLOWER_') || key === 'CELERY_BROKER_URL') delete env[key];
  }
  return { ...env, FLOWER_COOKIE_SECRET: SECRET };
}

function startCollector(db: string, stateUrl: string, token: string): ManagedProcess {
  return spawnManaged(
    'collector',
    process.execPath,
    [
      '--import',
      'tsx',
      'worker-collector/main.ts',
      '--db',
      db,
      '--broker',
      BROKER,
      '--state-url',
      stateUrl,
      '--state-token',
      token,
      '--log-level',
      'warn',
    ],
    { cwd: REPO_ROOT, env: collectorEnv() },
  );
}

/** Wait until the collector published hot state naming the Celery worker (it is up and idle). */
async function untilPublished(redis: Redis, hostname: string): Promise<void> {
  await redis.del(HOT_WORKERS_KEY);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if ((await redis.get(HOT_WORKERS_KEY))?.includes(hostname)) return;
    await sleep(250);
  }
  throw new Error('the collector did not publish the hot state within 60 s');
}

async function idleCost(name: string, counts: () => Map<string, number>, seconds: number): Promise<{ line: string; perSecond: number }> {
  const before = new Map(counts());
  const started = Date.now();
  await sleep(seconds * 1000);
  const elapsed = (Date.now() - started) / 1000;
  const sent = diff(counts(), before);
  const perSecond = total(sent) / elapsed;
  const month = Math.round(perSecond * 86_400 * 30);
  return {
    perSecond,
    line: `${name}: ${perSecond.toFixed(3)} commands/s over ${elapsed.toFixed(1)} s (${describeCounts(sent)}), about ${month.toLocaleString('en')} a month`,
  };
}

async function main(): Promise<void> {
  const command = `npm run bench:edge-control -- --seconds ${args.seconds} --wait ${args.wait} --redis-db ${args.redisDb} --broker-db ${args.brokerDb}`;
  console.log(`Stalk edge control costs\n  command: ${command}\n  node ${process.version}\n`);
  const cleanups: (() => Promise<unknown>)[] = [];
  const redis = new Redis(STATE_REDIS);
  cleanups.push(async () => redis.disconnect());
  try {
    // The database: MariaDB for the collector, through the PlanetScale stand-in for the Worker.
    const dbName = `stalk_bench_edge_${randomBytes(4).toString('hex')}`;
    const admin = await createConnection(args.mysqlServer);
    await admin.query(`CREATE DATABASE \`${dbName}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await admin.end();
    const dbUrl = `${args.mysqlServer.replace(/\/$/, '')}/${dbName}`;
    cleanups.push(async () => {
      const conn = await createConnection(args.mysqlServer);
      await conn.query(`DROP DATABASE IF EXISTS \`${dbName}\``);
      await conn.end();
    });
    await (await openMigratedDatabase(dbUrl, log)).close();
    await redis.del(COMMAND_QUEUE_KEY);

    const building = buildWorker();
    building.then((b) => cleanups.push(async () => b.remove())).catch(() => undefined);

    // Two stand-ins on the same Redis: one counts what the collector sends, the other what the Worker sends.
    const collectorCounts = new Map<string, number>();
    const workerCounts = new Map<string, number>();
    const count = (into: Map<string, number>) => (names: string[]) => {
      for (const name of names) into.set(name, (into.get(name) ?? 0) + 1);
    };
    const token = randomBytes(12).toString('hex');
    const collectorUpstash = await startUpstashStandIn({ redisUrl: STATE_REDIS, token, onCommands: count(collectorCounts) });
    cleanups.push(() => collectorUpstash.close());
    const workerUpstash = await startUpstashStandIn({ redisUrl: STATE_REDIS, token, onCommands: count(workerCounts) });
    cleanups.push(() => workerUpstash.close());
    const planetscale = await startPlanetScaleStandIn({ mysqlUrl: dbUrl, username: 'bench', password: randomBytes(9).toString('hex') });
    cleanups.push(() => planetscale.close());

    const celery = await startWorker({ broker: BROKER });
    console.log(`an idle cluster: Celery worker ${celery.hostname} (heartbeats every 2 s, no tasks)\n`);

    // 1a. Idle over REST.
    const restCollector = startCollector(dbUrl, collectorUpstash.url, collectorUpstash.token);
    await untilPublished(redis, celery.hostname);
    const rest = await idleCost('idle collector, --state-url Upstash REST', () => collectorCounts, args.seconds);
    console.log(rest.line);

    // 2a. A command the collector answers (REST collector still running).
    const build = await building;
    const subrequests: string[] = [];
    const workerd = await startWorkerd(
      build.script,
      {
        DATABASE_URL: planetscale.url,
        UPSTASH_REDIS_REST_URL: workerUpstash.url,
        UPSTASH_REDIS_REST_TOKEN: workerUpstash.token,
        BASIC_AUTH: `admin:${PASSWORD}`,
        COOKIE_SECRET: SECRET,
      },
      { headers: AUTH, onSubrequest: (url) => subrequests.push(url) },
    );
    cleanups.push(() => workerd.dispose());
    const measure = async (label: string, path: string, method: 'GET' | 'POST') => {
      const before = subrequests.length;
      const commandsBefore = new Map(workerCounts);
      const started = Date.now();
      const response = await workerd.fetch(path, {}, method);
      const took = (Date.now() - started) / 1000;
      const made = subrequests.slice(before);
      const upstash = made.filter((url) => url.startsWith(workerUpstash.url)).length;
      return {
        made: made.length,
        line: `${label}: ${made.length} subrequests in all (${upstash} to Upstash: ${describeCounts(diff(workerCounts, commandsBefore))}; ${made.length - upstash} to the database), HTTP ${response.status} ${JSON.stringify(response.text.slice(0, 100))}, ${took.toFixed(2)} s`,
      };
    };
    // The first request of an isolate sets things up (key derivation): measure the second and later ones.
    await measure('warm-up', `/api/task/revoke/bench-warmup-${randomBytes(3).toString('hex')}`, 'POST');
    const answered = [];
    for (let i = 0; i < 5; i++)
      answered.push(
        await measure(
          `Worker, command answered by the collector (revoke ${i + 1}/5)`,
          `/api/task/revoke/bench-${randomBytes(4).toString('hex')}`,
          'POST',
        ),
      );
    await restCollector.stop(30_000);

    // 1b. Idle over TCP, through the counting proxy.
    const proxy = await startRespCounter('127.0.0.1', 6379);
    cleanups.push(() => proxy.close());
    const tcpCollector = startCollector(dbUrl, `redis://127.0.0.1:${proxy.port}/${args.redisDb}`, '');
    await untilPublished(redis, celery.hostname);
    const tcp = await idleCost('idle collector, --state-url redis:// (TCP)', () => proxy.counts(), args.seconds);
    console.log(tcp.line);
    await tcpCollector.stop(30_000);

    // 2b. A command nobody answers: no collector running, the Worker waits it out.
    console.log('');
    for (const a of answered) console.log(a.line);
    const unanswered = await measure(
      `Worker, command nobody answers (GET /api/task/result?timeout=${args.wait}: a ${args.wait + 5} s wait)`,
      `/api/task/result/bench-nobody-${randomBytes(4).toString('hex')}?timeout=${args.wait}`,
      'GET',
    );
    console.log(unanswered.line);
    console.log(
      `\nsummary: idle collector ${rest.perSecond.toFixed(3)} commands/s over REST, ${tcp.perSecond.toFixed(3)} over TCP (target < 0.5);`,
    );
    console.log(
      `  Worker subrequests per command: answered max ${Math.max(...answered.map((a) => a.made))}, unanswered ${unanswered.made} (target <= 20)`,
    );
    await celery.stop();
  } finally {
    await redis.del(COMMAND_QUEUE_KEY).catch(() => undefined);
    await stopAllProcesses();
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.error(`cleanup: ${String(error)}`));
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
