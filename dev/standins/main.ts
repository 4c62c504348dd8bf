// Runs both local stand-ins (PlanetScale's HTTP API -> MySQL/MariaDB, Upstash's
// REST API -> Redis) so the Worker build can run locally, and prints the
// settings it needs. Development and tests only, never production.
//
//   node --import tsx dev/standins/main.ts [--mysql mysql://root@127.0.0.1:3306/stalk]
//     [--redis redis://127.0.0.1:6379/0] [--planetscale-port 8784] [--upstash-port 8785] [--host 127.0.0.1]
//     [--planetscale-user U] [--planetscale-password P] [--upstash-token T]
//
// Credentials also come from STANDIN_PLANETSCALE_USER, STANDIN_PLANETSCALE_PASSWORD
// and STANDIN_UPSTASH_TOKEN (flags win); the defaults are for local use only.

import { parseArgs } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { startPlanetScaleStandIn } from './planetscale';
import { startUpstashStandIn } from './upstash';

const USAGE = `usage: node --import tsx dev/standins/main.ts [options]
  --mysql URL                 MySQL/MariaDB to forward to (default mysql://root@127.0.0.1:3306/stalk; the database is created if missing)
  --redis URL                 Redis to forward to (default redis://127.0.0.1:6379/0)
  --planetscale-port N        PlanetScale stand-in port (default 8784; 0 picks a free one)
  --upstash-port N            Upstash stand-in port (default 8785; 0 picks a free one)
  --host ADDRESS              address both listen on (default 127.0.0.1)
  --planetscale-user U        or STANDIN_PLANETSCALE_USER (default stalk)
  --planetscale-password P    or STANDIN_PLANETSCALE_PASSWORD (default stalk-dev-password)
  --upstash-token T           or STANDIN_UPSTASH_TOKEN (default stalk-dev-token)
  --latency-ms N              add N ms to every PlanetScale answer, as a distant region would (default 0)
  --log-statements            print every SQL statement the PlanetScale stand-in answers, with its time`;

const { values: flags } = parseArgs({
  options: {
    mysql: { type: 'string', default: 'mysql://root@127.0.0.1:3306/stalk' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379/0' },
    'planetscale-port': { type: 'string', default: '8784' },
    'upstash-port': { type: 'string', default: '8785' },
    host: { type: 'string', default: '127.0.0.1' },
    'planetscale-user': { type: 'string' },
    'planetscale-password': { type: 'string' },
    'upstash-token': { type: 'string' },
    'latency-ms': { type: 'string', default: '0' },
    'log-statements': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

function port(name: 'planetscale-port' | 'upstash-port'): number {
  const value = Number(flags[name]);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`--${name}: not a port: ${flags[name]}`);
  return value;
}

function latency(): number {
  const value = Number(flags['latency-ms']);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--latency-ms: not a number of milliseconds: ${flags['latency-ms']}`);
  return value;
}

/** Create the target database if it does not exist yet (utf8mb4, binary collation, like Stalk's own). */
async function ensureDatabase(mysqlUrl: string) {
  const url = new URL(mysqlUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error(`--mysql must name a database: ${mysqlUrl}`);
  url.pathname = '/';
  const admin = await createConnection({ uri: url.toString(), charset: 'utf8mb4' });
  try {
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${name.replaceAll('`', '``')}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await admin.end();
  }
}

const hidePassword = (u: string) => u.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');

await ensureDatabase(flags.mysql);
const planetscale = await startPlanetScaleStandIn({
  mysqlUrl: flags.mysql,
  port: port('planetscale-port'),
  host: flags.host,
  username: flags['planetscale-user'] ?? process.env.STANDIN_PLANETSCALE_USER ?? 'stalk',
  password: flags['planetscale-password'] ?? process.env.STANDIN_PLANETSCALE_PASSWORD ?? 'stalk-dev-password',
  latencyMs: latency(),
  ...(flags['log-statements']
    ? {
        onStatement: (s) =>
          console.log(`[planetscale] ${(s.endedAt - s.startedAt).toFixed(1)} ms  ${s.sql.replace(/\s+/g, ' ').slice(0, 300)}`),
      }
    : {}),
});
const upstash = await startUpstashStandIn({
  redisUrl: flags.redis,
  port: port('upstash-port'),
  host: flags.host,
  token: flags['upstash-token'] ?? process.env.STANDIN_UPSTASH_TOKEN ?? 'stalk-dev-token',
});

console.log(`PlanetScale stand-in ${hidePassword(planetscale.url)} -> ${hidePassword(flags.mysql)}`);
console.log(`Upstash stand-in     ${upstash.url} -> ${hidePassword(flags.redis)}`);
console.log('\nWorker settings (e.g. .dev.vars for wrangler dev):\n');
console.log(`DATABASE_URL=${planetscale.url}`);
console.log(`UPSTASH_REDIS_REST_URL=${upstash.url}`);
console.log(`UPSTASH_REDIS_REST_TOKEN=${upstash.token}`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    void Promise.allSettled([planetscale.close(), upstash.close()]).then(() => process.exit(0));
  });
}
