// GET /api/stats/tasks over SQLite and MariaDB, through app.request(): the
// exact JSON shape, windows, names, the default step, and the 400s.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { failed, received, retryingTask, started, succeeded, succeedingTask } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T0 = 1_800_000_000; // a minute and an hour boundary

describe.each(DIALECTS)('/api/stats/tasks on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: ReturnType<typeof testApp>;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    const add = (events: ReturnType<typeof succeedingTask>) => {
      for (const e of events) batch.add(e, workers);
    };
    add(succeedingTask({ uuid: 'ok-1', name: 'billing.charge' }, T0));
    add(succeedingTask({ uuid: 'ok-2', name: 'billing.charge' }, T0 + 61));
    add([
      received({ uuid: 'bad-1', name: 'billing.refund' }, T0 + 5),
      started({ uuid: 'bad-1' }, T0 + 6),
      failed({ uuid: 'bad-1' }, T0 + 7),
    ]);
    add(retryingTask({ uuid: 'retry-1', name: 'mail.send' }, T0 + 3600));
    add([received({ uuid: 'slow-1', name: 'mail.send' }, T0 + 3700), succeeded({ uuid: 'slow-1' }, T0 + 3710, '1', 42)]);
    await store(database, batch, workers);
    app = testApp(database, { now: T0 + 4000 });
  });
  afterAll(async () => {
    await database?.drop();
  });

  const get = async (query: string) => {
    const response = await app.request(`/api/stats/tasks?${query}`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('answers the documented shape, key for key, one series per name with events', async () => {
    const { status, body } = await get(`from=${T0}&to=${T0 + 120}&step=60`);
    expect(status).toBe(200);
    expect(JSON.stringify(body)).toBe(
      JSON.stringify({
        step: 60,
        series: [
          {
            name: 'billing.charge',
            buckets: [
              // sent, received, started, succeeded at T0 + 0 ... 0.05; runtime 0.01; queue wait 0.02.
              bucket(T0, { sent: 1, received: 1, started: 1, succeeded: 1 }, 0.01, 0.025),
              bucket(T0 + 60, { sent: 1, received: 1, started: 1, succeeded: 1 }, 0.01, 0.025),
            ],
          },
          { name: 'billing.refund', buckets: [bucket(T0, { received: 1, started: 1, failed: 1 }, null, null)] },
        ],
      }),
    );
  });

  it('reads one name, hours, and the default step', async () => {
    const hours = await get(`from=${T0 - 400}&to=${T0 + 7200}&step=3600&name=mail.send`);
    expect(hours.body).toEqual({
      step: 3600,
      series: [
        {
          name: 'mail.send',
          buckets: [expect.objectContaining({ t: T0 + 3600, sent: 1, received: 3, started: 2, retried: 1, succeeded: 2, runtime_p99: 60 })],
        },
      ],
    });
    expect((await get(`from=${T0}&to=${T0 + 86_400}`)).body.step).toBe(60);
    expect((await get(`from=${T0}&to=${T0 + 86_401}`)).body.step).toBe(3600);
    expect((await get(`from=${T0 + 100_000}&to=${T0 + 100_060}`)).body).toEqual({ step: 60, series: [] });
  });

  it('refuses a bad window or step with 400 and a message', async () => {
    for (const query of [
      `to=${T0}&step=60`,
      `from=${T0}&step=60`,
      `from=${T0}&to=${T0}&step=60`,
      `from=${T0 + 60}&to=${T0}&step=60`,
      `from=${T0}&to=${T0 + 60}&step=30`,
      `from=${T0}&to=${T0 + 60}&step=60&step=60`,
      `from=0&to=${T0}&step=60`,
      `from=0&to=${T0}&step=3600`,
      `from=x&to=${T0}`,
    ]) {
      const { status, body } = await get(query);
      expect(status, query).toBe(400);
      expect(typeof body.error, query).toBe('string');
    }
    // Two weeks of minutes is the most.
    expect((await get(`from=${T0}&to=${T0 + 14 * 86_400}&step=60`)).status).toBe(200);
  });
});

function bucket(t: number, counts: Record<string, number>, runtime: number | null, wait: number | null) {
  return {
    t,
    sent: 0,
    received: 0,
    started: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
    revoked: 0,
    rejected: 0,
    ...counts,
    runtime_p50: runtime,
    runtime_p95: runtime,
    runtime_p99: runtime,
    queue_wait_p95: wait,
  };
}
