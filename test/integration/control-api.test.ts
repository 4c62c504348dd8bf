// Flower's control API through the real local entry (src/node.ts) against
// real Celery workers (Debian's python3-celery), on Redis and on RabbitMQ:
// inspect refresh, pool grow/shrink, autoscale, consumers, rate and time
// limits (and that they take effect), revoke and terminate, apply,
// async-apply, results, send-task, abort, queue lengths, shutdown, the
// errors Flower gives, and the audit log of all of it.
//
// Other test files run at the same time on the same brokers: every worker
// here consumes queues of this file's own (Celery's task_default_queue
// through STALK_TEST_QUEUE), and everything sent names one of them.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AMQP_BROKER,
  type CeleryWorker,
  DEFAULT_RESULT_BACKEND,
  REDIS_BROKER,
  runPython,
  startWorker,
  uniqueWorkerName,
} from '../support/celery';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { printLogsOnFailure, stopAllProcesses, waitFor } from '../support/processes';
import { type Stalk, startStalk } from '../support/stalk';
import { LATE_MS } from '../support/timing';
import {
  auditRows,
  deleteQueues,
  deleteResults,
  get,
  inspectWorker,
  poolProcesses,
  post,
  startControlWorker,
  taskInfo,
  waitForTaskState,
  waitUntilAnswering,
} from './control-support';

const BROKERS = [
  { broker: 'redis', brokerUrl: REDIS_BROKER },
  { broker: 'amqp', brokerUrl: AMQP_BROKER },
] as const;

const INSPECT_TIMEOUT_MS = 2_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(BROKERS)('control API through Stalk: $broker broker', ({ broker, brokerUrl }) => {
  const run = `${process.pid}-${randomBytes(3).toString('hex')}`;
  /** What the main worker (-c 1) consumes. */
  const queue = `stalk-ctlapi-${broker}-${run}`;
  /** What the autoscaling worker consumes. */
  const sideQueue = `stalk-ctlapi-side-${broker}-${run}`;
  /** Added to and cancelled from the main worker. */
  const extraQueue = `stalk-ctlapi-extra-${broker}-${run}`;
  /** Nobody consumes it: its messages stay and are counted. */
  const idleQueue = `stalk-ctlapi-idle-${broker}-${run}`;
  const unknownWorker = `nobody-${run}@stalktest`;

  let database: TestDatabase | undefined;
  let stalk: Stalk | undefined;
  let main: CeleryWorker | undefined;
  let side: CeleryWorker | undefined;
  const taskIds: string[] = [];

  printLogsOnFailure();

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    [stalk, main, side] = await Promise.all([
      startStalk({
        broker: brokerUrl,
        db: database.url,
        extraArgs: ['--result-backend', DEFAULT_RESULT_BACKEND, '--inspect-timeout', String(INSPECT_TIMEOUT_MS)],
      }),
      startWorker({ broker: brokerUrl, queue, hostname: uniqueWorkerName(`ctlapi-main-${broker}`) }),
      startControlWorker({
        broker: brokerUrl,
        queue: sideQueue,
        hostname: uniqueWorkerName(`ctlapi-side-${broker}`),
        pool: ['--autoscale=3,1'],
      }),
    ]);
    // Known to Stalk from their events, and listening to their pidbox.
    await Promise.all([waitUntilAnswering(stalk, main.hostname), waitUntilAnswering(stalk, side.hostname)]);
  }, 90_000);

  afterAll(async () => {
    await stopAllProcesses();
    await deleteQueues(brokerUrl, [queue, sideQueue, extraQueue, idleQueue]).catch((error: unknown) =>
      console.warn(`queue cleanup: ${String(error)}`),
    );
    await deleteResults(DEFAULT_RESULT_BACKEND, taskIds).catch((error: unknown) => console.warn(`result cleanup: ${String(error)}`));
    await database?.drop();
  }, 60_000);

  function running(): { stalk: Stalk; main: CeleryWorker; side: CeleryWorker } {
    if (!stalk || !main || !side) throw new Error('Stalk or the workers did not start (see beforeAll)');
    return { stalk, main, side };
  }

  /** POST /api/task/async-apply/<name> with the queue; resolves with the task id. */
  async function asyncApply(name: string, args: unknown[], options: Record<string, unknown> = {}): Promise<string> {
    const answer = await post(running().stalk, `/api/task/async-apply/${name}`, { args, queue, ...options });
    expect(answer.status, answer.text).toBe(200);
    const body = answer.json<{ 'task-id': string; state?: string }>();
    expect(body['task-id']).toMatch(UUID);
    taskIds.push(body['task-id']);
    return body['task-id'];
  }

  const queueNames = async (hostname: string) => ((await inspectWorker(running().stalk, hostname)).active_queues ?? []).map((q) => q.name);

  it('GET /api/workers?refresh=1&workername= asks the worker now and returns stats, active_queues, registered and conf', async () => {
    const { stalk, main } = running();
    const asked = Date.now() / 1000;
    const worker = await inspectWorker(stalk, main.hostname);
    expect(worker.hostname).toBe(main.hostname);
    expect(worker.status).toBe(true);
    // Collected by this request, not an older cache entry.
    expect(worker.timestamp).toBeGreaterThanOrEqual(asked - 0.5);
    expect(worker.stats?.pid).toBe(main.process.pid);
    expect(worker.stats?.pool?.['max-concurrency']).toBe(1);
    expect(poolProcesses(worker)).toBe(1);
    expect((worker.active_queues ?? []).map((q) => q.name)).toEqual([queue]);
    expect(worker.registered).toEqual(expect.arrayContaining(['stalk.add', 'stalk.sleep', 'stalk.abortable', 'stalk.echo']));
    expect(worker.conf?.task_default_queue).toBe(queue);
    expect(worker.conf?.task_serializer).toBe('json');
    // Only that worker, though the other one is known too.
    const all = (await get(stalk, `/api/workers?workername=${encodeURIComponent(main.hostname)}`)).json<Record<string, unknown>>();
    expect(Object.keys(all)).toEqual([main.hostname]);
  });

  it('grows the pool by one and shrinks it back (stats.pool.processes follows)', async () => {
    const { stalk, main } = running();
    const w = encodeURIComponent(main.hostname);
    const processes = async () => poolProcesses(await inspectWorker(stalk, main.hostname));
    expect(await processes()).toBe(1);

    const grow = await post(stalk, `/api/worker/pool/grow/${w}?n=1`);
    expect(grow.status, grow.text).toBe(200);
    expect(grow.json()).toEqual({ message: `Growing '${main.hostname}' worker's pool by 1` });
    // The pool starts the process at its next maintenance.
    await waitFor(async () => (await processes()) === 2, 30_000, '2 pool processes', 500);

    const shrink = await post(stalk, `/api/worker/pool/shrink/${w}?n=1`);
    expect(shrink.status, shrink.text).toBe(200);
    expect(shrink.json()).toEqual({ message: `Shrinking '${main.hostname}' worker's pool by 1` });
    await waitFor(async () => (await processes()) === 1, 30_000, '1 pool process', 500);
    // max-concurrency is the -c value and stays.
    expect((await inspectWorker(stalk, main.hostname)).stats?.pool?.['max-concurrency']).toBe(1);
  }, 75_000);

  it('autoscale: new bounds on an autoscaling worker; 403 with the reason on a fixed pool', async () => {
    const { stalk, main, side } = running();
    expect((await inspectWorker(stalk, side.hostname)).stats?.autoscaler).toMatchObject({ max: 3, min: 1 });

    const scaled = await post(stalk, `/api/worker/pool/autoscale/${encodeURIComponent(side.hostname)}?min=2&max=4`);
    expect(scaled.status, scaled.text).toBe(200);
    expect(scaled.json()).toEqual({ message: `Autoscaling '${side.hostname}' worker (min=2, max=4)` });
    expect((await inspectWorker(stalk, side.hostname)).stats?.autoscaler).toMatchObject({ max: 4, min: 2 });

    const fixed = await post(stalk, `/api/worker/pool/autoscale/${encodeURIComponent(main.hostname)}?min=1&max=2`);
    expect(fixed.status).toBe(403);
    expect(fixed.text).toBe(`Failed to autoscale '${main.hostname}' worker: ValueError('Autoscale not enabled')`);
  });

  it('add-consumer makes the worker consume a queue; cancel-consumer stops it', async () => {
    const { stalk, main } = running();
    const w = encodeURIComponent(main.hostname);
    const added = await post(stalk, `/api/worker/queue/add-consumer/${w}?queue=${encodeURIComponent(extraQueue)}`);
    expect(added.status, added.text).toBe(200);
    expect(added.json()).toEqual({ message: `add consumer ${extraQueue}` });
    await waitFor(async () => (await queueNames(main.hostname)).includes(extraQueue), 10_000, `${extraQueue} in active_queues`, 300);
    expect((await queueNames(main.hostname)).sort()).toEqual([queue, extraQueue].sort());

    const cancelled = await post(stalk, `/api/worker/queue/cancel-consumer/${w}?queue=${encodeURIComponent(extraQueue)}`);
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.json()).toEqual({ message: `no longer consuming from ${extraQueue}` });
    await waitFor(
      async () => !(await queueNames(main.hostname)).includes(extraQueue),
      10_000,
      `${extraQueue} gone from active_queues`,
      300,
    );
    expect(await queueNames(main.hostname)).toEqual([queue]);
  });

  it('rate limits: set through the API, shown in registered, and a second task waits for its turn', async () => {
    const { stalk, main, side } = running();
    const limited = await post(stalk, `/api/task/rate-limit/stalk.add?workername=${encodeURIComponent(main.hostname)}&ratelimit=5/s`);
    expect(limited.status, limited.text).toBe(200);
    expect(limited.json()).toEqual({ message: 'new rate limit set successfully' });
    // Celery's registered lists a task's rate limit with its name.
    expect((await inspectWorker(stalk, main.hostname)).registered).toContain('stalk.add [rate_limit=5/s]');
    const unknown = await post(
      stalk,
      `/api/task/rate-limit/stalk.no-such-task?workername=${encodeURIComponent(main.hostname)}&ratelimit=5/s`,
    );
    expect(unknown.status).toBe(403);
    expect(unknown.text).toBe("Failed to set rate limit: 'unknown task'");

    // One a minute on the side worker: the first of two quick tasks runs, the second waits.
    const slow = await post(stalk, `/api/task/rate-limit/stalk.add?workername=${encodeURIComponent(side.hostname)}&ratelimit=1/m`);
    expect(slow.status, slow.text).toBe(200);
    expect(slow.json()).toEqual({ message: 'new rate limit set successfully' });
    const ids = [await asyncApply('stalk.add', [1, 1], { queue: sideQueue }), await asyncApply('stalk.add', [2, 2], { queue: sideQueue })];
    await waitFor(
      async () => (await taskInfo(stalk, ids[0]!))?.state === 'SUCCESS' || (await taskInfo(stalk, ids[1]!))?.state === 'SUCCESS',
      15_000,
      'one task done',
    );
    await waitFor(
      async () => {
        const states = await Promise.all(ids.map(async (id) => (await taskInfo(stalk, id))?.state));
        return states.includes('SUCCESS') && states.includes('RECEIVED');
      },
      10_000,
      'one task received and held',
    );
    // Meanwhile the worker takes and runs a task sent after it (stalk.echo has no limit): without
    // the limit, the held one would have started first, in milliseconds. It stays unstarted.
    const later = await asyncApply('stalk.echo', ['after the held one'], { queue: sideQueue });
    await waitFor(async () => (await taskInfo(stalk, later))?.state === 'SUCCESS', 15_000, 'the later task done');
    const infos = await Promise.all(ids.map((id) => taskInfo(stalk, id)));
    const held = infos.find((t) => t?.state !== 'SUCCESS');
    expect(infos.map((t) => t?.state).sort()).toEqual(['RECEIVED', 'SUCCESS']);
    expect(held?.started).toBeNull();
    expect(held?.worker).toBe(side.hostname);
  }, 45_000);

  it('time limits: set and cleared through the API; the worker takes the new values', async () => {
    // Celery 5.2 answers time_limit and sets the task's limits, but its worker keeps the limits it
    // read at start for the tasks it runs (create_request_cls captures them), so a running worker
    // does not enforce them: what can be observed is the worker's answer and its log of the values.
    const { stalk, main } = running();
    const w = encodeURIComponent(main.hostname);
    const set = await post(stalk, `/api/task/timeout/stalk.sleep?workername=${w}&soft=1&hard=2`);
    expect(set.status, set.text).toBe(200);
    expect(set.json()).toEqual({ message: 'time limits set successfully' });
    await main.process.waitForOutput(/New time limits for tasks of type stalk\.sleep: soft=1 hard=2/, 5_000);

    const soft = await post(stalk, `/api/task/timeout/stalk.echo?workername=${w}&soft=2.5`);
    expect(soft.status, soft.text).toBe(200);
    expect(soft.json()).toEqual({ message: 'time limits set successfully' });
    await main.process.waitForOutput(/New time limits for tasks of type stalk\.echo: soft=2\.5 hard=None/, 5_000);

    // No soft or hard: both limits go.
    const cleared = await post(stalk, `/api/task/timeout/stalk.sleep?workername=${w}`);
    expect(cleared.status, cleared.text).toBe(200);
    expect(cleared.json()).toEqual({ message: 'time limits set successfully' });
    await main.process.waitForOutput(/New time limits for tasks of type stalk\.sleep: soft=None hard=None/, 5_000);

    // A task the worker does not know: the worker's error, as Flower gives it.
    const unknown = await post(stalk, `/api/task/timeout/stalk.no-such-task?workername=${w}&soft=1`);
    expect(unknown.status).toBe(403);
    expect(unknown.text).toBe("Failed to set timeouts: 'unknown task'");
  });

  it('revoke keeps a task that waits for its countdown from running', async () => {
    const { stalk, main } = running();
    const id = await asyncApply('stalk.add', [40, 2], { countdown: 5 });
    // The worker holds it until its eta.
    const received = await waitForTaskState(stalk, id, ['RECEIVED'], 10_000);
    expect(received.started).toBeNull();

    const revoked = await post(stalk, `/api/task/revoke/${id}`);
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json()).toEqual({ message: `Revoked '${id}'` });
    const done = await waitForTaskState(stalk, id, ['REVOKED', 'SUCCESS', 'FAILURE'], 15_000);
    expect(done.state).toBe('REVOKED');
    expect(done.started).toBeNull();
    expect(main.process.output()).toContain(`Discarding revoked task: stalk.add[${id}]`);
    expect(main.process.output()).not.toContain(`Task stalk.add[${id}] succeeded`);
  }, 30_000);

  it('revoke with terminate=true&signal=SIGKILL ends a running task', async () => {
    const { stalk, main } = running();
    const id = await asyncApply('stalk.sleep', [60]);
    await waitForTaskState(stalk, id, ['STARTED'], 15_000);

    const killed = await post(stalk, `/api/task/revoke/${id}?terminate=true&signal=SIGKILL`);
    expect(killed.status, killed.text).toBe(200);
    expect(killed.json()).toEqual({ message: `Revoked '${id}'` });
    const done = await waitForTaskState(stalk, id, ['REVOKED', 'SUCCESS', 'FAILURE'], 15_000);
    expect(done.state).toBe('REVOKED');
    expect(main.process.output()).toMatch(new RegExp(`Terminating ${id} \\((9|Signals\\.SIGKILL)\\)`));
  }, 35_000);

  it('apply waits for the result; async-apply returns PENDING and the result comes from /api/task/result; send-task takes any name', async () => {
    const { stalk, main } = running();
    const applied = await post(stalk, '/api/task/apply/stalk.add', { args: [2, 3], queue });
    expect(applied.status, applied.text).toBe(200);
    const body = applied.json<{ 'task-id': string }>();
    taskIds.push(body['task-id']);
    expect(body).toEqual({ 'task-id': expect.stringMatching(UUID), state: 'SUCCESS', result: 5 });
    expect((await waitForTaskState(stalk, body['task-id'], ['SUCCESS'], 10_000)).result).toBe('5');

    const sent = await post(stalk, '/api/task/async-apply/stalk.add', { args: [2, 3], queue });
    expect(sent.status, sent.text).toBe(200);
    const pending = sent.json<{ 'task-id': string }>();
    taskIds.push(pending['task-id']);
    expect(pending).toEqual({ 'task-id': expect.stringMatching(UUID), state: 'PENDING' });
    const result = await get(stalk, `/api/task/result/${pending['task-id']}?timeout=10`);
    expect(result.status, result.text).toBe(200);
    expect(result.json()).toEqual({ 'task-id': pending['task-id'], state: 'SUCCESS', result: 5 });

    const unknownName = `stalk.no-such-task-${run}`;
    const unknown = await post(stalk, `/api/task/send-task/${unknownName}`, { args: [1], queue });
    expect(unknown.status, unknown.text).toBe(200);
    expect(unknown.json()).toEqual({ 'task-id': expect.stringMatching(UUID), state: 'PENDING' });
    // It really went out: the worker got it and could not run it.
    await main.process.waitForOutput(new RegExp(`Received unregistered task of type '${unknownName.replace(/\./g, '\\.')}'`), 10_000);
  }, 40_000);

  it('abort asks an abortable task to stop; its result becomes "aborted"', async () => {
    const { stalk } = running();
    const id = await asyncApply('stalk.abortable', [30]);
    // STARTED in the result backend, so that the abort is not overwritten by it.
    await waitFor(
      async () => (await get(stalk, `/api/task/result/${id}`)).json<{ state: string }>().state === 'STARTED',
      15_000,
      `${id} STARTED`,
      200,
    );

    const aborted = await post(stalk, `/api/task/abort/${id}`);
    expect(aborted.status, aborted.text).toBe(200);
    expect(aborted.json()).toEqual({ message: `Aborted '${id}'` });
    const result = await get(stalk, `/api/task/result/${id}?timeout=10`);
    expect(result.json()).toEqual({ 'task-id': id, state: 'SUCCESS', result: 'aborted' });
    expect((await waitForTaskState(stalk, id, ['SUCCESS'], 10_000)).result).toBe("'aborted'");
  }, 40_000);

  it('queue lengths: messages waiting in a queue nobody consumes, in /api/queues/length and on /broker', async () => {
    const { stalk } = running();
    const total = 4;
    // A Celery producer's task-sent event names the queue: that is how Stalk learns of it.
    const code = `from stalk_tasks import add; print(add.apply_async((0, 0), queue=${JSON.stringify(idleQueue)}).id)`;
    const first =
      (await runPython('send to the idle queue', ['-c', code], { broker: brokerUrl, queue }, 30_000)).trim().split('\n').pop() ?? '';
    expect(first).toMatch(UUID);
    taskIds.push(first);
    for (let i = 1; i < total; i += 1) await asyncApply('stalk.add', [i, i], { queue: idleQueue });

    type Lengths = { active_queues: { name: string; messages: number; consumers?: number }[] };
    const measured = await waitFor(
      async () => {
        const answer = await get(stalk, '/api/queues/length');
        const found = answer.json<Lengths>().active_queues.find((q) => q.name === idleQueue);
        return found?.messages === total ? answer.json<Lengths>() : null;
      },
      15_000,
      `${total} messages in ${idleQueue}`,
      300,
    );
    const idle = measured.active_queues.find((q) => q.name === idleQueue);
    expect(idle?.messages).toBe(total);
    if (broker === 'amqp') expect(idle?.consumers).toBe(0);
    // The main worker's queue is measured too.
    expect(measured.active_queues.map((q) => q.name)).toContain(queue);

    // The broker page shows what the collector measured.
    const row = await waitFor(
      async () => {
        const html = (await get(stalk, '/broker')).text;
        const match = html.match(new RegExp(`<tr data-queue="${idleQueue}">([\\s\\S]*?)</tr>`));
        return match?.[1];
      },
      10_000,
      `${idleQueue} on /broker`,
    );
    expect(row).toMatch(new RegExp(`<td class="num">${total}</td>`));

    await deleteQueues(brokerUrl, [idleQueue]);
    await waitFor(
      async () => (await get(stalk, '/api/queues/length')).json<Lengths>().active_queues.find((q) => q.name === idleQueue)?.messages === 0,
      10_000,
      `${idleQueue} empty after cleanup`,
    );
  }, 45_000);

  it('shutdown stops the second worker: its process exits by itself', async () => {
    const { stalk, side } = running();
    expect(side.process.exitInfo()).toBeNull();
    const answer = await post(stalk, `/api/worker/shutdown/${encodeURIComponent(side.hostname)}`);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json()).toEqual({ message: 'Shutting down!' });
    const exited = await Promise.race([side.process.exited, sleep(20_000).then(() => null)]);
    expect(exited, 'the worker exited within 20 s').not.toBeNull();
    expect(exited?.signal).toBeNull();
    expect(side.process.output()).toContain('Got shutdown from remote');
  }, 30_000);

  it('errors: unknown worker 404, bad parameters 400, a worker that does not answer 403', async () => {
    const { stalk, main, side } = running();
    const w = encodeURIComponent(main.hostname);

    const unknown = await post(stalk, `/api/worker/pool/grow/${encodeURIComponent(unknownWorker)}?n=1`);
    expect(unknown.status).toBe(404);
    expect(unknown.text).toBe(`Unknown worker '${unknownWorker}'`);

    const bad: [string, RegExp][] = [
      [`/api/worker/pool/grow/${w}?n=abc`, /^Invalid argument 'abc' of type 'int' for 'n'$/],
      [`/api/worker/pool/shrink/${w}?n=0`, /^Invalid argument '0' of type 'int' for 'n'$/],
      [`/api/worker/pool/autoscale/${w}?min=3&max=1`, /^'min' must not be greater than 'max'$/],
      [`/api/worker/pool/autoscale/${w}?max=2`, /^Missing argument 'min'$/],
      [`/api/worker/queue/add-consumer/${w}`, /^Missing argument 'queue'$/],
      [`/api/worker/queue/cancel-consumer/${w}?queue=`, /^Missing argument 'queue'$/],
      [`/api/task/rate-limit/stalk.add?workername=${w}&ratelimit=fast`, /^Invalid rate limit 'fast'/],
      [`/api/task/rate-limit/stalk.add?ratelimit=1/s`, /^Missing argument 'workername'$/],
      [`/api/task/timeout/stalk.sleep?workername=${w}&soft=-1`, /^Invalid argument '-1' of type 'float' for 'soft'$/],
      [`/api/task/revoke/00000000-0000-4000-8000-000000000000?terminate=maybe`, /terminate/],
    ];
    for (const [path, message] of bad) {
      const answer = await post(stalk, path);
      expect(answer.status, `${path}: ${answer.text}`).toBe(400);
      expect(answer.json<{ error: string }>().error, path).toMatch(message);
    }
    const badJson = await post(stalk, '/api/task/async-apply/stalk.add', { args: 'not a list', queue });
    expect(badJson.status).toBe(400);
    expect(badJson.json<{ error: string }>().error).toBe('args must be an array');

    // Known but gone: the worker shut down by the previous test is offline, and does not answer.
    await waitFor(
      async () => (await get(stalk, '/api/workers?status=1')).json<Record<string, boolean>>()[side.hostname] === false,
      15_000,
      `${side.hostname} offline`,
    );
    const silent = await post(stalk, `/api/worker/pool/grow/${encodeURIComponent(side.hostname)}?n=1`);
    expect(silent.status).toBe(403);
    expect(silent.text).toBe(`Failed to grow '${side.hostname}' worker's pool: '${side.hostname}' did not answer in time`);
    // It waited for replies for the inspect timeout, and not much longer.
    expect(silent.ms).toBeGreaterThanOrEqual(INSPECT_TIMEOUT_MS - 100);
    expect(silent.ms).toBeLessThan(INSPECT_TIMEOUT_MS + LATE_MS);
  }, 40_000);

  it('the audit log lists every action with its outcome', async () => {
    const { stalk, main, side } = running();
    const page = await get(stalk, '/audit');
    expect(page.status).toBe(200);
    const rows = auditRows(page.text);
    const entry = (action: string, target: string, ok: boolean) => expect.objectContaining({ action, target, ok, user: 'anonymous' });
    expect(rows).toEqual(
      expect.arrayContaining([
        entry('pool_grow', main.hostname, true),
        entry('pool_shrink', main.hostname, true),
        entry('autoscale', side.hostname, true),
        entry('autoscale', main.hostname, false),
        entry('add_consumer', main.hostname, true),
        entry('cancel_consumer', main.hostname, true),
        entry('rate_limit', main.hostname, true),
        entry('rate_limit', side.hostname, true),
        entry('time_limit', main.hostname, true),
        entry('revoke', expect.stringMatching(UUID), true),
        entry('abort', expect.stringMatching(UUID), true),
        entry('send', 'stalk.add', true),
        entry('send', `stalk.no-such-task-${run}`, true),
        entry('shutdown', side.hostname, true),
        entry('pool_grow', unknownWorker, false),
        entry('pool_grow', side.hostname, false),
      ]),
    );
    // Outcomes carry the worker's answer or the reason.
    expect(rows.find((r) => r.action === 'autoscale' && r.target === main.hostname)?.outcome).toContain('Autoscale not enabled');
    expect(rows.find((r) => r.action === 'pool_grow' && r.target === unknownWorker)?.outcome).toContain('Unknown worker');
    expect(rows.find((r) => r.action === 'pool_grow' && r.target === main.hostname)?.outcome).toContain('pool will grow');
    // Reads (inspect, results, queue lengths) and refused requests (400) are not actions.
    expect(rows.map((r) => r.action)).not.toContain('inspect');
    expect(rows.map((r) => r.action)).not.toContain('queues');
    expect(rows.filter((r) => r.action === 'pool_grow' && r.target === main.hostname)).toHaveLength(1);
  });
});
