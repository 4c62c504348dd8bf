// The collector container's health check (`node dist/healthcheck.js`, the
// image's HEALTHCHECK): healthy while this host's collector keeps writing its
// status row (it does at least every 5 s, broker up or not) AND says the
// broker is connected. Exit 0 healthy, 1 not, with one line saying why.
// Same options as the collector (--db / STALK_DB, ...); the row's id is
// collector@<hostname>, as in collector.ts.

import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseOptions } from '../src/options';
import { errorMessage } from '../src/shared/log';
import { openDatabase, parseDatabaseTarget } from './store/db';

/** Longer than this without a status row and the collector is stuck or gone (it reports every 5 s). */
const SILENCE_LIMIT_SECONDS = 30;

interface CollectorStatusRow {
  updated_at: number;
  broker_connected: number;
  broker_url: string;
}

/** Why the collector is unhealthy, or null when it is well. */
function healthProblem(id: string, row: CollectorStatusRow | undefined, now: number): string | null {
  if (!row) return `${id} has not reported yet`;
  const silent = now - Number(row.updated_at);
  if (silent > SILENCE_LIMIT_SECONDS) return `${id} silent for ${Math.round(silent)} s`;
  if (!Number(row.broker_connected)) return `${id} is not connected to the broker ${row.broker_url}`;
  return null;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2), process.env);
  const target = parseDatabaseTarget(options.db);
  // Never create an empty SQLite file where the collector has not made one.
  if (target.dialect === 'sqlite' && target.location !== ':memory:' && !existsSync(target.location)) {
    console.error(`unhealthy: ${target.location} does not exist yet`);
    return 1;
  }
  const id = `collector@${hostname()}`;
  const database = await openDatabase(options.db);
  try {
    const row = await database.db
      .selectFrom('collector_status')
      .select(['updated_at', 'broker_connected', 'broker_url'])
      .where('id', '=', id)
      .executeTakeFirst();
    const problem = healthProblem(id, row, Date.now() / 1000);
    if (problem) {
      console.error(`unhealthy: ${problem}`);
      return 1;
    }
    console.log(`healthy: ${id} reported ${(Date.now() / 1000 - Number(row!.updated_at)).toFixed(1)} s ago, broker connected`);
    return 0;
  } finally {
    await database.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`unhealthy: ${errorMessage(error)}`);
    process.exit(1);
  },
);
