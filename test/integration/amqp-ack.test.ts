// The AMQP event transport's acknowledgements on the real RabbitMQ: nothing
// is acked before it is committed, commits are cumulative, a repeated or
// older commit is a no-op (a double ack would close the channel), a commit
// from before a reconnect acks nothing on the new channel, deliveries stop
// at the prefetch until a commit (asking for an early flush at half of it),
// pause holds deliveries back, and stop() leaves the channel open for the
// final commit. What a queue still holds is read back after close() and
// counted by this file's own task ids (the shared `celeryev` exchange also
// brings other tests' events into these queues; they are ignored).

import { randomBytes } from 'node:crypto';
import { type ChannelModel, connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskSent } from '../../bench/celery-wire';
import { createLogger } from '../../src/shared/log';
import { AmqpEventTransport, DEFAULT_AMQP_QUEUE } from '../../worker-collector/transport/amqp';
import { parseBrokerUrl } from '../../worker-collector/transport/broker-url';
import { AMQP_BROKER } from '../support/celery';
import { freePort, waitFor } from '../support/processes';
import { TcpProxy } from '../support/tcp-proxy';

const RUN = `${process.pid}-${randomBytes(4).toString('hex')}`;
const queues: string[] = [];

interface Harness {
  transport: AmqpEventTransport;
  queue: string;
  /** Our task ids in delivery order (redeliveries included). */
  mine: string[];
  /** checkpoint() taken right after each of our messages was handed over. */
  tokens: unknown[];
  backlogs: number;
  connections: boolean[];
  logs: string[];
}

function harness(label: string, prefetch: number, brokerUrl = AMQP_BROKER): Harness {
  const queue = `stalk.test.ack.${label}.${RUN}`;
  queues.push(queue);
  const h: Harness = {
    transport: undefined as unknown as AmqpEventTransport,
    queue,
    mine: [],
    tokens: [],
    backlogs: 0,
    connections: [],
    logs: [],
  };
  const log = createLogger('ack-test', 'debug', (_level, line) => h.logs.push(line));
  h.transport = new AmqpEventTransport(
    parseBrokerUrl(brokerUrl),
    {
      onMessage: (decoded) => {
        for (const event of decoded.events) {
          if (event.kind !== 'task' || !event.uuid.startsWith(RUN)) continue;
          h.mine.push(event.uuid);
          h.tokens.push(h.transport.checkpoint());
        }
      },
      onBacklog: () => {
        h.backlogs += 1;
      },
      onConnectionChange: (connected) => h.connections.push(connected),
    },
    log,
    { ...DEFAULT_AMQP_QUEUE, queueName: queue, prefetch },
  );
  return h;
}

describe('AMQP event transport: acknowledgements', () => {
  let admin: ChannelModel;

  beforeAll(async () => {
    admin = await connect(AMQP_BROKER);
    admin.on('error', () => undefined);
  });

  afterAll(async () => {
    const channel = await admin.createChannel();
    for (const queue of queues) await channel.deleteQueue(queue).catch(() => undefined);
    await admin.close();
  });

  /** Publish our task-sent events with these ids, one message each, as Celery's client does. */
  async function publish(ids: string[]): Promise<void> {
    const channel = await admin.createConfirmChannel();
    for (const [n, id] of ids.entries()) {
      channel.publish('celeryev', 'task.sent', Buffer.from(taskSent(id, n, 'stalk.ack_test')), {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        headers: { hostname: 'ack-test@stalk' },
        deliveryMode: 1,
      });
    }
    await channel.waitForConfirms();
    await channel.close();
  }

  /** Our ids still in the queue (after the transport closed: what it did not ack), with their redelivered flag. */
  async function leftInQueue(queue: string): Promise<{ id: string; redelivered: boolean }[]> {
    const channel = await admin.createChannel();
    const found: { id: string; redelivered: boolean }[] = [];
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (message === false) break;
      const body = JSON.parse(message.content.toString()) as { uuid?: string };
      if (body.uuid?.startsWith(RUN)) found.push({ id: body.uuid, redelivered: message.fields.redelivered });
    }
    await channel.close();
    return found;
  }

  const ids = (label: string, n: number) => Array.from({ length: n }, (_, i) => `${RUN}-${label}-${i}`);
  const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('acks only what is committed, cumulatively; a repeated or older commit is a no-op, not a double ack', async () => {
    const h = harness('cumulative', 1_000);
    await h.transport.start();
    const a = ids('a', 10);
    const b = ids('b', 10);
    await publish(a);
    await waitFor(() => h.mine.length === 10, 10_000, 'the first ten delivered');
    await publish(b);
    await waitFor(() => h.mine.length === 20, 10_000, 'the next ten delivered');
    expect(h.mine).toEqual([...a, ...b]);

    h.transport.commit(h.tokens[9]);
    // The same delivery again, and an older one: acking either would close the channel (PRECONDITION_FAILED).
    h.transport.commit(h.tokens[9]);
    h.transport.commit(h.tokens[4]);
    const c = ids('c', 5);
    await publish(c);
    await waitFor(() => h.mine.length === 25, 10_000, 'more deliveries on the same channel');
    expect(h.connections).toEqual([true]);
    expect(h.transport.isConnected()).toBe(true);

    // Closing without another commit hands b and c back to the queue; a is gone.
    await h.transport.close();
    // The channel's close came after the acks on the same channel: a refused ack would have been reported by now.
    expect(h.logs.filter((line) => /channel error|reconnecting|lost connection/.test(line))).toEqual([]);
    const left = await leftInQueue(h.queue);
    expect(left.map((m) => m.id).sort()).toEqual([...b, ...c].sort());
    expect(left.every((m) => m.redelivered)).toBe(true);
  });

  it('stop() ends the deliveries but keeps the channel for the final commit', async () => {
    const h = harness('stop', 1_000);
    await h.transport.start();
    const a = ids('a', 10);
    await publish(a);
    await waitFor(() => h.mine.length === 10, 10_000, 'ten delivered');
    await h.transport.stop();
    // The broker confirmed the consumer's cancel: nothing published from now on reaches it.
    await publish(ids('late', 5));
    // The collector's last flush commits after stop(), before close().
    h.transport.commit(h.transport.checkpoint());
    await h.transport.close();
    expect(h.mine).toEqual(a);
    // Never delivered (a delivered one would be back as redelivered).
    const left = await leftInQueue(h.queue);
    expect(left.map((m) => m.id).sort()).toEqual(ids('late', 5).sort());
    expect(left.some((m) => m.redelivered)).toBe(false);
  });

  it('a commit from before a reconnect acks nothing on the new channel', async () => {
    const proxy = new TcpProxy(await freePort());
    await proxy.up();
    const h = harness('reconnect', 1_000, `amqp://guest:guest@127.0.0.1:${proxy.port}//`);
    try {
      await h.transport.start();
      const a = ids('a', 6);
      await publish(a);
      await waitFor(() => h.mine.length === 6, 10_000, 'six delivered');
      const old = h.tokens[5];
      const older = h.tokens[2];

      proxy.cut();
      // The broker takes the six back and, the queue being named, delivers them again on the new connection.
      await waitFor(() => h.mine.length === 12, 20_000, 'the six redelivered after the reconnect');
      expect(h.mine.slice(6)).toEqual(a);
      expect(h.connections).toEqual([true, false, true]);

      // Delivery tags start again at 1 on the new channel: acking the old tags there would ack the wrong
      // messages (or close the channel). Both must be no-ops.
      h.transport.commit(old);
      h.transport.commit(older);
      const b = ids('b', 3);
      await publish(b);
      await waitFor(() => h.mine.length === 15, 10_000, 'deliveries continue on the new channel');
      expect(h.connections).toEqual([true, false, true]);

      await h.transport.close();
      // Reported by now if the broker had refused an ack (its close came after them on the channel).
      expect(h.logs.filter((line) => /channel error/.test(line))).toEqual([]);
      expect((await leftInQueue(h.queue)).map((m) => m.id).sort()).toEqual([...a, ...b].sort());
    } finally {
      await h.transport.close();
      await proxy.down();
    }
  });

  it('stops at the prefetch until a commit, asking for an early flush at half of it', async () => {
    const prefetch = 20;
    const h = harness('prefetch', prefetch);
    await h.transport.start();
    const all = ids('a', 50);
    await publish(all);
    await waitFor(() => h.transport.unacknowledged === prefetch, 10_000, 'the prefetch filled');
    // A window for a delivery past the prefetch to show: nothing signals that the broker held one back.
    await settle(500);
    // Nothing past the prefetch while nothing is committed (other tests' events take slots too).
    expect(h.transport.unacknowledged).toBe(prefetch);
    expect(h.mine.length).toBeLessThanOrEqual(prefetch);
    expect(h.backlogs).toBe(1);

    // Commit what arrives, as flushes would, until all fifty are in; each refill asks again.
    await waitFor(
      () => {
        h.transport.commit(h.transport.checkpoint());
        return h.mine.length === all.length;
      },
      20_000,
      'all fifty delivered as commits free the prefetch',
      50,
    );
    expect(h.mine).toEqual(all);
    expect(h.backlogs).toBeGreaterThanOrEqual(2);
    h.transport.commit(h.transport.checkpoint());
    await h.transport.close();
    expect(await leftInQueue(h.queue)).toEqual([]);
  });

  it('pause() holds deliveries back in the queue and resume() takes them', async () => {
    const h = harness('pause', 1_000);
    await h.transport.start();
    h.transport.pause();
    const channel = await admin.createChannel();
    await waitFor(async () => (await channel.checkQueue(h.queue)).consumerCount === 0, 10_000, 'the consumer cancelled');
    const a = ids('a', 8);
    await publish(a);
    // No consumer: they wait in the queue.
    expect((await channel.checkQueue(h.queue)).messageCount).toBeGreaterThanOrEqual(8);
    await channel.close();
    expect(h.mine).toEqual([]);
    h.transport.resume();
    await waitFor(() => h.mine.length === 8, 10_000, 'the held messages delivered after resume');
    expect(h.mine).toEqual(a);
    h.transport.commit(h.transport.checkpoint());
    await h.transport.close();
    expect(await leftInQueue(h.queue)).toEqual([]);
  });
});
