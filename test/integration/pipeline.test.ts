// The whole pipeline with real parts: a Celery worker (Debian's python3-celery)
// runs test/celery/scenario.py on Redis and on RabbitMQ, the real local entry
// (src/node.ts) collects the events into SQLite and MariaDB, and the
// Flower-compatible API must tell the story right, also after a restart.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AMQP_BROKER,
  type CeleryWorker,
  REDIS_BROKER,
  runScenario,
  type ScenarioIds,
  startWorker,
  uniqueWorkerName,
} from '../support/celery';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases';
import { printLogsOnFailure, stopAllProcesses } from '../support/processes';
import { type ApiTask, type ApiWorker, type Stalk, startStalk, waitFor } from '../support/stalk';

const BROKERS = [
  { broker: 'redis', brokerUrl: REDIS_BROKER },
  { broker: 'amqp', brokerUrl: AMQP_BROKER },
] as const;

const MATRIX = BROKERS.flatMap((b) => DIALECTS.map((dialect) => ({ ...b, dialect })));

/** The state every scenario task ends in. */
const FINAL_STATES: Record<keyof ScenarioIds, string> = {
  succeeded: 'SUCCESS',
  failed: 'FAILURE',
  retried: 'SUCCESS',
  hostile: 'SUCCESS',
  terminated: 'REVOKED',
  blocker: 'SUCCESS',
  revoked_queued: 'REVOKED',
};

const STEP_TIMEOUT = 120_000;

type Tasks = Record<string, ApiTask>;

function task(tasks: Tasks, id: string): ApiTask {
  const found = tasks[id];
  if (!found) throw new Error(`task ${id} is not in /api/tasks`);
  return found;
}

describe.each(MATRIX)('pipeline: $broker broker, $dialect database', ({ brokerUrl, dialect }) => {
  let database: TestDatabase | undefined;
  let stalk: Stalk | undefined;
  let worker: CeleryWorker | undefined;
  let ids: ScenarioIds | undefined;
  let stored: Tasks | undefined;
  /** When the second Stalk started (seconds), for telling its own heartbeats from loaded ones. */
  let restartedAt = Infinity;

  printLogsOnFailure();

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });

  afterAll(async () => {
    await stopAllProcesses();
    await database?.drop();
  });

  function scenarioIds(): ScenarioIds {
    if (!ids) throw new Error('the scenario did not run');
    return ids;
  }
  /** What the later steps build on; they fail at once when the first step did not get that far. */
  function running(): { stalk: Stalk; worker: CeleryWorker } {
    if (!stalk || !worker || !stored) throw new Error('the first step did not record the scenario (see its failure)');
    return { stalk, worker };
  }

  async function scenarioTasks(from: Stalk): Promise<Tasks> {
    const all = await from.fetchJson<Tasks>('/api/tasks');
    const mine: Tasks = {};
    for (const id of Object.values(scenarioIds())) if (all[id]) mine[id] = all[id];
    return mine;
  }

  async function waitForFinalStates(from: Stalk): Promise<Tasks> {
    const expected = Object.entries(FINAL_STATES).map(([outcome, state]) => [scenarioIds()[outcome as keyof ScenarioIds], state] as const);
    return waitFor(
      async () => {
        const tasks = await scenarioTasks(from);
        const pending = expected.filter(([id, state]) => tasks[id]?.state !== state);
        return pending.length === 0 ? tasks : undefined;
      },
      30_000,
      'every scenario task in its final state',
    );
  }

  it(
    'records every outcome of a real worker',
    async () => {
      if (!database) throw new Error('no database');
      stalk = await startStalk({ broker: brokerUrl, db: database.url });
      const queue = `stalk-pipeline-${process.pid}-${dialect}`;
      worker = await startWorker({ broker: brokerUrl, queue, hostname: uniqueWorkerName(`pipeline-${dialect}`) });
      ids = await runScenario({ broker: brokerUrl, queue });
      const tasks = await waitForFinalStates(stalk);
      stored = tasks;
      const hostname = worker.hostname;

      for (const id of Object.values(ids)) expect(task(tasks, id).worker, `worker of ${id}`).toBe(hostname);

      const ok = task(tasks, ids.succeeded);
      expect(ok).toMatchObject({
        name: 'stalk.add',
        state: 'SUCCESS',
        result: '5',
        args: '(2, 3)',
        kwargs: '{}',
        retries: 0,
        exception: null,
      });
      // (No order between `sent` and `received`: Celery stamps task-sent after publishing, so a
      // fast worker can receive the task first.)
      expect(ok.sent).toEqual(expect.any(Number));
      expect(ok.received).toEqual(expect.any(Number));
      expect(ok.started).toEqual(expect.any(Number));
      expect(ok.succeeded).toEqual(expect.any(Number));
      expect(ok.received!).toBeLessThanOrEqual(ok.started!);
      expect(ok.started!).toBeLessThanOrEqual(ok.succeeded!);
      expect(ok.runtime).toBeGreaterThan(0);
      expect(ok.failed).toBeNull();
      expect(ok.revoked).toBeNull();

      const bad = task(tasks, ids.failed);
      expect(bad).toMatchObject({ name: 'stalk.fail', state: 'FAILURE', result: null, succeeded: null });
      expect(bad.exception).toMatch(/^ValueError\('boom <b>refused<\/b>'\)/);
      expect(bad.traceback).toContain('Traceback (most recent call last)');
      expect(bad.traceback).toContain('ValueError: boom <b>refused</b>');
      expect(bad.failed).toEqual(expect.any(Number));
      expect(bad.started!).toBeLessThanOrEqual(bad.failed!);

      const retried = task(tasks, ids.retried);
      expect(retried).toMatchObject({ name: 'stalk.flaky', state: 'SUCCESS', retries: 1, result: "'job-7 ok after 1 retry'" });
      expect(retried.retried).toEqual(expect.any(Number));
      expect(retried.succeeded).toEqual(expect.any(Number));
      expect(retried.retried!).toBeLessThanOrEqual(retried.succeeded!);
      // The retry's exception stays on the row after the task succeeds.
      expect(retried.exception).toMatch(/^RuntimeError\('job-7 not ready'\)/);

      const terminated = task(tasks, ids.terminated);
      expect(terminated).toMatchObject({ name: 'stalk.sleep', state: 'REVOKED', args: '(60,)', succeeded: null, result: null });
      expect(terminated.started).toEqual(expect.any(Number));
      expect(terminated.revoked).toEqual(expect.any(Number));
      expect(terminated.started!).toBeLessThanOrEqual(terminated.revoked!);

      const queued = task(tasks, ids.revoked_queued);
      expect(queued).toMatchObject({ name: 'stalk.add', state: 'REVOKED', args: '(40, 2)', started: null, succeeded: null, result: null });
      expect(queued.revoked).toEqual(expect.any(Number));

      const hostile = task(tasks, ids.hostile);
      expect(hostile).toMatchObject({ name: 'stalk.echo', state: 'SUCCESS' });
      expect(hostile.args).toContain('<script>alert(1)</script>');
      expect(hostile.args).toContain('é漢😀');
      // Exactly what Celery's saferepr produced in the producer: stored and served byte for byte.
      expect(hostile.args).toBe("('<script>alert(1)</script>', 'é漢😀')");
      expect(hostile.kwargs).toContain("' OR 1=1 --");
      expect(hostile.kwargs).toBe("{'note': 'x\\' OR 1=1 --'}");
      expect(hostile.result).toContain('<script>alert(1)</script>');
      expect(hostile.result).toContain('é漢😀');

      expect(task(tasks, ids.blocker)).toMatchObject({ name: 'stalk.sleep', state: 'SUCCESS', result: '2' });
    },
    STEP_TIMEOUT,
  );

  it(
    'serves task info, task types, workers and search',
    async () => {
      const { stalk, worker } = running();
      const ids = scenarioIds();

      const info = await stalk.fetchJson<ApiTask>(`/api/task/info/${ids.failed}`);
      expect(info).toEqual((await scenarioTasks(stalk))[ids.failed]);
      expect(info).toMatchObject({ uuid: ids.failed, state: 'FAILURE', worker: worker.hostname });
      expect((await stalk.fetchText('/api/task/info/no-such-task')).status).toBe(404);

      const types = await stalk.fetchJson<{ 'task-types': string[] }>('/api/task/types');
      expect(types['task-types']).toEqual(expect.arrayContaining(['stalk.add', 'stalk.fail', 'stalk.flaky', 'stalk.sleep', 'stalk.echo']));

      // Online means a heartbeat within twice its interval (2 s); allow for a late one on a busy machine.
      const me = await waitFor(
        async () => {
          const found = (await stalk.fetchJson<Record<string, ApiWorker>>('/api/workers'))[worker.hostname];
          return found?.status ? found : undefined;
        },
        10_000,
        `worker ${worker.hostname} online in /api/workers`,
      );
      expect(me).toMatchObject({ hostname: worker.hostname, status: true, sw_ident: 'py-celery', pid: worker.process.pid });
      expect(me.sw_ver).toMatch(/^5\./);
      expect(me.freq).toBeGreaterThan(0);
      expect(me.heartbeats.length).toBeGreaterThan(0);
      expect(me.events['worker-online']).toBe(1);
      expect(me.events['task-succeeded']).toBeGreaterThanOrEqual(4);
      const status = await stalk.fetchJson<Record<string, boolean>>(`/api/workers?status=1`);
      expect(status[worker.hostname]).toBe(true);

      const failures = await stalk.fetchJson<Tasks>(`/api/tasks?search=${encodeURIComponent('state:FAILURE')}`);
      const scenario = new Set(Object.values(ids));
      expect(Object.keys(failures).filter((id) => scenario.has(id))).toEqual([ids.failed]);
      for (const found of Object.values(failures)) expect(found.state).toBe('FAILURE');
      const revoked = await stalk.fetchJson<Tasks>(`/api/tasks?state=REVOKED&workername=${encodeURIComponent(worker.hostname)}`);
      expect(Object.keys(revoked).sort()).toEqual([ids.terminated, ids.revoked_queued].sort());
    },
    STEP_TIMEOUT,
  );

  it(
    'keeps every task across a restart on the same database',
    async () => {
      const { stalk: first } = running();
      const before = stored;
      if (!before || !database) throw new Error('nothing stored by the first step');
      // Compare with what is served right before the stop (anything that arrived after the first step counts too).
      const snapshot = await scenarioTasks(first);
      expect(Object.keys(snapshot).sort()).toEqual(Object.keys(before).sort());

      const exit = await first.stop();
      expect(exit).toEqual({ code: 0, signal: null });
      expect(first.process.output()).toMatch(/stopped; \d+ events taken in this run, all written/);
      stalk = undefined;

      restartedAt = Date.now() / 1000;
      const second = await startStalk({ broker: brokerUrl, db: database.url });
      stalk = second;
      const after = await scenarioTasks(second);
      expect(Object.keys(after).sort()).toEqual(Object.values(scenarioIds()).sort());
      expect(after).toEqual(snapshot);
      for (const [outcome, state] of Object.entries(FINAL_STATES)) {
        expect(after[scenarioIds()[outcome as keyof ScenarioIds]]?.state, outcome).toBe(state);
      }
    },
    STEP_TIMEOUT,
  );

  it(
    'shows the worker offline after it shuts down cleanly',
    async () => {
      const { stalk, worker } = running();
      const workerRow = async () => (await stalk.fetchJson<Record<string, ApiWorker>>('/api/workers'))[worker.hostname];
      // First the restarted collector must hear the worker itself (heartbeats every 2 s): the row it
      // loaded from the database can look online for a moment without that.
      await waitFor(
        async () => {
          const me = await workerRow();
          expect(me?.status).toBe(true);
          expect(me?.last_heartbeat).toBeGreaterThan(restartedAt);
          return true;
        },
        15_000,
        'the restarted collector to hear the worker',
      );

      const exit = await worker.stop();
      expect(exit).toEqual({ code: 0, signal: null });
      // Marked offline by its worker-offline event, not by heartbeats running out: the event is
      // counted and it clears the heartbeats (an expiry keeps them).
      const offline = await waitFor(
        async () => {
          const me = await workerRow();
          expect(me, 'worker row').toBeDefined();
          expect(me!.status, `status of ${JSON.stringify(me)}`).toBe(false);
          expect(me!.events['worker-offline'], `worker-offline events of ${JSON.stringify(me)}`).toBe(1);
          expect(me!.heartbeats, `heartbeats of ${JSON.stringify(me)}`).toEqual([]);
          return me;
        },
        15_000,
        'the worker to show offline after its worker-offline event',
        200,
      );
      expect(offline.last_heartbeat).toBeNull();
      const status = await stalk.fetchJson<Record<string, boolean>>(`/api/workers?status=1`);
      expect(status[worker.hostname]).toBe(false);
    },
    STEP_TIMEOUT,
  );
});
