// Everything that writes to the database on the collector's behalf: flushes
// (StoreWriter), the search index catching up after them (SearchIndexer,
// SQLite only) and retention. It runs on the store thread (store/thread.ts),
// so that nothing it waits for ever stops the broker socket from being read;
// or, for an in-memory SQLite database that no other thread can open, in
// the collector's own thread.

import { getHeapStatistics } from 'node:v8';
import type { Logger } from '../../src/shared/log';
import { errorMessage } from '../../src/shared/log';
import type { OpenDatabase } from './db';
import { LostSweepFencedError, sweepLost } from './lost';
import type { FlushPayload } from './payload';
import { type RetentionOptions, RetentionPruner } from './retention';
import { SearchIndexer } from './search-index';
import { StoreWriter, type WriteResult } from './writer';

/** Tasks indexed per chunk: about 50 ms of work, so a flush never waits long behind one. */
const INDEX_CHUNK = 5_000;
/** A flush this large means events are pouring in: the index waits, bar one chunk per BUSY_INDEX_EVERY_MS. */
const BUSY_FLUSH_TASKS = 2_000;
const BUSY_INDEX_EVERY_MS = 5_000;

export class StoreService {
  private readonly writer: StoreWriter;
  private readonly indexer: SearchIndexer | undefined;
  private readonly pruner: RetentionPruner;
  private catchingUp: Promise<void> | undefined;
  private closed = false;
  private busy = false;
  private lastIndexedAt = 0;

  constructor(
    private readonly database: OpenDatabase,
    retention: RetentionOptions,
    private readonly log: Logger,
    /** Close the database with the service (the store thread opened its own). */
    private readonly ownsDatabase: boolean,
  ) {
    this.writer = new StoreWriter(database, log);
    this.indexer = database.dialect === 'sqlite' ? new SearchIndexer(database.db) : undefined;
    this.pruner = new RetentionPruner(database.db, retention, log.child('retention'));
    this.pruner.start();
  }

  async write(payload: FlushPayload): Promise<WriteResult> {
    const started = performance.now();
    const result = await this.writer.write(payload);
    if (payload.lost) await this.sweepLost(payload);
    this.busy = payload.tasks.length >= BUSY_FLUSH_TASKS;
    const heap = getHeapStatistics();
    this.log.debug(
      `flush: ${payload.tasks.length} tasks in ${Math.round(performance.now() - started)} ms (heap ${Math.round(heap.used_heap_size / 1048576)}/${Math.round(heap.total_heap_size / 1048576)} MiB)`,
    );
    return result;
  }

  /**
   * After the flush's own transaction (the rows it wrote are what is judged),
   * in one of its own: a failure here is logged and the next sweep tries
   * again; it never fails the flush.
   */
  private async sweepLost(payload: FlushPayload): Promise<void> {
    try {
      const { total, byName, revived } = await sweepLost(this.database.db, this.database.dialect, payload.lost!, payload.lease);
      if (total > 0) this.log.info(`marked ${total} tasks LOST (${[...byName].map(([name, n]) => `${name || '?'}: ${n}`).join(', ')})`);
      if (revived > 0) this.log.info(`${revived} LOST tasks given back their state: their worker came back as the same process`);
    } catch (error) {
      if (error instanceof LostSweepFencedError) this.log.debug(error.message);
      else this.log.warn(`marking lost tasks failed (${errorMessage(error)}); will try again`);
    }
  }

  /**
   * Let the search index catch up: one chunk per turn of the event loop (so
   * a flush that arrives meanwhile goes first), while more are waiting. One
   * catch-up at a time; calling it again while one runs does nothing.
   */
  catchUp(): void {
    if (!this.indexer || this.catchingUp) return;
    const indexer = this.indexer;
    this.catchingUp = (async () => {
      do await new Promise((resolve) => setImmediate(resolve));
      while (!this.closed && (await this.indexChunk(indexer)));
    })().finally(() => (this.catchingUp = undefined));
  }

  /** One chunk; whether more may be waiting. */
  private async indexChunk(indexer: SearchIndexer): Promise<boolean> {
    // Under a flood, every core goes to taking events in; the index catches up after (searches see queued tasks meanwhile).
    if (this.busy && Date.now() - this.lastIndexedAt < BUSY_INDEX_EVERY_MS) return false;
    this.lastIndexedAt = Date.now();
    try {
      const started = performance.now();
      const indexed = await indexer.runChunk(INDEX_CHUNK);
      if (indexed > 0) this.log.debug(`search index: ${indexed} tasks in ${Math.round(performance.now() - started)} ms`);
      return indexed >= INDEX_CHUNK;
    } catch (error) {
      this.log.warn(`search index: catching up failed (${errorMessage(error)}); will try again`);
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.catchingUp;
    await this.pruner.stop();
    if (this.ownsDatabase) await this.database.close();
  }
}
