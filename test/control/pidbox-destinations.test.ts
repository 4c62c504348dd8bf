// One meaning for pidbox destinations and reply filtering on both brokers,
// against a real Celery worker and a hostile node built on kombu's own
// Mailbox (test/celery/hostile_node.py). The same cases run on Redis and on
// RabbitMQ: no destination and an empty list both reach every worker and
// collect until the timeout (kombu's rule), a named worker ends the call as
// soon as it answered, and reply keys that would reach Object.prototype
// (`__proto__`, `constructor`, `prototype`) are dropped.

import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpMailbox } from '../../worker-collector/control/pidbox-amqp';
import { RedisMailbox } from '../../worker-collector/control/pidbox-redis';
import type { Mailbox, Replies } from '../../worker-collector/control/types';
import { parseBrokerUrl } from '../../worker-collector/transport/broker-url';
import {
  AMQP_BROKER,
  CELERY_DIR,
  type CeleryWorker,
  celeryEnv,
  PYTHON,
  REDIS_BROKER,
  startWorker,
  uniqueWorkerName,
} from '../support/celery';
import { type ManagedProcess, printLogsOnFailure, spawnManaged, stopAllProcesses, waitFor } from '../support/processes';

const RUN = `${process.pid}-${randomBytes(3).toString('hex')}`;
/** Collect-everything calls wait this long. */
const TIMEOUT_MS = 1_500;
/** Calls that should end at their limit get a timeout far beyond how long a worker takes to answer. */
const LONG_TIMEOUT_MS = 15_000;

interface BrokerCase {
  name: string;
  url: string;
  mailbox: () => Mailbox;
  /** Remove what the worker's queue left on the broker. */
  cleanup: (queue: string) => Promise<void>;
}

const BROKERS: BrokerCase[] = [
  {
    name: 'Redis',
    url: REDIS_BROKER,
    mailbox: () => new RedisMailbox(parseBrokerUrl(REDIS_BROKER)),
    cleanup: async (queue) => {
      const admin = new Redis(REDIS_BROKER);
      await admin.del(queue, `_kombu.binding.${queue}`);
      admin.disconnect();
    },
  },
  {
    name: 'RabbitMQ',
    url: AMQP_BROKER,
    mailbox: () => new AmqpMailbox(parseBrokerUrl(AMQP_BROKER)),
    cleanup: async (queue) => {
      const admin = await connect(parseBrokerUrl(AMQP_BROKER).url);
      const channel = await admin.createChannel();
      await channel.deleteQueue(queue);
      await channel.deleteExchange(queue);
      await admin.close();
    },
  },
];

/** Object.prototype is the same for every object of this process: nothing may have been written to it. */
function expectPrototypeClean(replies: Replies): void {
  expect(Object.getPrototypeOf(replies)).toBe(Object.prototype);
  for (const key of ['__proto__', 'constructor', 'prototype']) expect(Object.hasOwn(replies, key), key).toBe(false);
  expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

describe.each(BROKERS)('pidbox destinations and replies on $name', (broker) => {
  const queue = `stalk.pidbox-test.${broker.name.toLowerCase()}.${RUN}`;
  /** The hostile node answers this command only, so other test files' broadcasts never reach it. */
  const method = `stalk_hostile_${RUN.replace(/-/g, '_')}`;
  const hostileName = uniqueWorkerName('hostile');
  let worker: CeleryWorker | undefined;
  let hostile: ManagedProcess | undefined;
  let mailbox: Mailbox | undefined;

  printLogsOnFailure();

  beforeAll(async () => {
    hostile = spawnManaged(`hostile node ${hostileName}`, PYTHON, ['hostile_node.py', hostileName, method], {
      cwd: CELERY_DIR,
      env: celeryEnv({ broker: broker.url }),
    });
    worker = await startWorker({ broker: broker.url, hostname: uniqueWorkerName('pidbox'), queue });
    await hostile.waitForOutput(/listening\./, 30_000);
    mailbox = broker.mailbox();
    const { hostname } = worker;
    const open = mailbox;
    // "ready" comes before the subscription to the broadcasts on Redis: wait until both answer.
    await waitFor(
      async () => (await open.call('ping', {}, { destination: [hostname], timeoutMs: 500, reply: true }))[hostname],
      20_000,
      `${hostname} to answer`,
      0,
    );
    await waitFor(
      async () => (await open.call(method, {}, { destination: [hostileName], timeoutMs: 500, reply: true }))[hostileName],
      20_000,
      `${hostileName} to answer`,
      0,
    );
  });

  afterAll(async () => {
    await mailbox?.close();
    await stopAllProcesses();
    await broker.cleanup(queue);
  });

  function running(): { worker: CeleryWorker; mailbox: Mailbox } {
    if (!worker || !mailbox) throw new Error('the worker did not start (see beforeAll)');
    return { worker, mailbox };
  }

  it('without a destination asks every worker and collects until the timeout', async () => {
    const { worker, mailbox } = running();
    const started = Date.now();
    const replies = await mailbox.call('ping', {}, { timeoutMs: TIMEOUT_MS, reply: true });
    expect(replies[worker.hostname]).toEqual({ ok: 'pong' });
    // No destination, no limit: only the timeout ends the call.
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
  });

  it('reads an empty destination list as every worker, as kombu does, collecting until the timeout', async () => {
    const { worker, mailbox } = running();
    const started = Date.now();
    const replies = await mailbox.call('ping', {}, { destination: [], timeoutMs: TIMEOUT_MS, reply: true });
    expect(replies[worker.hostname]).toEqual({ ok: 'pong' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    // The hostile node was reached too (its own key survives; the rest is dropped).
    const everyone = await mailbox.call(method, {}, { destination: [], timeoutMs: TIMEOUT_MS, reply: true });
    expect(everyone[hostileName]).toEqual({ ok: 'hostile' });
    expectPrototypeClean(everyone);
  });

  it('asks only the named worker and returns as soon as it answered', async () => {
    const { worker, mailbox } = running();
    const started = Date.now();
    const replies = await mailbox.call('ping', {}, { destination: [worker.hostname], timeoutMs: LONG_TIMEOUT_MS, reply: true });
    expect(replies).toEqual({ [worker.hostname]: { ok: 'pong' } });
    // Ended by its limit (one destination), long before the timeout.
    expect(Date.now() - started).toBeLessThan(LONG_TIMEOUT_MS / 2);
    // The hostile node, not named, stays silent.
    const none = await mailbox.call(method, {}, { destination: [worker.hostname], timeoutMs: LONG_TIMEOUT_MS, reply: true });
    expect(Object.keys(none)).toEqual([worker.hostname]);
  });

  it('drops reply keys that would reach Object.prototype and keeps the rest', async () => {
    const { mailbox } = running();
    const replies = await mailbox.call(method, {}, { destination: [hostileName], timeoutMs: LONG_TIMEOUT_MS, reply: true });
    expect(replies).toEqual({ [hostileName]: { ok: 'hostile' } });
    expectPrototypeClean(replies);
    // Also when collecting from everyone.
    const everyone = await mailbox.call(method, {}, { timeoutMs: TIMEOUT_MS, reply: true });
    expect(everyone[hostileName]).toEqual({ ok: 'hostile' });
    expectPrototypeClean(everyone);
  });
});
