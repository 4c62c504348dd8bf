// Broadcast control over a Redis broker against real Celery workers (Debian's
// python3-celery 5.2.6): inspect and control replies, many calls in flight at
// once, timeouts, a reply list polluted with garbage, a dropped connection, an
// unreachable broker, and a remote shutdown.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisMailbox } from '../../worker-collector/control/pidbox-redis';
import { BINDING_PREFIX, REPLY_EXCHANGE } from '../../worker-collector/kombu-wire';
import type { Replies } from '../../worker-collector/control/types';
import { parseBrokerUrl } from '../../worker-collector/transport/broker-url';
import { type CeleryWorker, REDIS_BROKER, startWorker, uniqueWorkerName } from '../support/celery';
import { freePort, printLogsOnFailure, stopAllProcesses, waitFor } from '../support/processes';
import { AT_ONCE_MS, LATE_MS, NEVER_MS } from '../support/timing';

const TIMEOUT_MS = 1_000;
const broker = parseBrokerUrl(REDIS_BROKER);

/** What a worker answered to a command addressed to it alone. */
function replyOf(replies: Replies, hostname: string): Record<string, unknown> {
  const reply = replies[hostname];
  if (typeof reply !== 'object' || reply === null) throw new Error(`${hostname} did not answer: ${JSON.stringify(replies)}`);
  return reply as Record<string, unknown>;
}

/**
 * Wait until `hostname` answers a ping. A worker prints "ready" before its
 * PSUBSCRIBE to the pidbox channel has happened, and pub/sub keeps nothing for
 * a subscriber that is not there yet: a broadcast in that moment is lost.
 */
async function untilAnswers(mailbox: RedisMailbox, hostname: string): Promise<void> {
  await waitFor(
    async () => (await mailbox.call('ping', {}, { destination: [hostname], timeoutMs: 500, reply: true }))[hostname],
    15_000,
    `${hostname} to answer a ping`,
    0,
  );
}

function asRecord(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`not an object: ${JSON.stringify(value)}`);
  return value as Record<string, unknown>;
}

describe('RedisMailbox against a real Celery worker', () => {
  let worker: CeleryWorker | undefined;
  let mailbox: RedisMailbox | undefined;
  const admin = new Redis(REDIS_BROKER);
  /** Queues the worker was told to consume, for the cleanup. */
  const queues = new Set<string>();

  printLogsOnFailure();

  beforeAll(async () => {
    // No --purge: other test files may have tasks waiting in 'celery' right now.
    worker = await startWorker({ broker: REDIS_BROKER, hostname: uniqueWorkerName('mailbox'), purge: false });
    mailbox = new RedisMailbox(broker);
    await untilAnswers(mailbox, worker.hostname);
    // Stay out of other test files' way: this worker takes nothing from 'celery'.
    const cancelled = await mailbox.call(
      'cancel_consumer',
      { queue: 'celery' },
      { destination: [worker.hostname], timeoutMs: 5_000, reply: true },
    );
    expect(replyOf(cancelled, worker.hostname)).toEqual({ ok: 'no longer consuming from celery' });
  });

  afterAll(async () => {
    await mailbox?.close();
    await stopAllProcesses();
    for (const queue of queues) await admin.del(queue, `${BINDING_PREFIX}${queue}`);
    admin.disconnect();
  });

  function running(): { worker: CeleryWorker; mailbox: RedisMailbox } {
    if (!worker || !mailbox) throw new Error('the worker did not start (see beforeAll)');
    return { worker, mailbox };
  }

  async function inspect(method: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown> | unknown[]> {
    const { worker, mailbox } = running();
    const replies = await mailbox.call(method, args, { destination: [worker.hostname], timeoutMs: 5_000, reply: true });
    return replies[worker.hostname] as Record<string, unknown> | unknown[];
  }

  it('pings the named worker and returns as soon as it answered', async () => {
    const { worker, mailbox } = running();
    const started = Date.now();
    const replies = await mailbox.call('ping', {}, { destination: [worker.hostname], timeoutMs: NEVER_MS, reply: true });
    expect(replies).toEqual({ [worker.hostname]: { ok: 'pong' } });
    // The limit (one destination) ends the call, not the timeout.
    expect(Date.now() - started).toBeLessThan(AT_ONCE_MS);
  });

  it('pings every worker: the reply of this one is among them, after the timeout', async () => {
    const { worker, mailbox } = running();
    const started = Date.now();
    const replies = await mailbox.call('ping', {}, { timeoutMs: TIMEOUT_MS, reply: true });
    const elapsed = Date.now() - started;
    expect(replies[worker.hostname]).toEqual({ ok: 'pong' });
    for (const reply of Object.values(replies)) expect(reply).toEqual({ ok: 'pong' });
    // Without destinations there is no limit: it collects for the whole timeout.
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + LATE_MS);
  });

  it('answers stats, active_queues, registered and conf from the named worker and from all', async () => {
    const { worker, mailbox } = running();
    const stats = asRecord(await inspect('stats'));
    expect(asRecord(stats.pool)['max-concurrency']).toBe(1);
    expect(asRecord(stats.broker).transport).toBe('redis');
    expect(typeof stats.pid).toBe('number');

    const activeQueues = (await inspect('active_queues')) as { name: string }[];
    expect(Array.isArray(activeQueues)).toBe(true);
    expect(activeQueues.map((q) => q.name)).not.toContain('celery');

    const registered = (await inspect('registered')) as string[];
    expect(registered).toEqual(
      expect.arrayContaining(['stalk.add', 'stalk.abortable', 'stalk.echo', 'stalk.fail', 'stalk.flaky', 'stalk.sleep']),
    );

    const conf = asRecord(await inspect('conf'));
    expect(conf.task_track_started).toBe(true);
    expect(conf.worker_prefetch_multiplier).toBe(1);

    const all = await mailbox.call('stats', {}, { timeoutMs: TIMEOUT_MS, reply: true });
    expect(asRecord(all[worker.hostname]).pid).toBe(stats.pid);
  });

  it('collects 8 inspect calls in flight at once, each with its own replies', async () => {
    const { worker } = running();
    // A fresh mailbox: the 8 calls also share its first connection.
    const mailbox = new RedisMailbox(broker);
    const methods = ['stats', 'active_queues', 'registered', 'scheduled', 'active', 'reserved', 'revoked', 'conf'];
    const started = Date.now();
    const calls = methods.map((method) => mailbox.call(method, {}, { destination: [worker.hostname], timeoutMs: NEVER_MS, reply: true }));
    const results = await Promise.all(calls).finally(() => mailbox.close());
    expect(Date.now() - started).toBeLessThan(AT_ONCE_MS);
    for (const [i, replies] of results.entries()) {
      expect(Object.keys(replies), methods[i]).toEqual([worker.hostname]);
    }
    const [stats, activeQueues, registered, scheduled, active, reserved, revoked, conf] = results.map((r) => r[worker.hostname]);
    expect(asRecord(stats).pool).toBeDefined();
    expect(Array.isArray(activeQueues)).toBe(true);
    expect(registered).toContain('stalk.add');
    expect(scheduled).toEqual([]);
    expect(active).toEqual([]);
    expect(reserved).toEqual([]);
    expect(Array.isArray(revoked)).toBe(true);
    expect(asRecord(conf).task_track_started).toBe(true);
    expect(mailbox.inFlight).toBe(0);
  });

  it('has all 8 calls waiting at once on one reply list', async () => {
    const { worker, mailbox } = running();
    const methods = ['stats', 'active_queues', 'registered', 'scheduled', 'active', 'reserved', 'revoked', 'conf'];
    const calls = methods.map((method) => mailbox.call(method, {}, { destination: [worker.hostname], timeoutMs: 5_000, reply: true }));
    // Published, but no reply can have made the round trip through the worker yet.
    await new Promise((resolve) => setImmediate(resolve));
    expect(mailbox.inFlight).toBe(methods.length);
    const results = await Promise.all(calls);
    expect(results.map((r) => Object.keys(r))).toEqual(methods.map(() => [worker.hostname]));
    expect(mailbox.inFlight).toBe(0);
  });

  it('resolves with {} after the timeout when the destination does not exist', async () => {
    const { mailbox } = running();
    const started = Date.now();
    const replies = await mailbox.call('ping', {}, { destination: [`nobody-${randomUUID()}@nowhere`], timeoutMs: 500, reply: true });
    const elapsed = Date.now() - started;
    expect(replies).toEqual({});
    expect(elapsed).toBeGreaterThanOrEqual(490);
    expect(elapsed).toBeLessThan(500 + LATE_MS);
  });

  it('grows and shrinks the pool', async () => {
    const { worker, mailbox } = running();
    const processes = async () => (asRecord(asRecord(await inspect('stats')).pool).processes as number[]).length;
    expect(await processes()).toBe(1);

    const grown = await mailbox.call('pool_grow', { n: 1 }, { destination: [worker.hostname], timeoutMs: 5_000, reply: true });
    expect(replyOf(grown, worker.hostname)).toEqual({ ok: 'pool will grow' });
    await waitFor(async () => (await processes()) === 2, 10_000, 'a second pool process');

    const shrunk = await mailbox.call('pool_shrink', { n: 1 }, { destination: [worker.hostname], timeoutMs: 5_000, reply: true });
    expect(replyOf(shrunk, worker.hostname)).toEqual({ ok: 'pool will shrink' });
    await waitFor(async () => (await processes()) === 1, 10_000, 'back to one pool process');
  });

  it('adds a consumer, lists it in active_queues, and cancels it', async () => {
    const { worker, mailbox } = running();
    const queue = `stalk-test-consumer-${randomUUID()}`;
    queues.add(queue);
    const names = async () => ((await inspect('active_queues')) as { name: string }[]).map((q) => q.name);

    const added = await mailbox.call('add_consumer', { queue }, { destination: [worker.hostname], timeoutMs: 5_000, reply: true });
    expect(replyOf(added, worker.hostname)).toEqual({ ok: `add consumer ${queue}` });
    await waitFor(async () => (await names()).includes(queue), 10_000, `${queue} in active_queues`);

    const cancelled = await mailbox.call('cancel_consumer', { queue }, { destination: [worker.hostname], timeoutMs: 5_000, reply: true });
    expect(replyOf(cancelled, worker.hostname)).toEqual({ ok: `no longer consuming from ${queue}` });
    await waitFor(async () => !(await names()).includes(queue), 10_000, `${queue} gone from active_queues`);
  });

  it('sets rate and time limits (ok), and reports an unknown task (error)', async () => {
    const { worker, mailbox } = running();
    const options = { destination: [worker.hostname], timeoutMs: 5_000, reply: true };
    const rate = await mailbox.call('rate_limit', { task_name: 'stalk.echo', rate_limit: '100/m' }, options);
    expect(replyOf(rate, worker.hostname)).toEqual({ ok: 'new rate limit set successfully' });
    const time = await mailbox.call('time_limit', { task_name: 'stalk.sleep', soft: 30, hard: 60 }, options);
    expect(replyOf(time, worker.hostname)).toEqual({ ok: 'time limits set successfully' });
    const unknown = await mailbox.call('rate_limit', { task_name: 'no.such.task', rate_limit: '1/s' }, options);
    expect(replyOf(unknown, worker.hostname)).toEqual({ error: 'unknown task' });
    // Back to no limit.
    const cleared = await mailbox.call('rate_limit', { task_name: 'stalk.echo', rate_limit: '' }, options);
    expect(replyOf(cleared, worker.hostname).ok).toBe('rate limit disabled successfully');
  });

  it('sends a fire-and-forget command exactly as kombu does', async () => {
    const { mailbox } = running();
    const subscriber = new Redis(REDIS_BROKER);
    try {
      const seen: string[] = [];
      subscriber.on('message', (_channel: string, message: string) => seen.push(message));
      await subscriber.subscribe(`/${broker.db}.celery.pidbox`);
      const taskId = randomUUID();
      expect(
        await mailbox.call('revoke', { task_id: taskId, terminate: false, signal: 'SIGTERM' }, { timeoutMs: 1_000, reply: false }),
      ).toEqual({});
      const raw = await waitFor(() => seen.find((m) => decodeBody(m).includes(taskId)), 3_000, 'the revoke broadcast');
      const envelope = JSON.parse(raw) as Record<string, unknown>;
      expect(envelope['content-type']).toBe('application/json');
      expect(envelope['content-encoding']).toBe('utf-8');
      const headers = asRecord(envelope.headers);
      expect(typeof headers.clock).toBe('number');
      expect(headers.expires as number).toBeGreaterThan(Date.now() / 1000);
      expect(asRecord(envelope.properties)).toMatchObject({
        delivery_mode: 2,
        delivery_info: { exchange: 'celery.pidbox', routing_key: '' },
        priority: 0,
        body_encoding: 'base64',
      });
      // No reply wanted: no ticket, no reply_to.
      expect(JSON.parse(decodeBody(raw))).toEqual({
        method: 'revoke',
        arguments: { task_id: taskId, terminate: false, signal: 'SIGTERM' },
        destination: null,
        pattern: null,
        matcher: null,
      });
    } finally {
      subscriber.disconnect();
    }
  });

  it('skips malformed and foreign replies in its reply list and keeps answering', async () => {
    const { worker, mailbox } = running();
    // Make sure the reader runs, then pollute the list it reads.
    await mailbox.call('ping', {}, { destination: [worker.hostname], timeoutMs: 5_000, reply: true });
    const before = { ...mailbox.malformed };
    const lateBefore = mailbox.lateReplies;
    const envelope = (body: string, headers: unknown) =>
      JSON.stringify({
        body,
        'content-type': 'application/json',
        'content-encoding': 'utf-8',
        headers,
        properties: { body_encoding: 'base64' },
      });
    const garbage = [
      'not json at all',
      '[1, 2, 3]',
      envelope(Buffer.from('{"w@x": {"ok": "pong"}}').toString('base64'), {}), // no ticket
      envelope(Buffer.from('{{{{').toString('base64'), { ticket: 'x' }), // body not JSON
      envelope(Buffer.from('"a string"').toString('base64'), { ticket: 'x' }), // body not an object
      envelope(Buffer.from('{"w@x": {"ok": "pong"}}').toString('base64'), { ticket: randomUUID() }), // nobody waits for it
    ];
    await admin.lpush(mailbox.replyQueue, ...garbage);
    await waitFor(async () => (await admin.llen(mailbox.replyQueue)) === 0, 5_000, 'the reader to drain the garbage');

    const replies = await mailbox.call('ping', {}, { destination: [worker.hostname], timeoutMs: 5_000, reply: true });
    expect(replies).toEqual({ [worker.hostname]: { ok: 'pong' } });
    expect(mailbox.malformed.envelope - before.envelope).toBe(2);
    expect(mailbox.malformed.ticket - before.ticket).toBe(1);
    expect(mailbox.malformed.body - before.body).toBe(2);
    expect(mailbox.lateReplies - lateBefore).toBe(1);
  });

  it('registers its reply binding as kombu does, and removes it on close', async () => {
    const { worker } = running();
    const own = new RedisMailbox(broker);
    const member = `${own.oid}\x06\x16\x06\x16${own.oid}.reply.celery.pidbox`;
    expect(own.binding).toBe(member);
    const replies = await own.call('ping', {}, { destination: [worker.hostname], timeoutMs: 5_000, reply: true });
    expect(replies).toEqual({ [worker.hostname]: { ok: 'pong' } });
    expect(await admin.sismember(`${BINDING_PREFIX}${REPLY_EXCHANGE}`, member)).toBe(1);
    await own.close();
    expect(await admin.sismember(`${BINDING_PREFIX}${REPLY_EXCHANGE}`, member)).toBe(0);
    expect(await admin.exists(own.replyQueue)).toBe(0);
    await expect(own.call('ping', {}, { timeoutMs: 100, reply: true })).rejects.toThrow('closed');
  });

  it('reconnects by itself when its connections are killed', async () => {
    const { worker, mailbox } = running();
    await mailbox.call('ping', {}, { destination: [worker.hostname], timeoutMs: 5_000, reply: true });
    const short = mailbox.oid.slice(0, 8);
    const list = await admin.client('LIST');
    const ids = String(list)
      .split('\n')
      .filter((line) => line.includes(`name=stalk-pidbox-${short}`) || line.includes(`name=stalk-pidbox-replies-${short}`))
      .map((line) => /\bid=(\d+)/.exec(line)?.[1]);
    expect(ids).toHaveLength(2);
    for (const id of ids) await admin.client('KILL', 'ID', id!);
    const replies = await waitFor(
      async () => {
        const r = await mailbox.call('ping', {}, { destination: [worker.hostname], timeoutMs: 2_000, reply: true });
        return r[worker.hostname] ? r : null;
      },
      10_000,
      'a ping answered after the reconnect',
    );
    expect(replies).toEqual({ [worker.hostname]: { ok: 'pong' } });
  });

  it('rejects with a clear error while the broker is unreachable', async () => {
    const port = await freePort();
    const down = new RedisMailbox(parseBrokerUrl(`redis://127.0.0.1:${port}/0`), { connectWaitMs: 500 });
    try {
      const started = Date.now();
      await expect(down.call('ping', {}, { timeoutMs: NEVER_MS, reply: true })).rejects.toThrow(
        `broker redis://127.0.0.1:${port}/0 is unreachable`,
      );
      // Also later, while it keeps retrying in the background.
      await expect(down.call('enable_events', {}, { timeoutMs: NEVER_MS, reply: false })).rejects.toThrow('unreachable');
      // After the connect wait, not the calls' timeouts.
      expect(Date.now() - started).toBeLessThan(AT_ONCE_MS);
    } finally {
      await down.close();
    }
  });

  it('shuts a worker down', async () => {
    const { mailbox } = running();
    const victim = await startWorker({ broker: REDIS_BROKER, hostname: uniqueWorkerName('shutdown'), purge: false });
    await untilAnswers(mailbox, victim.hostname);
    expect(victim.process.exitInfo()).toBeNull();
    // Celery's shutdown raises in the worker and never replies (Flower does not wait either).
    await mailbox.call('shutdown', {}, { destination: [victim.hostname], timeoutMs: 1_000, reply: false });
    const exit = await Promise.race([victim.process.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000))]);
    expect(exit, 'the worker process exited').not.toBeNull();
    expect(exit?.code).toBe(0);
    expect(victim.process.output()).toContain('Got shutdown from remote');
  });
});

function decodeBody(raw: string): string {
  try {
    const envelope = JSON.parse(raw) as { body?: unknown };
    return typeof envelope.body === 'string' ? Buffer.from(envelope.body, 'base64').toString('utf8') : '';
  } catch {
    return '';
  }
}
