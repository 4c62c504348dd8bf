// The store thread (worker-collector/store/thread.ts) against real SQLite and
// MariaDB: flushes handed over by structured clone land in the database, and
// a thread that dies (here: past its heap bound, on a flush far too large
// for it) fails only that write, which the collector keeps and retries; the
// next write starts a new thread and lands.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/log';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { buildFlushPayload } from '../../worker-collector/store/payload';
import { StoreThread } from '../../worker-collector/store/thread';
import { succeedingTask } from '../fixtures/events';
import { DIALECTS, openTestDatabase } from '../support/databases';

const quiet = createLogger('test', 'error', () => undefined);
const NO_RETENTION = { maxTasks: 0, maxAgeSeconds: 0, intervalMs: 60_000 };

function payloadOf(prefix: string, tasks: number, argsLength = 10) {
  const batch = new EventBatch();
  const workers = new Map<string, WorkerState>();
  for (let i = 0; i < tasks; i++) {
    const story = { uuid: `${prefix}-${i}`, name: 'thread.test', args: `(${'x'.repeat(argsLength)}, ${i})` };
    for (const event of succeedingTask(story)) batch.add(event, workers);
  }
  return buildFlushPayload(batch, () => undefined, workers, null).payload;
}

describe.each(DIALECTS)('store thread on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await database.drop();
  });

  const stored = async (prefix: string) =>
    Number(
      (
        await database.db
          .selectFrom('tasks')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('uuid', 'like', `${prefix}-%`)
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('writes what it is handed, dies of a flush past its heap bound without taking the collector along, and starts again for the next', async () => {
    const thread = new StoreThread({ url: database.url, retention: NO_RETENTION, logLevel: 'error', cacheMiB: 4, heapMiB: 16 }, quiet);
    try {
      await thread.started();
      const first = await thread.write(payloadOf('first', 50));
      expect(first.rejectedRows).toBe(0);
      expect(await stored('first')).toBe(50);

      // About 130 MB of task arguments for a thread whose heap may hold 16 MiB.
      await expect(thread.write(payloadOf('huge', 2_000, 32_000))).rejects.toThrow(/store thread exited/);
      expect(await stored('huge')).toBe(0);

      const after = await thread.write(payloadOf('after', 50));
      expect(after.rejectedRows).toBe(0);
      expect(await stored('after')).toBe(50);
    } finally {
      await thread.close();
    }
  });
});
