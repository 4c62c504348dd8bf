// AMQP control against real Celery workers (Debian's python3-celery 5.2.6)
// on the local RabbitMQ: pidbox inspect and control commands, task
// publishing, queue lengths and shutdown.
//
// The workers consume their own uniquely named queue (-Q), not `celery`, so
// that test files running at the same time on the shared broker (the
// pipeline tests use `celery` with --purge) neither take our tasks nor lose
// theirs to us. That, `-c 2` and `--autoscale` are why the workers are started
// here with support/processes' spawnManaged and support/celery's environment
// rather than with startWorker (which runs `-c 1` on the default queue).

import { randomBytes } from 'node:crypto';
import type { ChannelModel } from 'amqplib';
import { connect } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmqpControl, createAmqpControl } from '../../worker-collector/control/amqp';
import { AmqpTaskPublisher } from '../../worker-collector/control/amqp-publisher';
import { AmqpQueueProbe } from '../../worker-collector/control/amqp-queues';
import { AmqpMailbox } from '../../worker-collector/control/pidbox-amqp';
import type { Replies } from '../../worker-collector/control/types';
import { parseBrokerUrl } from '../../worker-collector/transport/broker-url';
import { AMQP_BROKER, CELERY_DIR, celeryEnv, DEFAULT_RESULT_BACKEND, PYTHON, uniqueWorkerName } from '../support/celery';
import { type ManagedProcess, printLogsOnFailure, spawnManaged, stopAllProcesses, waitFor } from '../support/processes';
import { AT_ONCE_MS, LATE_MS, NEVER_MS } from '../support/timing';

const BROKER = parseBrokerUrl(AMQP_BROKER);
const RUN = `${process.pid}-${randomBytes(3).toString('hex')}`;
/** The queue the main worker consumes. */
const WORK_QUEUE = `stalk.amqp-test.work.${RUN}`;
/** The queue the autoscaling worker consumes. */
const SIDE_QUEUE = `stalk.amqp-test.side.${RUN}`;
/** Exchanges Celery declares for the queues above (-Q and add_consumer name an exchange after the queue). */
const createdQueues = new Set<string>([WORK_QUEUE, SIDE_QUEUE]);

interface Worker {
  hostname: string;
  process: ManagedProcess;
}

async function startCelery(hostname: string, queue: string, extra: string[] = []): Promise<Worker> {
  const args = [
    '-m',
    'celery',
    '-A',
    'stalk_tasks',
    'worker',
    '-n',
    hostname,
    '-Q',
    queue,
    '-E',
    '--loglevel=INFO',
    '--without-gossip',
    '--without-mingle',
    ...extra,
  ];
  const proc = spawnManaged(`celery worker ${hostname}`, PYTHON, args, { cwd: CELERY_DIR, env: celeryEnv({ broker: AMQP_BROKER }) });
  try {
    await proc.waitForOutput(new RegExp(`${hostname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ready\\.`), 30_000);
  } catch (error) {
    await proc.stop(5_000);
    throw error;
  }
  return { hostname, process: proc };
}

function record(value: unknown): Record<string, unknown> {
  expect(value, 'expected an object').toBeTypeOf('object');
  expect(value).not.toBeNull();
  return value as Record<string, unknown>;
}

function queueNames(reply: unknown): string[] {
  expect(Array.isArray(reply), `active_queues reply is a list: ${JSON.stringify(reply)}`).toBe(true);
  return (reply as { name: string }[]).map((q) => q.name);
}

describe('AMQP control with real Celery workers', () => {
  let main: Worker;
  let side: Worker;
  let control: AmqpControl;
  let admin: ChannelModel;
  let redis: Redis;
  const resultKeys: string[] = [];

  printLogsOnFailure();

  beforeAll(async () => {
    [main, side] = await Promise.all([
      startCelery(uniqueWorkerName('amqp-main'), WORK_QUEUE, ['-c', '2']),
      startCelery(uniqueWorkerName('amqp-side'), SIDE_QUEUE, ['--autoscale=3,1']),
    ]);
    control = createAmqpControl(BROKER);
    admin = await connect(BROKER.url);
    redis = new Redis(DEFAULT_RESULT_BACKEND, { maxRetriesPerRequest: 2 });
  });

  afterAll(async () => {
    await control?.close();
    await stopAllProcesses();
    if (admin) {
      const channel = await admin.createChannel();
      channel.on('error', () => undefined);
      for (const name of createdQueues) {
        await channel.deleteQueue(name).catch(() => undefined);
        await channel.deleteExchange(name).catch(() => undefined);
      }
      await admin.close().catch(() => undefined);
    }
    if (redis) {
      if (resultKeys.length > 0) await redis.del(...resultKeys);
      redis.disconnect();
    }
  });

  const call = (method: string, args: Record<string, unknown>, destination?: string[], timeoutMs = 5_000) =>
    control.mailbox.call(method, args, { ...(destination ? { destination } : {}), timeoutMs, reply: true });

  async function stats(worker: Worker): Promise<Record<string, unknown>> {
    const replies = await call('stats', {}, [worker.hostname]);
    return record(replies[worker.hostname]);
  }

  async function result(id: string): Promise<{ status: string; result: unknown } | null> {
    const raw = await redis.get(`celery-task-meta-${id}`);
    return raw ? (JSON.parse(raw) as { status: string; result: unknown }) : null;
  }

  it('pings and inspects the named worker, answering as soon as it replied', async () => {
    const started = Date.now();
    const ping = await call('ping', {}, [main.hostname], NEVER_MS);
    // The destination's reply ends the wait (limit = number of destinations), not the timeout.
    expect(Date.now() - started).toBeLessThan(AT_ONCE_MS);
    expect(ping).toEqual({ [main.hostname]: { ok: 'pong' } });

    const info = await stats(main);
    expect(record(info.pool)['max-concurrency']).toBe(2);
    expect(record(info.broker).transport).toBe('amqp');
    expect(info.pid).toBe(main.process.pid);

    const queues = await call('active_queues', {}, [main.hostname]);
    expect(Object.keys(queues)).toEqual([main.hostname]);
    expect(queueNames(queues[main.hostname])).toEqual([WORK_QUEUE]);

    const registered = await call('registered', {}, [main.hostname]);
    expect(registered[main.hostname]).toEqual(expect.arrayContaining(['stalk.add', 'stalk.sleep', 'stalk.echo']));

    const conf = record((await call('conf', {}, [main.hostname]))[main.hostname]);
    expect(conf.task_serializer).toBe('json');
    expect(conf.worker_prefetch_multiplier).toBe(1);
  });

  it('broadcasts to every worker and collects all replies until the timeout', async () => {
    const started = Date.now();
    const ping = await call('ping', {}, undefined, 1_500);
    // No destination: no limit, so it waits the whole timeout for whoever answers.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    // Other test files' workers may answer too; ours must.
    expect(ping[main.hostname]).toEqual({ ok: 'pong' });
    expect(ping[side.hostname]).toEqual({ ok: 'pong' });

    const all = await call('stats', {}, undefined, 1_500);
    expect(record(all[main.hostname]).pid).toBe(main.process.pid);
    expect(record(all[side.hostname]).pid).toBe(side.process.pid);

    const queues = await call('active_queues', {}, undefined, 1_500);
    expect(queueNames(queues[main.hostname])).toEqual([WORK_QUEUE]);
    expect(queueNames(queues[side.hostname])).toEqual([SIDE_QUEUE]);
  });

  it('sends a Lamport clock past 127 in headers that Celery (py-amqp) can still read', async () => {
    // Every request and reply moves the clock on; amqplib's default encoding of a number
    // past 127 (a 16-bit 's') would kill every worker that reads it.
    while (control.mailbox.clock < 300) await call('ping', {}, [main.hostname]);
    expect(await call('ping', {}, [main.hostname, side.hostname])).toEqual({
      [main.hostname]: { ok: 'pong' },
      [side.hostname]: { ok: 'pong' },
    });
    for (const worker of [main, side]) {
      expect(worker.process.exitInfo()).toBeNull();
      expect(worker.process.output()).not.toContain('Unrecoverable error');
    }
  });

  it('keeps eight inspect calls in flight at once and gives each its own replies', async () => {
    const methods = ['stats', 'active_queues', 'registered', 'scheduled', 'active', 'reserved', 'revoked', 'conf'] as const;
    const started = Date.now();
    const answers = await Promise.all(
      methods.map((method) => call(method, method === 'active' ? { safe: true } : {}, [main.hostname], NEVER_MS)),
    );
    // All answered (each call ends at its one reply), none waited out its timeout.
    expect(Date.now() - started).toBeLessThan(AT_ONCE_MS);
    const byMethod = Object.fromEntries(methods.map((method, i) => [method, (answers[i] as Replies)[main.hostname]]));
    for (const method of methods) expect(byMethod[method], `${method} answered`).toBeDefined();
    // Each reply is the one its own ticket asked for.
    expect(record(byMethod.stats).pool).toBeDefined();
    expect(queueNames(byMethod.active_queues)).toEqual([WORK_QUEUE]);
    expect(byMethod.registered).toEqual(expect.arrayContaining(['stalk.add']));
    for (const list of ['scheduled', 'active', 'reserved', 'revoked'] as const) expect(Array.isArray(byMethod[list]), list).toBe(true);
    expect(record(byMethod.conf).task_serializer).toBe('json');
  });

  it('resolves with {} after the timeout when the destination does not exist', async () => {
    const started = Date.now();
    const replies = await call('ping', {}, ['nobody-here@stalktest'], 800);
    const elapsed = Date.now() - started;
    expect(replies).toEqual({});
    expect(elapsed).toBeGreaterThanOrEqual(750);
    expect(elapsed).toBeLessThan(800 + LATE_MS);
  });

  it('grows and shrinks the pool (pool_grow, pool_shrink), as stats show', async () => {
    // stats' max-concurrency stays the -c value; the pool's process list is what changes,
    // at the pool's next maintenance (Celery runs it every 5 s).
    const processes = async () => (record((await stats(main)).pool).processes as number[]).length;
    expect(await processes()).toBe(2);
    expect(await call('pool_grow', { n: 1 }, [main.hostname])).toEqual({ [main.hostname]: { ok: 'pool will grow' } });
    await waitFor(async () => (await processes()) === 3, 12_000, '3 pool processes');
    expect(await call('pool_shrink', { n: 1 }, [main.hostname])).toEqual({ [main.hostname]: { ok: 'pool will shrink' } });
    await waitFor(async () => (await processes()) === 2, 12_000, '2 pool processes');
  }, 30_000);

  it('changes autoscale bounds of an autoscaling worker; a fixed pool says autoscale is off', async () => {
    expect(await call('autoscale', { max: 4, min: 2 }, [side.hostname])).toEqual({ [side.hostname]: { ok: 'autoscale now max=4 min=2' } });
    const autoscaler = record((await stats(side)).autoscaler);
    expect(autoscaler.max).toBe(4);
    expect(autoscaler.min).toBe(2);
    // Celery answers errors as {error: repr(exception)}; they come back like any reply.
    expect(await call('autoscale', { max: 4, min: 2 }, [main.hostname])).toEqual({
      [main.hostname]: { error: "ValueError('Autoscale not enabled')" },
    });
  });

  it('adds and cancels a consumer (add_consumer, cancel_consumer), as active_queues shows', async () => {
    const extra = `stalk.amqp-test.extra.${RUN}`;
    createdQueues.add(extra);
    const names = async () => queueNames((await call('active_queues', {}, [main.hostname]))[main.hostname]);
    expect(await call('add_consumer', { queue: extra }, [main.hostname])).toEqual({ [main.hostname]: { ok: `add consumer ${extra}` } });
    await waitFor(async () => (await names()).includes(extra), 10_000, `${extra} in active_queues`);
    expect(await names()).toEqual(expect.arrayContaining([WORK_QUEUE, extra]));
    expect(await call('cancel_consumer', { queue: extra }, [main.hostname])).toEqual({
      [main.hostname]: { ok: `no longer consuming from ${extra}` },
    });
    await waitFor(async () => !(await names()).includes(extra), 10_000, `${extra} gone from active_queues`);
    expect(await names()).toEqual([WORK_QUEUE]);
  });

  it('sets rate and time limits (rate_limit, time_limit)', async () => {
    expect(await call('rate_limit', { task_name: 'stalk.echo', rate_limit: '7/m' }, [main.hostname])).toEqual({
      [main.hostname]: { ok: 'new rate limit set successfully' },
    });
    const registered = (await call('registered', {}, [main.hostname]))[main.hostname];
    expect(registered).toContain('stalk.echo [rate_limit=7/m]');
    expect(await call('time_limit', { task_name: 'stalk.sleep', soft: 30, hard: 60 }, [main.hostname])).toEqual({
      [main.hostname]: { ok: 'time limits set successfully' },
    });
    expect(await call('rate_limit', { task_name: 'stalk.no-such-task', rate_limit: '1/s' }, [main.hostname])).toEqual({
      [main.hostname]: { error: 'unknown task' },
    });
  });

  it('publishes a task (stalk.add) that the worker runs; its result is 5', async () => {
    const id = await control.publisher.send({ name: 'stalk.add', args: [2, 3], kwargs: {}, queue: WORK_QUEUE });
    resultKeys.push(`celery-task-meta-${id}`);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const done = await waitFor(
      async () => {
        const meta = await result(id);
        return meta && ['SUCCESS', 'FAILURE'].includes(meta.status) ? meta : null;
      },
      15_000,
      `result of ${id}`,
    );
    expect(done).toMatchObject({ status: 'SUCCESS', result: 5 });
    // The worker read our headers as Celery's own: name, args and kwargs reprs in its log.
    expect(main.process.output()).toContain(`Task stalk.add[${id}] received`);
  });

  it('revokes a task waiting for its eta without asking for replies; it never runs', async () => {
    const eta = new Date(Date.now() + 2_500).toISOString();
    const id = await control.publisher.send({ name: 'stalk.add', args: [40, 2], kwargs: {}, queue: WORK_QUEUE, eta });
    resultKeys.push(`celery-task-meta-${id}`);
    // Received and waiting for its eta.
    await waitFor(
      async () => {
        const scheduled = (await call('scheduled', {}, [main.hostname]))[main.hostname] as { request: { id: string } }[];
        return scheduled.some((entry) => entry.request.id === id);
      },
      10_000,
      `${id} scheduled`,
    );
    const started = Date.now();
    expect(
      await control.mailbox.call('revoke', { task_id: id, terminate: false, signal: 'SIGTERM' }, { timeoutMs: NEVER_MS, reply: false }),
    ).toEqual({});
    // Fire-and-forget returns once RabbitMQ confirmed it, without waiting out the timeout.
    expect(Date.now() - started).toBeLessThan(AT_ONCE_MS);
    await waitFor(
      async () => ((await call('revoked', {}, [main.hostname]))[main.hostname] as string[]).includes(id),
      5_000,
      `${id} revoked`,
    );
    // At its eta the worker discards it and records REVOKED; it never reaches SUCCESS.
    const meta = await waitFor(async () => result(id), 15_000, `result of ${id}`);
    expect(meta.status).toBe('REVOKED');
    expect(main.process.output()).not.toContain(`Task stalk.add[${id}] succeeded`);
    expect(main.process.output()).toContain(`Discarding revoked task: stalk.add[${id}]`);
  });

  it('measures queue lengths: ready messages and consumers, 0 for a missing queue', async () => {
    const idle = `stalk.amqp-test.idle.${RUN}`;
    const missing = `stalk.amqp-test.missing.${RUN}`;
    createdQueues.add(idle);
    for (let i = 0; i < 7; i += 1) await control.publisher.send({ name: 'stalk.add', args: [i, i], kwargs: {}, queue: idle });
    // Twice the same probe, with a missing queue in between: its 404 closes the channel, the next check reopens it.
    const lengths = await control.queues.lengths([idle, missing, idle, WORK_QUEUE]);
    expect(lengths).toEqual([
      { name: idle, messages: 7, ready: 7, unacked: null, consumers: 0 },
      { name: missing, messages: 0, ready: 0, unacked: null, consumers: 0 },
      { name: idle, messages: 7, ready: 7, unacked: null, consumers: 0 },
      { name: WORK_QUEUE, messages: 0, ready: 0, unacked: null, consumers: 1 },
    ]);
    const channel = await admin.createChannel();
    await channel.purgeQueue(idle);
    await channel.close();
    expect((await control.queues.lengths([idle]))[0]?.messages).toBe(0);
  });

  it('works as separate objects on their own connections too', async () => {
    const mailbox = new AmqpMailbox(BROKER);
    const publisher = new AmqpTaskPublisher(BROKER);
    const probe = new AmqpQueueProbe(BROKER);
    try {
      expect(await mailbox.call('ping', {}, { destination: [main.hostname], timeoutMs: 5_000, reply: true })).toEqual({
        [main.hostname]: { ok: 'pong' },
      });
      const id = await publisher.send({ name: 'stalk.echo', args: ["it's"], kwargs: { n: 1 }, queue: WORK_QUEUE });
      resultKeys.push(`celery-task-meta-${id}`);
      const done = await waitFor(async () => ((await result(id))?.status === 'SUCCESS' ? result(id) : null), 15_000, `result of ${id}`);
      expect(done?.result).toEqual({ args: ["it's"], kwargs: { n: 1 } });
      expect(main.process.output()).toMatch(new RegExp(`stalk\\.echo\\[${id}\\] received`));
      expect((await probe.lengths([WORK_QUEUE]))[0]?.consumers).toBe(1);
    } finally {
      await Promise.all([mailbox.close(), publisher.close(), probe.close()]);
    }
    await expect(mailbox.call('ping', {}, { timeoutMs: 100, reply: true })).rejects.toThrow(/closed/);
  });

  it('shuts a worker down (shutdown): its process exits', async () => {
    expect(side.process.exitInfo()).toBeNull();
    expect(await control.mailbox.call('shutdown', {}, { destination: [side.hostname], timeoutMs: 1_000, reply: false })).toEqual({});
    const exited = await Promise.race([side.process.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000))]);
    expect(exited, 'the worker exited within 15 s').not.toBeNull();
    // It went by our command, not by a signal from the test.
    expect(exited?.signal).toBeNull();
    expect(side.process.output()).toContain('Got shutdown from remote');
    expect(await call('ping', {}, [side.hostname], 600)).toEqual({});
    // The other worker is unaffected.
    expect(await call('ping', {}, [main.hostname])).toEqual({ [main.hostname]: { ok: 'pong' } });
  });
});
