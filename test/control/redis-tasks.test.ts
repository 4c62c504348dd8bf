// Tasks over a Redis broker against a real Celery worker (Debian's
// python3-celery 5.2.6): RedisTaskPublisher's messages run, RedisResultBackend
// reads and aborts them, revoke stops a task held for its eta, and
// RedisQueueProbe counts what waits in a queue and its priority sub-queues.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisControl, type RedisControl } from '../../worker-collector/control/redis';
import { RedisTaskPublisher } from '../../worker-collector/control/redis-publisher';
import { RedisQueueProbe } from '../../worker-collector/control/redis-queues';
import { BINDING_PREFIX } from '../../worker-collector/kombu-wire';
import { abortedMeta, RedisResultBackend } from '../../worker-collector/control/result-backend';
import { redisQueueKeys } from '../../worker-collector/control/task-message';
import type { Replies } from '../../worker-collector/control/types';
import { parseBrokerUrl } from '../../worker-collector/transport/broker-url';
import { type CeleryWorker, DEFAULT_RESULT_BACKEND, REDIS_BROKER, startWorker, uniqueWorkerName } from '../support/celery';
import { freePort, printLogsOnFailure, stopAllProcesses, waitFor } from '../support/processes';
import { LATE_MS } from '../support/timing';

const broker = parseBrokerUrl(REDIS_BROKER);

describe('Redis task publisher, result backend and queue probe against a real Celery worker', () => {
  let worker: CeleryWorker | undefined;
  let control: RedisControl | undefined;
  /** The only queue this file's worker consumes. */
  const queue = `stalk-test-tasks-${randomUUID()}`;
  const brokerAdmin = new Redis(REDIS_BROKER);
  const backendAdmin = new Redis(DEFAULT_RESULT_BACKEND);
  const taskIds: string[] = [];
  const brokerKeys = new Set<string>([...redisQueueKeys(queue), `${BINDING_PREFIX}${queue}`]);

  printLogsOnFailure();

  beforeAll(async () => {
    worker = await startWorker({
      broker: REDIS_BROKER,
      backend: DEFAULT_RESULT_BACKEND,
      hostname: uniqueWorkerName('tasks'),
      purge: false,
    });
    control = createRedisControl(broker, DEFAULT_RESULT_BACKEND);
    const options = { destination: [worker.hostname], timeoutMs: 5_000, reply: true };
    // "ready" comes before the worker listens to broadcasts (pub/sub): ping until it answers.
    const { hostname } = worker;
    const mailbox = control.mailbox;
    await waitFor(
      async () => (await mailbox.call('ping', {}, { destination: [hostname], timeoutMs: 500, reply: true }))[hostname],
      15_000,
      `${hostname} to answer a ping`,
      0,
    );
    // Consume a queue of our own, and nothing of the shared 'celery' queue.
    const added = await control.mailbox.call('add_consumer', { queue }, options);
    expect(added[worker.hostname]).toEqual({ ok: `add consumer ${queue}` });
    const cancelled = await control.mailbox.call('cancel_consumer', { queue: 'celery' }, options);
    expect(cancelled[worker.hostname]).toEqual({ ok: 'no longer consuming from celery' });
  });

  afterAll(async () => {
    await control?.close();
    await stopAllProcesses();
    if (brokerKeys.size) await brokerAdmin.del(...brokerKeys);
    if (taskIds.length) await backendAdmin.del(...taskIds.map((id) => RedisResultBackend.key(id)));
    brokerAdmin.disconnect();
    backendAdmin.disconnect();
  });

  function running(): { worker: CeleryWorker; control: RedisControl & { results: RedisResultBackend } } {
    if (!worker || !control || !(control.results instanceof RedisResultBackend))
      throw new Error('the worker did not start (see beforeAll)');
    return { worker, control: control as RedisControl & { results: RedisResultBackend } };
  }

  async function send(name: string, args: unknown[], extra: { eta?: string; kwargs?: Record<string, unknown> } = {}): Promise<string> {
    const { control } = running();
    const id = await control.publisher.send({ name, args, kwargs: extra.kwargs ?? {}, queue, ...(extra.eta ? { eta: extra.eta } : {}) });
    taskIds.push(id);
    return id;
  }

  async function inspect(method: string): Promise<unknown> {
    const { worker, control } = running();
    const replies: Replies = await control.mailbox.call(method, {}, { destination: [worker.hostname], timeoutMs: 5_000, reply: true });
    return replies[worker.hostname];
  }

  it('runs stalk.add sent by the publisher; the result backend returns 5', async () => {
    const { control } = running();
    const id = await send('stalk.add', [2, 3]);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const result = await control.results.wait(id, 15_000);
    expect(result).toMatchObject({ task_id: id, status: 'SUCCESS', result: 5, traceback: null });
    expect(result?.date_done).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(await control.results.get(id)).toEqual(result);
  });

  it('keeps kwargs, odd strings and nested values intact, and reports a failure', async () => {
    const { control } = running();
    const kwargs = { note: 'it\'s <b>\n"quoted"', nested: { list: [1, 2.5, null, true] } };
    const echo = await send('stalk.echo', ['a', 1], { kwargs });
    expect(await control.results.wait(echo, 15_000)).toMatchObject({ status: 'SUCCESS', result: { args: ['a', 1], kwargs } });
    const failed = await send('stalk.fail', ['boom']);
    const failure = await control.results.wait(failed, 15_000);
    expect(failure).toMatchObject({ status: 'FAILURE', result: { exc_type: 'ValueError', exc_message: ['boom'] } });
    expect(failure?.traceback).toContain('ValueError: boom');
  });

  it('wait() gives up after its timeout with what is stored (null for an unknown task)', async () => {
    const { control } = running();
    const started = Date.now();
    expect(await control.results.wait(`unknown-${randomUUID()}`, 300)).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(300 + LATE_MS);
  });

  it('revokes a task waiting for its eta: inspect revoked lists it and the backend says REVOKED', async () => {
    const { worker, control } = running();
    const eta = new Date(Date.now() + 3_000).toISOString();
    const id = await send('stalk.add', [1, 1], { eta });
    // The worker holds it until the eta.
    await waitFor(async () => JSON.stringify(await inspect('scheduled')).includes(id), 5_000, 'the task in inspect scheduled');
    const replies = await control.mailbox.call(
      'revoke',
      { task_id: id, terminate: false, signal: 'SIGTERM' },
      { destination: [worker.hostname], timeoutMs: 1_000, reply: false },
    );
    expect(replies).toEqual({});
    await waitFor(async () => ((await inspect('revoked')) as string[]).includes(id), 5_000, 'the task in inspect revoked');
    const result = await control.results.wait(id, 10_000);
    expect(result?.status).toBe('REVOKED');
  });

  it('aborts a running stalk.abortable, which then returns "aborted"', async () => {
    const { control } = running();
    const id = await send('stalk.abortable', [20]);
    await waitFor(async () => (await control.results.get(id))?.status === 'STARTED', 10_000, 'the task to start');
    await control.results.abort(id);
    const result = await control.results.wait(id, 10_000);
    expect(result).toMatchObject({ status: 'SUCCESS', result: 'aborted' });
  });

  it('writes ABORTED exactly as AbortableAsyncResult.abort() does, and never over SUCCESS', async () => {
    const { control } = running();
    const id = `stalk-test-abort-${randomUUID()}`;
    const done = `stalk-test-abort-${randomUUID()}`;
    taskIds.push(id, done);
    const key = RedisResultBackend.key(id);
    const subscriber = new Redis(DEFAULT_RESULT_BACKEND);
    try {
      const published: string[] = [];
      subscriber.on('message', (_channel: string, message: string) => published.push(message));
      await subscriber.subscribe(key);
      await control.results.abort(id);
      const stored = await backendAdmin.get(key);
      // Celery 5.2.6 writes this byte for byte (captured from AbortableAsyncResult(id).abort()).
      expect(stored).toBe(
        `{"status": "ABORTED", "result": null, "traceback": null, "children": null, "date_done": null, "task_id": "${id}"}`,
      );
      expect(stored).toBe(abortedMeta(id));
      const ttl = await backendAdmin.ttl(key);
      expect(ttl).toBeGreaterThan(86_390);
      expect(ttl).toBeLessThanOrEqual(86_400);
      await waitFor(() => published.length > 0, 2_000, 'the state published on the key channel');
      expect(published).toEqual([stored]);
      expect(await control.results.get(id)).toEqual({ task_id: id, status: 'ABORTED', result: null, traceback: null, date_done: null });

      const success = JSON.stringify({
        status: 'SUCCESS',
        result: 1,
        traceback: null,
        children: [],
        date_done: '2026-01-01T00:00:00',
        task_id: done,
      });
      await backendAdmin.set(RedisResultBackend.key(done), success);
      await control.results.abort(done);
      expect(await backendAdmin.get(RedisResultBackend.key(done))).toBe(success);
    } finally {
      subscriber.disconnect();
    }
  });

  it('counts messages in a queue and its priority sub-queues', async () => {
    const own = `stalk-test-lengths-${randomUUID()}`;
    const keys = redisQueueKeys(own);
    for (const key of keys) brokerKeys.add(key);
    brokerKeys.add(`${BINDING_PREFIX}${own}`);
    const publisher = new RedisTaskPublisher(broker);
    const probe = new RedisQueueProbe(broker);
    try {
      const priorities = [0, 0, 1, 2, 3, 5, 6, 8, 9, 200];
      for (const priority of priorities) {
        await publisher.send({ name: 'stalk.add', args: [1, priority], kwargs: {}, queue: own, priority });
      }
      // kombu's steps: 0-2 in the queue itself, 3-5 in \x06\x163, 6-8 in \x06\x166, 9 and above in \x06\x169.
      const perKey = await Promise.all(keys.map((key) => brokerAdmin.llen(key)));
      expect(perKey).toEqual([4, 2, 2, 2]);
      const empty = `stalk-test-empty-${randomUUID()}`;
      expect(await probe.lengths([own, empty, queue])).toEqual([
        { name: own, messages: priorities.length, ready: null, unacked: null, consumers: null },
        { name: empty, messages: 0, ready: null, unacked: null, consumers: null },
        { name: queue, messages: 0, ready: null, unacked: null, consumers: null },
      ]);
      expect(await probe.lengths([])).toEqual([]);
      // Declared like Celery declares a queue it publishes to.
      expect(await brokerAdmin.smembers(`${BINDING_PREFIX}${own}`)).toEqual([`${own}\x06\x16\x06\x16${own}`]);

      // One message as it sits in Redis: the kombu envelope Celery's apply_async writes.
      const raw = await brokerAdmin.lindex(`${own}\x06\x166`, -1); // LPUSH: the oldest (priority 6) is last
      const envelope = JSON.parse(raw!) as { headers: { id: string }; properties: unknown; body: string };
      expect(Object.keys(envelope)).toEqual(['body', 'content-encoding', 'content-type', 'headers', 'properties']);
      expect(envelope.properties).toMatchObject({
        correlation_id: envelope.headers.id,
        reply_to: publisher.oid,
        delivery_mode: 2,
        delivery_info: { exchange: '', routing_key: own },
        priority: 6,
        body_encoding: 'base64',
      });
      expect(Object.keys(envelope.headers)).toEqual([
        'lang',
        'task',
        'id',
        'shadow',
        'eta',
        'expires',
        'group',
        'group_index',
        'retries',
        'timelimit',
        'root_id',
        'parent_id',
        'argsrepr',
        'kwargsrepr',
        'origin',
        'ignore_result',
      ]);
      expect(envelope.headers).toMatchObject({
        lang: 'py',
        task: 'stalk.add',
        root_id: envelope.headers.id,
        argsrepr: '[1, 6]',
        kwargsrepr: '{}',
        retries: 0,
        timelimit: [null, null],
      });
      expect(JSON.parse(Buffer.from(envelope.body, 'base64').toString('utf8'))).toEqual([
        [1, 6],
        {},
        { callbacks: null, errbacks: null, chain: null, chord: null },
      ]);
    } finally {
      await publisher.close();
      await probe.close();
    }
  });

  it('rejects with a clear error when the broker or the result backend is unreachable', async () => {
    const port = await freePort();
    const down = createRedisControl(parseBrokerUrl(`redis://127.0.0.1:${port}/0`), `redis://127.0.0.1:${port}/1`, { connectWaitMs: 300 });
    try {
      await expect(down.publisher.send({ name: 'stalk.add', args: [1, 2], kwargs: {} })).rejects.toThrow(
        `broker redis://127.0.0.1:${port}/0 is unreachable`,
      );
      await expect(down.queues.lengths(['celery'])).rejects.toThrow('unreachable');
      await expect(down.results!.get('x')).rejects.toThrow(`result backend redis://127.0.0.1:${port}/1 is unreachable`);
      await expect(down.results!.abort('x')).rejects.toThrow('unreachable');
    } finally {
      await down.close();
    }
    expect(() => createRedisControl(parseBrokerUrl('redis://localhost:6379/0'), 'db+sqlite:///results.db')).toThrow(
      'only redis:// and rediss://',
    );
  });
});
