// `npm run dev:edge`: the production (edge) layout on this machine.
//
//   Celery --events--> collector (node, mysql2) ----------> MariaDB
//                          \--hot state--> Upstash stand-in --> Redis
//   browser --> wrangler dev (workerd, src/worker.ts) --> PlanetScale stand-in --> MariaDB
//                                                    \--> Upstash stand-in ------> Redis
//
// It starts the stand-ins (dev/standins) in this process, creates and migrates
// the MariaDB database, starts the real collector and `wrangler dev`, prints
// the URLs, and stops everything on Ctrl-C or SIGTERM (or when one of them dies).
//
//   npm run dev:edge -- [--broker URL] [--mysql URL] [--redis URL] [--port 8787]
//     [--inspector-port 9229] [--planetscale-port 8784] [--upstash-port 8785]
//     [--cookie-secret S] [--basic-auth user:password]
//
// The broker also comes from CELERY_BROKER_URL (default redis://localhost:6379/0).
// The cookie secret (the Worker's COOKIE_SECRET and the collector's
// --cookie-secret: it signs sessions and keys the command channel) also comes
// from FLOWER_COOKIE_SECRET; without either, one is generated and printed.
// The Worker serves nothing but /healthcheck and /static/* without a sign-in
// method, so it gets Basic auth: --basic-auth, FLOWER_BASIC_AUTH, or a
// generated admin password, printed.
// The Worker's secrets go to wrangler through a temporary env file, never the repo.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { createLogger, errorMessage } from '../src/shared/log';
import { openMigratedDatabase } from '../worker-collector/setup';
import { maskPassword } from '../worker-collector/store/db';
import { startPlanetScaleStandIn } from './standins/planetscale';
import { startUpstashStandIn } from './standins/upstash';

const REPO = fileURLToPath(new URL('../', import.meta.url));

const USAGE = `usage: npm run dev:edge -- [options]
  --broker URL            Celery broker (default $CELERY_BROKER_URL or redis://localhost:6379/0)
  --mysql URL             MariaDB/MySQL database behind the PlanetScale stand-in, created if missing
                          (default mysql://root@127.0.0.1:3306/stalk_edge)
  --redis URL             Redis behind the Upstash stand-in (default redis://127.0.0.1:6379/0)
  --port N                wrangler dev port (default 8787)
  --inspector-port N      wrangler dev inspector port (default 9229)
  --planetscale-port N    PlanetScale stand-in port (default 8784; 0 picks a free one)
  --upstash-port N        Upstash stand-in port (default 8785; 0 picks a free one)
  --cookie-secret S       the secret both the Worker and the collector get (32+ characters; default
                          $FLOWER_COOKIE_SECRET, or a new random one, printed)
  --basic-auth U:P        the Worker's sign-in (default $FLOWER_BASIC_AUTH, or admin with a new
                          random password, printed)`;

const { values: flags } = parseArgs({
  options: {
    broker: { type: 'string' },
    mysql: { type: 'string', default: 'mysql://root@127.0.0.1:3306/stalk_edge' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379/0' },
    port: { type: 'string', default: '8787' },
    'inspector-port': { type: 'string', default: '9229' },
    'planetscale-port': { type: 'string', default: '8784' },
    'upstash-port': { type: 'string', default: '8785' },
    'cookie-secret': { type: 'string' },
    'basic-auth': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

function port(name: 'port' | 'inspector-port' | 'planetscale-port' | 'upstash-port'): number {
  const value = Number(flags[name]);
  if (!/^\d+$/.test(String(flags[name])) || value > 65535) {
    console.error(`dev:edge: --${name}: not a port: ${flags[name]}`);
    process.exit(2);
  }
  return value;
}

const broker = flags.broker ?? (process.env.CELERY_BROKER_URL || 'redis://localhost:6379/0');
const givenSecret = flags['cookie-secret'] ?? process.env.FLOWER_COOKIE_SECRET;
if (givenSecret !== undefined && givenSecret.length < 32) {
  console.error('dev:edge: --cookie-secret must be at least 32 characters');
  process.exit(2);
}
/** One secret for both sides: the Worker signs commands with a key derived from it, the collector checks them with the same. */
const cookieSecret = givenSecret ?? randomBytes(24).toString('base64url');
const givenBasicAuth = flags['basic-auth'] ?? process.env.FLOWER_BASIC_AUTH;
const basicAuth = givenBasicAuth ?? `admin:${randomBytes(12).toString('base64url')}`;
const mysqlUrl = flags.mysql;
const log = createLogger('dev:edge');

/** Create the database if it is missing (utf8mb4, binary collation, as Stalk's tests do). */
async function ensureDatabase(url: string): Promise<void> {
  const parsed = new URL(url);
  const name = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!name) throw new Error(`--mysql must name a database: ${maskPassword(url)}`);
  parsed.pathname = '/';
  const admin = await createConnection({ uri: parsed.toString(), charset: 'utf8mb4' });
  try {
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${name.replaceAll('`', '``')}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await admin.end();
  }
}

/** A child in its own process group, its output prefixed line by line. */
function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(command, args, { cwd: REPO, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) process.stdout.write(`[${name}] ${line}\n`);
    });
  }
  return child;
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer | string) => {
      seen = (seen + String(chunk)).slice(-20_000);
      const match = seen.match(pattern);
      if (match) finish(() => resolve(match));
    };
    const onExit = () => finish(() => reject(new Error(`${what} exited before it was ready`)));
    const timer = setTimeout(() => finish(() => reject(new Error(`${what} not ready within ${timeoutMs / 1000} s`))), timeoutMs);
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      settle();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** SIGTERM to the child's group (wrangler runs workerd under it), SIGKILL after `graceMs`. */
async function stop(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // Gone already.
      }
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

const tempDir = mkdtempSync(join(tmpdir(), 'stalk-edge-'));
let planetscale: Awaited<ReturnType<typeof startPlanetScaleStandIn>> | undefined;
let upstash: Awaited<ReturnType<typeof startUpstashStandIn>> | undefined;
let collector: ChildProcess | undefined;
let wrangler: ChildProcess | undefined;
let stopping = false;

/** A second Ctrl-C: no more waiting, but no orphans either (the children run in their own process groups). */
function killAll(): void {
  for (const child of [wrangler, collector]) {
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

async function shutdown(code: number): Promise<never> {
  if (stopping) {
    killAll();
    rmSync(tempDir, { recursive: true, force: true });
    process.exit(code);
  }
  stopping = true;
  log.info('stopping');
  // The Worker first (nothing reads any more), then the collector (it flushes what it holds).
  await stop(wrangler, 5_000);
  await stop(collector, 20_000);
  await Promise.allSettled([planetscale?.close(), upstash?.close()]);
  rmSync(tempDir, { recursive: true, force: true });
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(0));

async function main(): Promise<void> {
  const workerPort = port('port');
  const inspectorPort = port('inspector-port');

  await ensureDatabase(mysqlUrl);
  const database = await openMigratedDatabase(mysqlUrl, log.child('db'));
  await database.close();

  // Fresh credentials every run: nothing to leak, nothing to configure.
  const psPassword = randomBytes(12).toString('hex');
  const upstashToken = randomBytes(16).toString('hex');
  planetscale = await startPlanetScaleStandIn({ mysqlUrl, port: port('planetscale-port'), username: 'stalk', password: psPassword });
  upstash = await startUpstashStandIn({ redisUrl: flags.redis, port: port('upstash-port'), token: upstashToken });
  log.info(`PlanetScale stand-in ${maskPassword(planetscale.url)} -> ${maskPassword(mysqlUrl)}`);
  log.info(`Upstash stand-in ${upstash.url} -> ${maskPassword(flags.redis)}`);

  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.CELERY_BROKER_URL;
  delete childEnv.UPSTASH_REDIS_REST_URL;
  delete childEnv.UPSTASH_REDIS_REST_TOKEN;
  delete childEnv.FLOWER_COOKIE_SECRET;
  collector = start(
    'collector',
    process.execPath,
    // The secret goes by environment, not argv, where `ps` would show it.
    [
      '--import',
      'tsx',
      'worker-collector/main.ts',
      '--db',
      mysqlUrl,
      '--state-url',
      upstash.url,
      '--state-token',
      upstash.token,
      '--broker',
      broker,
    ],
    { ...childEnv, FLOWER_COOKIE_SECRET: cookieSecret },
  );
  collector.once('exit', (code, signal) => {
    if (!stopping) {
      log.error(`the collector exited (${signal ?? `code ${code}`}); stopping`);
      void shutdown(1);
    }
  });

  // The Worker's secrets, as .dev.vars would hold them, outside the repo.
  const envFile = join(tempDir, 'worker.env');
  writeFileSync(
    envFile,
    [
      `DATABASE_URL=${planetscale.url}`,
      `UPSTASH_REDIS_REST_URL=${upstash.url}`,
      `UPSTASH_REDIS_REST_TOKEN=${upstash.token}`,
      `COOKIE_SECRET=${cookieSecret}`,
      // Closed by default without a sign-in method: Basic auth for pages and API alike.
      `BASIC_AUTH=${basicAuth}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  wrangler = start(
    'wrangler',
    process.execPath,
    [
      join(REPO, 'node_modules/wrangler/bin/wrangler.js'),
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(workerPort),
      '--inspector-port',
      String(inspectorPort),
      '--env-file',
      envFile,
      '--show-interactive-dev-session=false',
    ],
    { ...childEnv, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
  );
  wrangler.once('exit', (code, signal) => {
    if (!stopping) {
      log.error(`wrangler dev exited (${signal ?? `code ${code}`}); stopping`);
      void shutdown(1);
    }
  });

  // The collector reports its broker connection itself (and keeps retrying a broker that is down).
  await waitForLine(wrangler, /Ready on http:\/\/[^\s]+/, 120_000, 'wrangler dev');
  const site = `http://127.0.0.1:${workerPort}`;
  console.log(`
Stalk at the edge, locally:
  dashboard     ${site}/
  tasks         ${site}/tasks
  API           ${site}/api/workers
  healthcheck   ${site}/healthcheck
  inspector     chrome://inspect -> 127.0.0.1:${inspectorPort}
  broker        ${maskPassword(broker)} (collector)
  database      ${maskPassword(mysqlUrl)} (via ${maskPassword(planetscale.url)})
  hot state     ${maskPassword(flags.redis)} (via ${upstash.url})
  sign in       ${givenBasicAuth === undefined ? `${basicAuth} (generated for this run; pass --basic-auth to choose)` : '(as given)'}
  cookie secret ${givenSecret === undefined ? `${cookieSecret} (generated for this run; pass --cookie-secret to keep sessions across runs)` : '(as given)'}
Ctrl-C stops everything.
`);
}

main().catch((error: unknown) => {
  log.error(errorMessage(error));
  void shutdown(1);
});
