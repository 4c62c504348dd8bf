// Property: whatever the broker sends, decode -> fold -> store takes it
// without losing a row to the database, and then every page and API route
// still answers (no 5xx). Messages are generated from arbitrary JSON: lone
// surrogates, numbers beyond any column, wrong types, missing fields,
// task.multi batches, bytes that are not UTF-8. Run on SQLite and MariaDB;
// the workers dashboard is also walked with the collector's in-memory state
// (the hot state), which is where a hostile hostname used to break it.

import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerRecord } from '../../src/shared/workers';
import { createLogger } from '../../src/shared/log';
import { decodeAmqpMessage, decodeRedisMessage, type Decoded } from '../../worker-collector/decode';
import { EventBatch } from '../../worker-collector/fold/batch';
import { type WorkerState, workerToRow } from '../../worker-collector/fold/worker';
import { buildFlushPayload } from '../../worker-collector/store/payload';
import { StoreWriter } from '../../worker-collector/store/writer';
import { testApp } from '../support/app';
import { DIALECTS, openTestDatabase, UNIT_TIER } from '../support/databases';
import { message, type Message, NOW } from './arbitraries';
import { expectEveryRouteAnswers, storedKeys } from './walk';

// Each run clears the tables, stores a few messages and walks ~60 routes:
// about 0.2 s on SQLite and 0.5 s on MariaDB here, so the file stays well under a minute.
// The unit tier (SQLite alone) takes a smaller sample; npm test the whole one.
const RUNS = { sqlite: UNIT_TIER ? 10 : 30, mariadb: 15 } as const;

const TABLES = [
  'tasks',
  'task_events',
  'workers',
  'event_counters',
  'histogram_buckets',
  'histogram_totals',
  'collector_status',
  'queues',
  'worker_inspect',
  'audit_log',
] as const;

function decode(m: Message): Decoded {
  return m.broker === 'redis' ? decodeRedisMessage(m.raw, NOW) : decodeAmqpMessage(m.content, { contentType: m.contentType }, NOW);
}

/** The dashboard's records as the collector publishes them (Collector.workerRecords). */
function hotRecords(workers: Map<string, WorkerState>): WorkerRecord[] {
  return [...workers.values()].map((w) => ({ ...workerToRow(w), loadavg: w.loadavg, heartbeats: w.heartbeats, events: {} }));
}

describe.each(DIALECTS)('any broker message, stored on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('is stored whole (no row refused) and every route answers afterwards', async () => {
    const writer = new StoreWriter(database, createLogger('test', 'error'));
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 8 }), async (messages) => {
        for (const table of TABLES) await sql`DELETE FROM ${sql.table(table)}`.execute(database.db);
        const batch = new EventBatch();
        const workers = new Map<string, WorkerState>();
        for (const m of messages) for (const event of decode(m).events) batch.add(event, workers);
        const { payload } = buildFlushPayload(batch, () => undefined, workers, null);
        const result = await writer.write(payload);
        // Everything decode lets through fits the columns of both databases.
        expect(result.rejectedRows).toBe(0);

        const logs: string[] = [];
        const keys = await storedKeys(database.db);
        await expectEveryRouteAnswers(testApp(database, { now: NOW, logs, auth: { metricsOpen: true } }), keys, logs);
        const hot = { workers: async () => hotRecords(workers) };
        const fromMemory = testApp(database, { now: NOW, logs, hot });
        for (const path of [
          '/',
          '/workers',
          '/workers?json=1',
          '/api/workers',
          ...keys.workerNames.map((w) => `/worker/${encodeURIComponent(w.toWellFormed())}`),
        ]) {
          const response = await fromMemory.request(`http://stalk.test${path}`);
          expect(response.status, `${path} from the hot state: ${response.status}`).toBeLessThan(500);
          await response.text();
        }
        expect(logs.filter((line) => / ERROR /.test(line))).toEqual([]);
      }),
      { numRuns: RUNS[dialect] },
    );
  }, 120_000);
});
