// The metrics snapshot thread (metrics-snapshot.ts): its own connection to
// the collector's database; renders and stores /metrics when ticked.

import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../src/shared/log';
import { storeMetricsSnapshot } from './metrics-render';
import type { FromSnapshotThread, SnapshotThreadData, ToSnapshotThread } from './metrics-snapshot';
import { openDatabase } from './store/db';

const port = parentPort!;
const data = workerData as SnapshotThreadData;
const send = (message: FromSnapshotThread) => port.postMessage(message);
const database = await openDatabase(data.url);
let queue: Promise<void> = Promise.resolve();

port.on('message', (message: ToSnapshotThread) => {
  queue = queue.then(async () => {
    if (message.kind === 'close') {
      await database.close().catch(() => undefined);
      send({ kind: 'closed' });
      return;
    }
    try {
      send({ kind: 'rendered', figures: await storeMetricsSnapshot(database.db, data.settings) });
    } catch (error) {
      send({ kind: 'failed', message: errorMessage(error) });
    }
  });
});
