// SQLite's text index, filled in bulk after flushes (migration 006): tasks
// noted in `search_queue` are indexed a chunk at a time, each chunk one
// transaction of three statements. Searches count queued tasks as
// candidates, so the index may lag behind writes without missing anything.
// MySQL's FULLTEXT index needs none of this: its queue stays empty.

import { type Kysely, sql } from 'kysely';
import { FINAL, SEARCHED } from '../migrations/2026-11-24-003-search';
import type { Database } from '../../src/shared/schema';

const COLUMNS = SEARCHED.join(', ');

export class SearchIndexer {
  constructor(private readonly db: Kysely<Database>) {}

  /** Index up to `limit` queued tasks; returns how many left the queue. */
  async runChunk(limit: number): Promise<number> {
    // Read before the transaction: one that begins with a read and then
    // writes fails at once (SQLITE_BUSY, no waiting) if another connection
    // wrote in between. Only this connection's flushes add to the queue, so
    // the bound still holds inside.
    const last = await this.db
      .selectFrom('search_queue')
      .select('task_id')
      .orderBy('task_id')
      .offset(limit - 1)
      .limit(1)
      .executeTakeFirst();
    const upTo = last ? Number(last.task_id) : Number.MAX_SAFE_INTEGER;
    return this.db.transaction().execute(async (trx) => {
      const through = sql`(SELECT task_id FROM search_queue WHERE task_id <= ${upTo})`;
      await sql`DELETE FROM tasks_search WHERE rowid IN (SELECT task_id FROM search_queue WHERE task_id <= ${upTo} AND reindex = 1)`.execute(
        trx,
      );
      await sql`INSERT INTO tasks_search(rowid, ${sql.raw(COLUMNS)}) SELECT id, ${sql.raw(COLUMNS)} FROM tasks WHERE id IN ${through} AND state IN ${sql.raw(FINAL)}`.execute(
        trx,
      );
      const removed = await trx.deleteFrom('search_queue').where('task_id', '<=', upTo).executeTakeFirst();
      return Number(removed.numDeletedRows);
    });
  }

  /** Index everything queued (tests, benchmarks and shutdown). */
  async drain(chunk = 20_000): Promise<void> {
    while ((await this.runChunk(chunk)) > 0);
  }
}
