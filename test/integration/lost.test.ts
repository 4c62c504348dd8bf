// LOST tasks with real parts: a Celery worker killed with SIGKILL in the
// middle of a task (its heartbeats stop; no worker-offline is ever sent)
// leaves the task LOST with the reason, found by state=LOST and by the
// search, counted on /metrics and shown on the task page; a task-succeeded
// for it, sent later through Celery's own event dispatcher, brings it back
// to SUCCESS. A task sent to a queue nobody consumes becomes LOST after
// --lost-after. A worker only paused (SIGSTOP, then SIGCONT) gets its task
// back as STARTED. On Redis with SQLite and on RabbitMQ with MariaDB.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AMQP_BROKER,
  type CeleryTarget,
  type CeleryWorker,
  REDIS_BROKER,
  runPython,
  startWorker,
  uniqueWorkerName,
} from '../support/celery';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { printLogsOnFailure, stopAllProcesses } from '../support/processes';
import { type ApiTask, type Stalk, startStalk, waitFor } from '../support/stalk';
import { parseExposition, sampleValue } from '../metrics/exposition';

type Setup = { broker: string; brokerUrl: string; dialect: 'sqlite' | 'mariadb' };
const MATRIX: Setup[] = [
  { broker: 'redis', brokerUrl: REDIS_BROKER, dialect: 'sqlite' },
  { broker: 'amqp', brokerUrl: AMQP_BROKER, dialect: 'mariadb' },
];

const LOST_AFTER_SECONDS = 4;
/**
 * Task names only this file uses: other files running at the same time on
 * the shared brokers send and kill tasks too, and this Stalk sees their
 * events; filters and counts by these names see only this file's tasks.
 */
const PROBE = 'stalk.lost_probe';
const NEVER = 'stalk.lost_never_received';
const STEP_TIMEOUT = 90_000;

type ApiTaskWithReason = ApiTask & { state_reason?: string };

describe.each(MATRIX)('lost tasks: $broker broker, $dialect database', ({ brokerUrl, dialect }) => {
  const suffix = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const target: CeleryTarget = { broker: brokerUrl, queue: `stalk-lost-${suffix}` };
  /** A queue no worker consumes: what is sent there is never received. */
  const nobodysQueue = `stalk-lost-nobody-${suffix}`;
  let database: TestDatabase | undefined;
  let stalk: Stalk | undefined;
  let worker: CeleryWorker | undefined;
  let running: string | undefined;

  printLogsOnFailure();

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    stalk = await startStalk({ broker: brokerUrl, db: database.url, extraArgs: ['--lost-after', `${LOST_AFTER_SECONDS}s`] });
    worker = await startWorker({ ...target, hostname: uniqueWorkerName('lost') });
  }, STEP_TIMEOUT);

  afterAll(async () => {
    await stopAllProcesses();
    const drop = `from stalk_tasks import app\nwith app.connection_for_write() as c:\n    c.default_channel.queue_delete(${JSON.stringify(nobodysQueue)})`;
    await runPython('drop the idle queue', ['-c', drop], target, 30_000).catch(() => undefined);
    await database?.drop();
  });

  function started(): { stalk: Stalk; worker: CeleryWorker } {
    if (!stalk || !worker) throw new Error('set-up failed (see its error)');
    return { stalk, worker };
  }

  async function info(id: string): Promise<ApiTaskWithReason> {
    return started().stalk.fetchJson<ApiTaskWithReason>(`/api/task/info/${id}`);
  }

  async function lostCount(name: string): Promise<number | undefined> {
    const { status, text } = await started().stalk.fetchText('/metrics');
    if (status !== 200) throw new Error(`/metrics: HTTP ${status}`);
    return sampleValue(parseExposition(text), 'stalk_tasks_lost_total', { name });
  }

  async function send(code: string): Promise<string> {
    const id = (await runPython('producer', ['-c', code], target, 30_000)).trim().split('\n').pop() ?? '';
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error(`producer printed no task id: ${JSON.stringify(id)}`);
    return id;
  }

  it(
    'a task running on a worker killed with SIGKILL becomes LOST, with the reason, filterable and counted',
    async () => {
      const { stalk, worker } = started();
      const id = await send('from stalk_tasks import lost_probe; print(lost_probe.apply_async((120,)).id)');
      await waitFor(async () => (await info(id)).state === 'STARTED', 30_000, 'the task to start');
      expect(await lostCount(PROBE)).toBeUndefined();
      // The whole process group, pool included: no warm shutdown, no worker-offline event.
      const killedAt = Date.now() / 1000;
      process.kill(-worker.process.pid, 'SIGKILL');
      await worker.process.exited;
      running = id;

      const lost = await waitFor(
        async () => {
          const task = await info(id);
          return task.state === 'LOST' ? task : null;
        },
        30_000,
        'the task to become LOST',
      );
      const reason = new RegExp(
        `^worker ${worker.hostname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} went offline at (.+) UTC \\(heartbeats stopped\\)$`,
      );
      expect(lost.state_reason).toMatch(reason);
      // The time named is after the kill (when the heartbeats expired), not long after.
      const at = Date.parse(`${reason.exec(lost.state_reason!)![1]!.replace(' ', 'T')}Z`) / 1000;
      expect(at).toBeGreaterThanOrEqual(Math.floor(killedAt));
      expect(at).toBeLessThan(killedAt + 20);
      expect(lost.worker).toBe(worker.hostname);

      expect(Object.keys(await stalk.fetchJson<Record<string, ApiTask>>(`/api/tasks?state=LOST&taskname=${PROBE}`))).toEqual([id]);
      expect(Object.keys(await stalk.fetchJson<Record<string, ApiTask>>(`/api/tasks?search=state%3Alost&taskname=${PROBE}`))).toEqual([id]);
      expect(Object.keys(await stalk.fetchJson<Record<string, ApiTask>>(`/api/tasks?state=STARTED&taskname=${PROBE}`))).toEqual([]);
      const page = await stalk.fetchText('/tasks?state=LOST');
      expect(page.status).toBe(200);
      expect(page.text).toContain(id);
      const taskPage = await stalk.fetchText(`/task/${id}`);
      expect(taskPage.text).toContain(lost.state_reason!);
      expect(taskPage.text).toMatch(/class="badge lost"[^>]*>LOST</);
      expect(await lostCount(PROBE)).toBe(1);
    },
    STEP_TIMEOUT,
  );

  it(
    'a later task-succeeded for it converges to SUCCESS; the count stays',
    async () => {
      const { stalk, worker } = started();
      if (!running) throw new Error('the first step did not lose a task');
      // The worker "comes back" and reports the outcome, through Celery's own dispatcher.
      const report = [
        'from stalk_tasks import app',
        'with app.connection_for_write() as conn:',
        `    d = app.events.Dispatcher(conn, hostname=${JSON.stringify(worker.hostname)}, enabled=True)`,
        `    d.send("task-succeeded", uuid=${JSON.stringify(running)}, result="120", runtime=120.0)`,
        '    d.close()',
        'print("00000000-0000-0000-0000-000000000000")',
      ].join('\n');
      await send(report);
      const done = await waitFor(
        async () => {
          const task = await info(running!);
          return task.state === 'SUCCESS' ? task : null;
        },
        30_000,
        'the task to converge to SUCCESS',
      );
      expect(done.state_reason).toBeUndefined();
      expect(done.result).toBe('120');
      expect(Object.keys(await stalk.fetchJson<Record<string, ApiTask>>(`/api/tasks?state=LOST&taskname=${PROBE}`))).toEqual([]);
      expect(await lostCount(PROBE)).toBe(1);
    },
    STEP_TIMEOUT,
  );

  it(
    `a sent task nobody receives becomes LOST after --lost-after (${LOST_AFTER_SECONDS}s)`,
    async () => {
      const { stalk } = started();
      const id = await send(
        `from stalk_tasks import app; print(app.send_task(${JSON.stringify(NEVER)}, (1, 2), queue=${JSON.stringify(nobodysQueue)}).id)`,
      );
      const sentAt = Date.now() / 1000;
      await waitFor(async () => (await info(id)).state === 'PENDING', 30_000, 'the task-sent event');
      const lost = await waitFor(
        async () => {
          const task = await info(id);
          return task.state === 'LOST' ? task : null;
        },
        45_000,
        'the sent task to become LOST',
      );
      // Not before its time was up.
      expect(Date.now() / 1000 - sentAt).toBeGreaterThanOrEqual(LOST_AFTER_SECONDS - 1);
      expect(lost.state_reason).toMatch(
        new RegExp(`^sent at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC, never received within ${LOST_AFTER_SECONDS}s$`),
      );
      expect(lost.received).toBeNull();
      expect(Object.keys(await stalk.fetchJson<Record<string, ApiTask>>(`/api/tasks?state=LOST&taskname=${NEVER}`))).toEqual([id]);
      expect(await lostCount(NEVER)).toBe(1);
      expect(await lostCount(PROBE)).toBe(1);
    },
    STEP_TIMEOUT,
  );

  it(
    'a worker stopped (SIGSTOP) long enough to be judged offline, then resumed, gives its task back its state',
    async () => {
      const { stalk } = started();
      const paused = await startWorker({ ...target, hostname: uniqueWorkerName('paused') });
      const id = await send('from stalk_tasks import lost_probe; print(lost_probe.apply_async((60,)).id)');
      await waitFor(async () => (await info(id)).state === 'STARTED', 30_000, 'the task to start');
      process.kill(-paused.process.pid, 'SIGSTOP');
      try {
        const lost = await waitFor(
          async () => {
            const task = await info(id);
            return task.state === 'LOST' ? task : null;
          },
          30_000,
          'the task to become LOST',
        );
        expect(lost.state_reason).toMatch(/\(heartbeats stopped\)$/);
      } finally {
        process.kill(-paused.process.pid, 'SIGCONT');
      }
      // The same process sends heartbeats again: not lost after all.
      const back = await waitFor(
        async () => {
          const task = await info(id);
          return task.state === 'STARTED' ? task : null;
        },
        30_000,
        'the task to be STARTED again',
      );
      expect(back.state_reason).toBeUndefined();
      expect(Object.keys(await stalk.fetchJson<Record<string, ApiTask>>(`/api/tasks?state=LOST&taskname=${PROBE}`))).not.toContain(id);
      // Counted when it was marked; a counter never goes back.
      expect(await lostCount(PROBE)).toBe(2);
      process.kill(-paused.process.pid, 'SIGKILL');
      await paused.process.exited;
    },
    STEP_TIMEOUT,
  );
});
