// A Redis broker that dies and comes back: the real local entry must report
// the outage on /healthcheck, never exit, reconnect by itself and record the
// tasks a (reconnected) Celery worker runs afterwards. Uses a private
// redis-server so that killing it disturbs nothing else.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CeleryTarget, type CeleryWorker, sendAdd, startWorker, uniqueWorkerName } from '../support/celery';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { freePort, type ManagedProcess, printLogsOnFailure, spawnManaged, stopAllProcesses } from '../support/processes';
import { type ApiTask, type ApiWorker, type Stalk, startStalk, waitFor } from '../support/stalk';

async function startRedis(port: number): Promise<ManagedProcess> {
  const redis = spawnManaged(`redis-server :${port}`, 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  await redis.waitForOutput(/Ready to accept connections/, 15_000);
  return redis;
}

describe('broker restart (private Redis)', () => {
  let port = 0;
  let database: TestDatabase | undefined;
  let stalk: Stalk | undefined;
  let target: CeleryTarget;
  let brokerUrl = '';

  printLogsOnFailure();

  beforeAll(async () => {
    port = await freePort();
    brokerUrl = `redis://127.0.0.1:${port}/0`;
    // No result backend: nothing in this test waits for results, and the worker then only
    // depends on the broker connection it must re-establish.
    target = { broker: brokerUrl, backend: '' };
    database = await createTestDatabase('sqlite');
  });

  afterAll(async () => {
    await stopAllProcesses();
    await database?.drop();
  });

  function alive(): Stalk {
    if (!stalk) throw new Error('stalk did not start');
    const exit = stalk.process.exitInfo();
    if (exit) throw new Error(`stalk exited: ${JSON.stringify(exit)}`);
    return stalk;
  }

  async function waitForSuccess(id: string, expectedResult: string, timeoutMs: number): Promise<ApiTask> {
    return waitFor(
      async () => {
        const { status, text } = await alive().fetchText(`/api/task/info/${id}`);
        if (status !== 200) return undefined;
        const found = JSON.parse(text) as ApiTask;
        return found.state === 'SUCCESS' && found.result === expectedResult ? found : undefined;
      },
      timeoutMs,
      `task ${id} recorded as SUCCESS`,
    );
  }

  it('records tasks before the outage, reports it, and records tasks after the broker is back', async () => {
    if (!database) throw new Error('no database');
    let redis = await startRedis(port);
    stalk = await startStalk({ broker: brokerUrl, db: database.url });
    const worker: CeleryWorker = await startWorker({ ...target, hostname: uniqueWorkerName('restart') });

    const before = await sendAdd(target, 1, 2);
    const first = await waitForSuccess(before, '3', 20_000);
    expect(first).toMatchObject({ name: 'stalk.add', args: '(1, 2)', worker: worker.hostname });

    // The broker dies without a goodbye.
    redis.signal('SIGKILL');
    expect(await redis.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const outage = await waitFor(
      async () => {
        const response = await alive().fetchText('/healthcheck');
        return response.status === 503 ? response : undefined;
      },
      10_000,
      '/healthcheck to report the broker outage',
      100,
    );
    expect(outage.text).toContain('broker unavailable');
    expect(outage.text).toContain(`redis://127.0.0.1:${port}/0`);
    // Still down after two more reconnect attempts failed, and still running (they must not give up or crash).
    const attempts = () => alive().process.output().split(`broker redis://127.0.0.1:${port}/0 unreachable; reconnecting in`).length - 1;
    const attemptsBefore = attempts();
    await waitFor(() => attempts() >= attemptsBefore + 2, 20_000, 'two more reconnect attempts');
    expect((await alive().fetchText('/healthcheck')).status).toBe(503);
    // What was stored is still served while the broker is away.
    expect((await alive().fetchJson<ApiTask>(`/api/task/info/${before}`)).state).toBe('SUCCESS');

    redis = await startRedis(port);
    await waitFor(async () => (await alive().fetchText('/healthcheck')).status === 200, 30_000, '/healthcheck back to 200');
    expect(alive().process.output()).toContain(`lost connection to redis://127.0.0.1:${port}/0`);

    // The worker reconnects on its own; the task waits in the (new, empty) queue until it does.
    const after = await sendAdd(target, 20, 22);
    const second = await waitForSuccess(after, '42', 60_000);
    expect(second).toMatchObject({ name: 'stalk.add', args: '(20, 22)', worker: worker.hostname });
    expect(second.received).toEqual(expect.any(Number));
    expect(second.started).toEqual(expect.any(Number));
    // Heartbeats stopped reaching the collector during the outage; after it, the worker counts as online again.
    await waitFor(
      async () => (await alive().fetchJson<Record<string, ApiWorker>>('/api/workers'))[worker.hostname]?.status === true,
      15_000,
      'the worker to be online again',
    );

    // The first task is untouched, and the process never exited.
    const firstAgain = await alive().fetchJson<ApiTask>(`/api/task/info/${before}`);
    expect(firstAgain).toMatchObject({
      state: 'SUCCESS',
      result: '3',
      worker: worker.hostname,
      started: first.started,
      succeeded: first.succeeded,
    });
    expect(stalk.process.exitInfo()).toBeNull();
    expect(await stalk.stop()).toEqual({ code: 0, signal: null });
  }, 150_000);
});
