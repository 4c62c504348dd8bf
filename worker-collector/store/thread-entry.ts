// The store thread (see store/thread.ts): opens its own connection to the
// collector's database and writes the flushes it is handed, one at a time,
// in the order they come. Between flushes it lets the search index catch up.

import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, errorMessage, type LogLevel, type LogSink } from '../../src/shared/log';
import { openDatabase } from './db';
import { StoreService } from './service';
import type { FromThread, StoreThreadData, ToThread } from './thread';

const port = parentPort!;
const data = workerData as StoreThreadData;
const send = (message: FromThread) => port.postMessage(message);
// Log lines go to the collector's logger, which knows where they belong.
const sink: LogSink = (level: LogLevel, line: string) => send({ kind: 'log', level, message: line.slice(line.indexOf('] ') + 2) });
const log = createLogger('store', data.logLevel, sink);

const database = await openDatabase(data.url, { cacheMiB: data.cacheMiB });
const service = new StoreService(database, data.retention, log, true);
let queue: Promise<void> = Promise.resolve();

port.on('message', (message: ToThread) => {
  if (message.kind === 'close') {
    queue = queue.then(async () => {
      await service.close();
      send({ kind: 'closed' });
    });
    return;
  }
  queue = queue.then(async () => {
    try {
      const result = await service.write(message.payload);
      send({ kind: 'written', id: message.id, result });
      service.catchUp();
    } catch (error) {
      send({ kind: 'failed', id: message.id, name: error instanceof Error ? error.name : 'Error', message: errorMessage(error) });
    }
  });
});
send({ kind: 'ready' });
