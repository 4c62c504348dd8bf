// The collector's side of the store thread: the same write() as StoreWriter,
// answered by the thread. A thread that dies is started again on the next
// write; the write in flight fails like a database outage, so the collector
// keeps its batch and retries.

import { Worker } from 'node:worker_threads';
import { createRateLimitedLog, type Logger, type LogLevel } from '../../src/shared/log';
import type { FlushPayload } from './payload';
import type { StoreReply, StoreRequest, StoreThreadData } from './thread';
import { DatabaseUnavailableError, type StoreWriter, type WriteResult } from './writer';

export interface FlushWriter {
  /** Resolves when writes can start (the thread has loaded and opened the database). */
  start(): Promise<void>;
  write(payload: FlushPayload): Promise<WriteResult>;
  close(): Promise<void>;
}

/** The store on the collector's own thread (in-memory SQLite, tests). */
export class InlineStoreWriter implements FlushWriter {
  constructor(private readonly writer: StoreWriter) {}
  async start(): Promise<void> {}
  write(payload: FlushPayload): Promise<WriteResult> {
    return this.writer.write(payload);
  }
  async close(): Promise<void> {}
}

/**
 * Bundled (dist/collector.js, dist/node.js) the thread is dist/store-thread.js
 * beside the bundle; run from TypeScript sources (tests, `npm run dev`) it
 * needs tsx's loader, which thread-entry.mjs registers.
 */
function storeThreadUrl(): URL {
  return import.meta.url.endsWith('.ts') ? new URL('./thread-entry.mjs', import.meta.url) : new URL('./store-thread.js', import.meta.url);
}

type Waiter = { resolve: (reply: StoreReply) => void };
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class ThreadedStoreWriter implements FlushWriter {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private readonly warn: (key: string, message: string) => void;

  constructor(
    private readonly url: string,
    private readonly logLevel: LogLevel,
    log: Logger,
  ) {
    this.warn = createRateLimitedLog((m) => log.error(m), 10_000);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(storeThreadUrl(), {
      workerData: { url: this.url, logLevel: this.logLevel } satisfies StoreThreadData,
    });
    worker.on('message', (reply: StoreReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      waiter?.resolve(reply);
    });
    const fail = (message: string) => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, waiter] of this.waiting) waiter.resolve({ id, ok: false, unavailable: true, message });
      this.waiting.clear();
    };
    worker.on('error', (error) => {
      this.warn('thread', `store thread failed: ${error.message}`);
      fail(`store thread failed: ${error.message}`);
    });
    worker.on('exit', (code) => fail(`store thread exited (${code})`));
    this.worker = worker;
    return worker;
  }

  private request(request: WithoutId<StoreRequest>): Promise<StoreReply> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, { resolve });
      this.thread().postMessage({ ...request, id } as StoreRequest);
    });
  }

  /**
   * Load the thread before events flow: loading its modules takes a moment,
   * and a broker delivering meanwhile must not find a slow reader.
   */
  async start(): Promise<void> {
    const reply = await this.request({ kind: 'ready' });
    if (!reply.ok) throw new Error(reply.message);
  }

  async write(payload: FlushPayload): Promise<WriteResult> {
    // JSON crosses threads several times faster than a structured clone of
    // many small arrays; the thread parses it off the main thread.
    const reply = await this.request({ kind: 'write', payload: JSON.stringify(payload) });
    if (reply.ok) return { rejectedRows: reply.rejectedRows, resolved: reply.resolved };
    if (reply.unavailable) throw new DatabaseUnavailableError(reply.message.replace(/^database unavailable: /, ''));
    throw new Error(reply.message);
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    await this.request({ kind: 'close' });
    this.worker = undefined;
    await worker.terminate();
  }
}
