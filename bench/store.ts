// npm run bench:store -- [--tasks 40000] [--variant full|no-search|no-search-no-indexes]
//
// What one flush costs in the database, without broker or decoding: folds N
// tasks (sent, received, started, succeeded) into batches of 10,000 events,
// writes them through the real store (StoreWriter) to a fresh SQLite file,
// and prints µs per task and per event for the writes and for everything.
// The variants drop the search index's queue triggers (nothing to index
// afterwards), then also the task indexes, to show what each costs.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { createLogger } from '../src/shared/log';
import { EventBatch } from '../worker-collector/fold/batch';
import type { WorkerState } from '../worker-collector/fold/worker';
import { buildFlushPayload } from '../worker-collector/store/payload';
import { StoreWriter } from '../worker-collector/store/writer';
import { SearchIndexer } from '../worker-collector/store/search-index';
import { openMigratedDatabase } from '../worker-collector/setup';
import { succeedingTask } from '../test/fixtures/events';

const VARIANTS = ['full', 'no-search', 'no-search-no-indexes'] as const;
const { values } = parseArgs({ options: { tasks: { type: 'string', default: '40000' }, variant: { type: 'string', default: 'full' } } });
const tasks = Number(values.tasks);
const variant = values.variant as (typeof VARIANTS)[number];
if (!VARIANTS.includes(variant) || !Number.isInteger(tasks) || tasks <= 0) {
  console.error(`usage: npm run bench:store -- [--tasks N] [--variant ${VARIANTS.join('|')}]`);
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'stalk-bench-store-'));
const log = createLogger('bench', 'error');
const database = await openMigratedDatabase(join(dir, 'bench.db'), log);
const run = (statement: string) => sql.raw(statement).execute(database.db);
if (variant !== 'full')
  for (const trigger of ['tasks_search_queue_insert', 'tasks_search_queue_update', 'tasks_search_delete'])
    await run(`DROP TRIGGER ${trigger}`);
if (variant === 'no-search-no-indexes') {
  for (const index of [
    'tasks_timestamp',
    'tasks_received',
    'tasks_started',
    'tasks_state_timestamp',
    'tasks_name_timestamp',
    'tasks_worker_timestamp',
    'tasks_parent_id',
  ]) {
    await run(`DROP INDEX ${index}`);
  }
}

const writer = new StoreWriter(database, log);
const workers = new Map<string, WorkerState>();
let batch = new EventBatch();
let writeMs = 0;
const flush = async () => {
  const { payload } = buildFlushPayload(batch, () => undefined, workers, null);
  const started = performance.now();
  await writer.write(payload);
  writeMs += performance.now() - started;
  batch = new EventBatch();
};
const t0 = performance.now();
for (let i = 0; i < tasks; i++) {
  const story = {
    uuid: `bench-${i}-${Math.random().toString(36).slice(2)}`,
    name: `bench.task${i % 20}`,
    args: `(${i}, 'order-${i}')`,
    kwargs: `{'customer': ${i % 100}}`,
  };
  for (const event of succeedingTask(story, 1_900_000_000 + i / 1000)) batch.add(event, workers);
  if (batch.eventCount >= 10_000) await flush();
}
if (batch.eventCount > 0) await flush();
// The text index is filled after the flushes, in bulk (store/search-index.ts), as the store thread does.
const indexStarted = performance.now();
await new SearchIndexer(database.db).drain();
const indexMs = performance.now() - indexStarted;
const totalMs = performance.now() - t0;
const us = (ms: number, per: number) => ((ms * 1000) / per).toFixed(1);
console.log(`bench:store  variant=${variant}  tasks=${tasks}  events=${tasks * 4}`);
console.log(`writes       ${us(writeMs, tasks)} us/task, ${us(writeMs, tasks * 4)} us/event`);
console.log(`text index   ${us(indexMs, tasks)} us/task, ${us(indexMs, tasks * 4)} us/event (bulk, after the writes)`);
console.log(`all         ${us(totalMs, tasks)} us/task, ${us(totalMs, tasks * 4)} us/event (fold, writes, index)`);
await database.close();
rmSync(dir, { recursive: true, force: true });
