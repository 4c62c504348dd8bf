// The collector's side of the store thread. A flush is handed over as the
// payload itself (structured clone: about 1 µs a task row, measured with
// bench/store.ts's rows) and answered with what the write resolved; the
// thread opens its own connection to the database named by the URL.
//
// Why a thread: SQLite statements are synchronous, and a flush of 10,000
// tasks holds the thread that runs it for 100-300 ms. On the collector's own
// thread that is time nobody reads the broker socket, and Redis cuts a
// subscriber whose output buffer passes its limit (32 MiB). With the store
// here, the collector only decodes and folds; flushes, the search index and
// retention take the other core.

import type { Worker } from 'node:worker_threads';
import type { Logger, LogLevel } from '../../src/shared/log';
import type { FlushPayload } from './payload';
import type { RetentionOptions } from './retention';
import { StoreService } from './service';
import type { OpenDatabase } from './db';
import { startThread } from '../threads';
import { DatabaseUnavailableError, type WriteResult } from './writer';

/** Where flushes go: a store thread, or (in-memory SQLite) the collector's own thread. */
export interface FlushStore {
  /** Resolves once writes can go (the store thread has its database open), or rejects. */
  started(): Promise<void>;
  write(payload: FlushPayload): Promise<WriteResult>;
  close(): Promise<void>;
}

export interface StoreThreadData {
  url: string;
  retention: RetentionOptions;
  logLevel: LogLevel;
  /** SQLite page cache of the thread's connection (MiB). */
  cacheMiB: number;
  /** Bound of the thread's old generation (MiB). */
  heapMiB: number;
}

export type ToThread = { kind: 'write'; id: number; payload: FlushPayload } | { kind: 'close' };

export type FromThread =
  | { kind: 'ready' }
  | { kind: 'written'; id: number; result: WriteResult }
  | { kind: 'failed'; id: number; name: string; message: string }
  | { kind: 'log'; level: LogLevel; message: string }
  | { kind: 'closed' };

/** An error that crossed from the thread, as the collector tells them apart (by name). */
export function errorFromThread(name: string, message: string): Error {
  if (name === 'DatabaseUnavailableError') {
    const error = new DatabaseUnavailableError(message);
    error.message = message;
    return error;
  }
  const error = new Error(message);
  error.name = name;
  return error;
}

/**
 * The store thread's heap: young generation small (flushes are garbage a
 * moment after they are written), old generation bounded. A thread past its
 * bound is ended by Node and started again by the next write; the flush it
 * held is retried from the collector's copy, so nothing is lost.
 */
const YOUNG_GENERATION_MIB = 12;

interface Running {
  worker: Worker;
  ready: Promise<void>;
  closed: Promise<void>;
  exited: Error | undefined;
}

export class StoreThread implements FlushStore {
  private readonly waiting = new Map<number, { resolve: (r: WriteResult) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private current: Running;
  private closing = false;

  constructor(
    private readonly data: StoreThreadData,
    private readonly log: Logger,
  ) {
    this.current = this.spawn();
  }

  private spawn(): Running {
    const worker = startThread(import.meta.url, './thread-entry.ts', 'store-thread.js', {
      workerData: this.data,
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MIB, maxOldGenerationSizeMb: this.data.heapMiB },
    });
    let markReady!: () => void;
    let markClosed!: () => void;
    const running: Running = {
      worker,
      ready: new Promise((resolve) => (markReady = resolve)),
      closed: new Promise((resolve) => (markClosed = resolve)),
      exited: undefined,
    };
    worker.on('message', (message: FromThread) => {
      switch (message.kind) {
        case 'ready':
          markReady();
          break;
        case 'written':
          this.settle(message.id)?.resolve(message.result);
          break;
        case 'failed':
          this.settle(message.id)?.reject(errorFromThread(message.name, message.message));
          break;
        case 'log':
          this.log[message.level](message.message);
          break;
        case 'closed':
          markClosed();
          break;
      }
    });
    worker.on('error', (error) => this.log.error(`store thread failed: ${error.stack ?? error.message}`));
    worker.on('exit', (code) => {
      running.exited = new Error(`the store thread exited (code ${code})`);
      // Whatever it held comes back to the collector, which keeps the batch and retries.
      for (const waiter of this.waiting.values()) waiter.reject(running.exited);
      this.waiting.clear();
      markReady();
      markClosed();
    });
    return running;
  }

  private settle(id: number) {
    const waiter = this.waiting.get(id);
    this.waiting.delete(id);
    return waiter;
  }

  async started(): Promise<void> {
    await this.current.ready;
    if (this.current.exited) throw this.current.exited;
  }

  write(payload: FlushPayload): Promise<WriteResult> {
    if (this.current.exited && !this.closing) {
      this.log.warn(`${this.current.exited.message}; starting it again`);
      this.current = this.spawn();
    }
    const { worker, exited } = this.current;
    if (exited) return Promise.reject(exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ kind: 'write', id, payload } satisfies ToThread);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const { worker, exited, closed } = this.current;
    if (exited) return;
    worker.postMessage({ kind: 'close' } satisfies ToThread);
    const deadline = new Promise((resolve) => setTimeout(resolve, 5_000).unref());
    await Promise.race([closed, deadline]);
    await worker.terminate();
  }
}

/** The store on the collector's own thread (a `:memory:` SQLite database exists only on the connection that made it). */
export class InlineStore implements FlushStore {
  private readonly service: StoreService;

  constructor(database: OpenDatabase, retention: RetentionOptions, log: Logger) {
    this.service = new StoreService(database, retention, log, false);
  }

  async started(): Promise<void> {}

  async write(payload: FlushPayload): Promise<WriteResult> {
    const result = await this.service.write(payload);
    this.service.catchUp();
    return result;
  }

  close(): Promise<void> {
    return this.service.close();
  }
}
