// The store's thread: owns the write connection and runs StoreWriter, so
// SQL work (most of a flush) runs on the second core while the main thread
// keeps reading and folding events. Messages: see thread-writer.ts.

import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, errorMessage, type LogLevel } from '../../src/shared/log';
import { openDatabase } from './db';
import type { FlushPayload } from './payload';
import { DatabaseUnavailableError, StoreWriter } from './writer';

export interface StoreThreadData {
  url: string;
  logLevel: LogLevel;
}

/** `payload` is a FlushPayload as JSON. */
export type StoreRequest =
  | { id: number; kind: 'write'; payload: string }
  | { id: number; kind: 'ready' }
  | { id: number; kind: 'close' };

export type StoreReply =
  | { id: number; ok: true; rejectedRows: number; resolved: [string, { name: string | null; queue: string | null }][] }
  | { id: number; ok: false; unavailable: boolean; message: string };

const port = parentPort;
if (!port) throw new Error('store/thread.ts runs as a worker thread');

const { url, logLevel } = workerData as StoreThreadData;
const database = await openDatabase(url);
const writer = new StoreWriter(database, createLogger('collector.store', logLevel));

port.on('message', (request: StoreRequest) => {
  if (request.kind === 'ready') {
    port.postMessage({ id: request.id, ok: true, rejectedRows: 0, resolved: [] } satisfies StoreReply);
    return;
  }
  if (request.kind === 'close') {
    void database.close().finally(() => port.postMessage({ id: request.id, ok: true, rejectedRows: 0, resolved: [] } satisfies StoreReply));
    return;
  }
  writer.write(JSON.parse(request.payload) as FlushPayload).then(
    (result) => port.postMessage({ id: request.id, ok: true, ...result } satisfies StoreReply),
    (error: unknown) =>
      port.postMessage({
        id: request.id,
        ok: false,
        unavailable: error instanceof DatabaseUnavailableError,
        message: errorMessage(error),
      } satisfies StoreReply),
  );
});
