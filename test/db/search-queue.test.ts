// SQLite's text index filled in bulk (migration 006, store/search-index.ts):
// tasks written through the real store are noted in search_queue by the
// triggers, SearchIndexer moves them into the FTS5 table tasks_search, and
// the web app's search (listTasks with a parsed query) finds them before
// and after indexing. Re-indexing after a change, in-flight tasks, and
// retention deleting indexed and queued tasks.

import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/shared/celery-events';
import { listTasks } from '../../src/queries/tasks';
import { createLogger } from '../../src/shared/log';
import { parseSearch } from '../../src/shared/search';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { buildFlushPayload } from '../../worker-collector/store/payload';
import { pruneOnce } from '../../worker-collector/store/retention';
import { SearchIndexer } from '../../worker-collector/store/search-index';
import { StoreWriter } from '../../worker-collector/store/writer';
import { failed, received, sent, started, succeeded, succeedingTask } from '../fixtures/events';
import { openTestDatabase } from '../support/databases';

const quiet = createLogger('test', 'error');
const AT = 1_800_000_000;

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let writer: StoreWriter;
const workers = new Map<string, WorkerState>();

beforeEach(async () => {
  database = await openTestDatabase('sqlite');
  writer = new StoreWriter(database, quiet);
});

afterEach(async () => {
  await database?.drop();
});

/** One flush through the real store, as the collector writes it. */
async function flush(events: TaskEvent[]): Promise<void> {
  const batch = new EventBatch();
  for (const event of events) batch.add(event, workers);
  const result = await writer.write(buildFlushPayload(batch, () => undefined, workers, null).payload);
  expect(result.rejectedRows).toBe(0);
}

/** Task uuids a search from the web app's search box finds (src/routes/api.ts runs the same query). */
async function search(query: string): Promise<string[]> {
  const rows = await listTasks(database.db, 'sqlite', { search: parseSearch(query) });
  return rows.map((r) => r.uuid).sort();
}

async function idOf(uuid: string): Promise<number> {
  const row = await database.db.selectFrom('tasks').select('id').where('uuid', '=', uuid).executeTakeFirstOrThrow();
  return Number(row.id);
}

/** search_queue as [uuid, reindex] (uuid null for a task no longer in tasks), in queue order. */
async function queued(): Promise<[string | null, number][]> {
  const rows = await sql<{ uuid: string | null; reindex: number }>`
    SELECT t.uuid AS uuid, q.reindex AS reindex FROM search_queue q LEFT JOIN tasks t ON t.id = q.task_id ORDER BY q.task_id`.execute(
    database.db,
  );
  return rows.rows.map((r) => [r.uuid, Number(r.reindex)]);
}

/** Task uuids whose index entry matches an FTS5 query (the index alone, no LIKE, no queue). */
async function indexed(match: string): Promise<string[]> {
  const rows = await sql<{ rowid: number }>`SELECT rowid FROM tasks_search WHERE tasks_search MATCH ${match}`.execute(database.db);
  const ids = rows.rows.map((r) => Number(r.rowid));
  if (ids.length === 0) return [];
  const tasks = await database.db.selectFrom('tasks').select(['id', 'uuid']).where('id', 'in', ids).execute();
  // An index entry without its task would be a leak: name it so the assertion shows it.
  return ids.map((id) => tasks.find((t) => Number(t.id) === id)?.uuid ?? `<no task with id ${id}>`).sort();
}

async function indexSize(): Promise<number> {
  // A contentless table with contentless_delete keeps one docsize row per indexed row.
  const row = await sql<{ n: number }>`SELECT count(*) AS n FROM tasks_search_docsize`.execute(database.db);
  return Number(row.rows[0]!.n);
}

describe('search_queue and SearchIndexer (SQLite)', () => {
  it('queues final tasks, finds them before indexing, indexes them in bulk, and still finds them', async () => {
    await flush([
      ...succeedingTask({ uuid: 'sq-ok', name: 'tasks.invoice', args: "('zanzibar', 1)" }, AT),
      sent({ uuid: 'sq-fail', name: 'tasks.invoice', args: "('quokka',)" }, AT + 1),
      received({ uuid: 'sq-fail', name: 'tasks.invoice', args: "('quokka',)" }, AT + 1.1),
      failed({ uuid: 'sq-fail' }, AT + 1.2, "QuotaExceededError('marmalade')"),
    ]);

    expect(await queued()).toEqual([
      ['sq-ok', 0],
      ['sq-fail', 0],
    ]);
    expect(await indexSize()).toBe(0);
    expect(await indexed('zanzibar')).toEqual([]);
    // Found through the queue: by a word of the args, of the result ('5'), of the exception, by prefix.
    expect(await search('zanzibar')).toEqual(['sq-ok']);
    expect(await search('args:zanzi')).toEqual(['sq-ok']);
    expect(await search('marmalade')).toEqual(['sq-fail']);
    expect(await search('QuotaExceeded')).toEqual(['sq-fail']);
    expect(await search('tasks.invoice')).toEqual(['sq-fail', 'sq-ok']);
    expect(await search('nowhere')).toEqual([]);

    await new SearchIndexer(database.db).drain();

    expect(await queued()).toEqual([]);
    expect(await indexSize()).toBe(2);
    expect(await indexed('zanzibar')).toEqual(['sq-ok']);
    expect(await indexed('args : zanzibar')).toEqual(['sq-ok']);
    expect(await indexed('marmalade')).toEqual(['sq-fail']);
    expect(await indexed('invoice')).toEqual(['sq-fail', 'sq-ok']);
    expect(await search('zanzibar')).toEqual(['sq-ok']);
    expect(await search('args:zanzi')).toEqual(['sq-ok']);
    expect(await search('marmalade')).toEqual(['sq-fail']);
    expect(await search('tasks.invoice')).toEqual(['sq-fail', 'sq-ok']);
    expect(await search('nowhere')).toEqual([]);
  });

  it('indexes a chunk at a time, lowest ids first, and reports how many left the queue', async () => {
    const events: TaskEvent[] = [];
    for (let i = 0; i < 5; i++) events.push(...succeedingTask({ uuid: `chunk-${i}`, args: `('wombat${i}',)` }, AT + i));
    await flush(events);
    const indexer = new SearchIndexer(database.db);

    expect(await indexer.runChunk(2)).toBe(2);
    expect(await indexed('wombat0* OR wombat1* OR wombat2* OR wombat3* OR wombat4*')).toEqual(['chunk-0', 'chunk-1']);
    expect((await queued()).map(([uuid]) => uuid)).toEqual(['chunk-2', 'chunk-3', 'chunk-4']);
    // Half indexed, half queued: the search finds all of them.
    for (let i = 0; i < 5; i++) expect(await search(`wombat${i}`)).toEqual([`chunk-${i}`]);

    expect(await indexer.runChunk(2)).toBe(2);
    expect(await indexer.runChunk(2)).toBe(1);
    expect(await indexer.runChunk(2)).toBe(0);
    expect(await queued()).toEqual([]);
    expect(await indexSize()).toBe(5);
    for (let i = 0; i < 5; i++) expect(await indexed(`wombat${i}`)).toEqual([`chunk-${i}`]);
  });

  it('leaves a task in flight out of the queue, and queues it (then indexes it) once it ends', async () => {
    const story = { uuid: 'sq-flight', name: 'tasks.slow', args: "('kookaburra',)" };
    await flush([sent(story, AT), received(story, AT + 0.1), started(story, AT + 0.2)]);

    expect(await queued()).toEqual([]);
    // Found through the state index while in flight.
    expect(await search('kookaburra')).toEqual(['sq-flight']);
    await new SearchIndexer(database.db).drain();
    expect(await indexSize()).toBe(0);

    await flush([succeeded(story, AT + 5, "'platypus'")]);
    // It was never indexed: nothing to take out first.
    expect(await queued()).toEqual([['sq-flight', 0]]);
    expect(await indexed('platypus')).toEqual([]);
    expect(await search('platypus')).toEqual(['sq-flight']);

    await new SearchIndexer(database.db).drain();
    expect(await queued()).toEqual([]);
    expect(await indexed('platypus')).toEqual(['sq-flight']);
    expect(await indexed('kookaburra')).toEqual(['sq-flight']);
    expect(await search('platypus')).toEqual(['sq-flight']);
    expect(await search('kookaburra')).toEqual(['sq-flight']);
  });

  it('re-indexes a task whose text changes after indexing (a later event that wins the merge)', async () => {
    const story = { uuid: 'sq-re', name: 'tasks.report' };
    await flush([...succeedingTask(story, AT).slice(0, 3), succeeded(story, AT + 1, "'oldresult'")]);
    await new SearchIndexer(database.db).drain();
    expect(await indexed('oldresult')).toEqual(['sq-re']);

    // A later task-succeeded (same rank, later time) wins: its result replaces the old one.
    await flush([succeeded(story, AT + 2, "'newresult'")]);
    const row = await database.db.selectFrom('tasks').select(['result', 'state']).where('uuid', '=', 'sq-re').executeTakeFirstOrThrow();
    expect(row).toEqual({ result: "'newresult'", state: 'SUCCESS' });
    expect(await queued()).toEqual([['sq-re', 1]]);
    expect(await search('newresult')).toEqual(['sq-re']);
    expect(await search('oldresult')).toEqual([]);

    await new SearchIndexer(database.db).drain();
    expect(await queued()).toEqual([]);
    expect(await indexed('newresult')).toEqual(['sq-re']);
    // The old entry went out of the index (search results would hide it anyway: LIKE confirms).
    expect(await indexed('oldresult')).toEqual([]);
    expect(await indexSize()).toBe(1);
    expect(await search('newresult')).toEqual(['sq-re']);
  });

  it('re-indexes a task changed by an UPDATE, and one changed again before it was indexed', async () => {
    await flush([
      ...succeedingTask({ uuid: 'sq-up', args: "('firstword',)" }, AT),
      ...succeedingTask({ uuid: 'sq-twice', args: "('alpha',)" }, AT + 1),
    ]);
    await new SearchIndexer(database.db).drain();

    await database.db.updateTable('tasks').set({ result: 'secondword' }).where('uuid', '=', 'sq-up').execute();
    // Changed twice before the index catches up: queued once, as a re-index.
    await database.db.updateTable('tasks').set({ args: "('beta',)" }).where('uuid', '=', 'sq-twice').execute();
    await database.db.updateTable('tasks').set({ args: "('gamma',)" }).where('uuid', '=', 'sq-twice').execute();
    // A write that changes none of the searched columns queues nothing.
    await database.db.updateTable('tasks').set({ traceback: 'ignored' }).where('uuid', '=', 'sq-up').execute();
    expect(await queued()).toEqual([
      ['sq-up', 1],
      ['sq-twice', 1],
    ]);

    await new SearchIndexer(database.db).drain();
    expect(await indexed('secondword')).toEqual(['sq-up']);
    expect(await indexed('firstword')).toEqual(['sq-up']); // its args did not change
    expect(await indexed('gamma')).toEqual(['sq-twice']);
    expect(await indexed('alpha')).toEqual([]);
    expect(await indexed('beta')).toEqual([]);
    expect(await indexSize()).toBe(2);
    expect(await search('secondword')).toEqual(['sq-up']);
    expect(await search('gamma')).toEqual(['sq-twice']);
    expect(await search('alpha')).toEqual([]);
  });

  it('a queued task changed again before indexing is indexed once, with its newest text', async () => {
    await flush(succeedingTask({ uuid: 'sq-early', args: "('before',)" }, AT));
    expect(await queued()).toEqual([['sq-early', 0]]);
    await database.db.updateTable('tasks').set({ args: "('after',)" }).where('uuid', '=', 'sq-early').execute();
    // Already queued as new: the trigger's re-index flag (old state final) is kept at the larger value.
    expect(await queued()).toEqual([['sq-early', 1]]);
    await new SearchIndexer(database.db).drain();
    expect(await indexed('after')).toEqual(['sq-early']);
    expect(await indexed('before')).toEqual([]);
    expect(await indexSize()).toBe(1);
  });

  it('takes a task that leaves the final states out of the index, and puts it back when it returns', async () => {
    // The merge never lets a final task go back in flight; another writer (or a hand-made UPDATE) can.
    await flush([
      ...succeedingTask({ uuid: 'sq-leave', args: "('pelican',)" }, AT),
      ...succeedingTask({ uuid: 'sq-bounce', args: "('heron',)" }, AT + 1),
    ]);
    await new SearchIndexer(database.db).drain();

    await database.db.updateTable('tasks').set({ state: 'STARTED' }).where('uuid', 'in', ['sq-leave', 'sq-bounce']).execute();
    expect(await queued()).toEqual([
      ['sq-leave', 1],
      ['sq-bounce', 1],
    ]);
    // Back in a final state with new text before the index caught up: it must still lose its old entry.
    await database.db.updateTable('tasks').set({ state: 'SUCCESS', args: "('egret',)" }).where('uuid', '=', 'sq-bounce').execute();
    expect(await queued()).toEqual([
      ['sq-leave', 1],
      ['sq-bounce', 1],
    ]);

    await new SearchIndexer(database.db).drain();
    expect(await indexed('pelican')).toEqual([]);
    expect(await indexed('heron')).toEqual([]);
    expect(await indexed('egret')).toEqual(['sq-bounce']);
    expect(await indexSize()).toBe(1);
    // In flight, it is found through the state index.
    expect(await search('pelican')).toEqual(['sq-leave']);
    expect(await search('egret')).toEqual(['sq-bounce']);

    await database.db.updateTable('tasks').set({ state: 'FAILURE' }).where('uuid', '=', 'sq-leave').execute();
    // It is not in the index now: nothing to take out.
    expect(await queued()).toEqual([['sq-leave', 0]]);
    await new SearchIndexer(database.db).drain();
    expect(await indexed('pelican')).toEqual(['sq-leave']);
    expect(await indexSize()).toBe(2);
    expect(await search('pelican')).toEqual(['sq-leave']);
  });

  it('retention removes indexed tasks from the index, and queued tasks it deleted never reach it', async () => {
    const now = AT + 100;
    await flush([
      ...succeedingTask({ uuid: 'keep-1', args: "('keepsake1',)" }, AT + 50),
      ...succeedingTask({ uuid: 'gone-indexed', args: "('goneindexed',)" }, AT + 10),
    ]);
    await new SearchIndexer(database.db).drain();
    await flush([
      ...succeedingTask({ uuid: 'gone-queued', args: "('gonequeued',)" }, AT + 11),
      ...succeedingTask({ uuid: 'keep-2', args: "('keepsake2',)" }, AT + 51),
    ]);
    const goneQueuedId = await idOf('gone-queued');
    expect(await indexed('goneindexed')).toEqual(['gone-indexed']);
    expect(await search('gonequeued')).toEqual(['gone-queued']);

    const report = await pruneOnce(database.db, { maxTasks: 2, maxAgeSeconds: 0, intervalMs: 0 }, now);
    expect(report.tasks).toBe(2);
    const left = await database.db.selectFrom('tasks').select('uuid').orderBy('uuid').execute();
    expect(left.map((r) => r.uuid)).toEqual(['keep-1', 'keep-2']);

    // The indexed one left the index with its row.
    expect(
      await sql`SELECT rowid FROM tasks_search WHERE tasks_search MATCH 'goneindexed'`.execute(database.db).then((r) => r.rows),
    ).toEqual([]);
    expect(await indexSize()).toBe(1);
    // The queued one may still be noted in the queue; it finds nothing.
    expect(await search('goneindexed')).toEqual([]);
    expect(await search('gonequeued')).toEqual([]);
    expect(await search('keepsake1')).toEqual(['keep-1']);
    expect(await search('keepsake2')).toEqual(['keep-2']);

    await new SearchIndexer(database.db).drain();
    expect(await queued()).toEqual([]);
    expect(
      await sql`SELECT rowid FROM tasks_search WHERE tasks_search MATCH 'gonequeued'`.execute(database.db).then((r) => r.rows),
    ).toEqual([]);
    expect(await sql`SELECT rowid FROM tasks_search WHERE rowid = ${goneQueuedId}`.execute(database.db).then((r) => r.rows)).toEqual([]);
    expect(await indexed('keepsake1 OR keepsake2')).toEqual(['keep-1', 'keep-2']);
    expect(await indexSize()).toBe(2);
    expect(await search('gonequeued')).toEqual([]);
    expect(await search('keepsake2')).toEqual(['keep-2']);
  });
});
