// The AMQP mailbox against a scripted worker on the real RabbitMQ: the
// request as Celery's workers read it, replies dispatched by ticket with
// many calls in flight, malformed and late replies skipped, limits and
// timeouts; and the shared connection: lazy, rejecting clearly while the
// broker is unreachable, reconnecting with backoff (through a TCP proxy the
// test cuts and restores).

import { randomBytes } from 'node:crypto';
import { type Channel, type ChannelModel, type ConsumeMessage, connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAmqpControl } from '../../worker-collector/control/amqp';
import { AmqpLink } from '../../worker-collector/control/amqp-link';
import { AmqpMailbox } from '../../worker-collector/control/pidbox-amqp';
import { PIDBOX_EXCHANGE, REPLY_EXCHANGE } from '../../worker-collector/kombu-wire';
import type { Replies } from '../../worker-collector/control/types';
import { parseBrokerUrl } from '../../worker-collector/transport/broker-url';
import { AMQP_BROKER } from '../support/celery';
import { freePort, waitFor } from '../support/processes';
import { TcpProxy } from '../support/tcp-proxy';
import { AT_ONCE_MS, NEVER_MS } from '../support/timing';

const BROKER = parseBrokerUrl(AMQP_BROKER);
const RUN = `${process.pid}-${randomBytes(3).toString('hex')}`;
const FAKE = `fake-${RUN}@stalktest`;
const FAKE2 = `fake2-${RUN}@stalktest`;

interface Request {
  body: Record<string, unknown>;
  message: ConsumeMessage;
}

type Reply = { content: string; headers?: Record<string, unknown>; contentType?: string; delayMs?: number; after?: Promise<unknown> };
/** How the fake worker answers a request addressed to it: replies to send (in order), per worker name. */
type Script = (request: Request, worker: string) => Reply[];

/** A pretend Celery worker: consumes celery.pidbox like a real one and answers as the test scripts it. */
class FakeWorker {
  readonly requests: Request[] = [];
  script: Script = (request, worker) => [this.reply(request, { [worker]: { ok: 'pong' } })];
  private channel!: Channel;
  private readonly queue = `${FAKE}.celery.pidbox`;

  constructor(private readonly connection: ChannelModel) {}

  async start(): Promise<void> {
    this.channel = await this.connection.createChannel();
    this.channel.on('error', () => undefined);
    await this.channel.assertExchange(PIDBOX_EXCHANGE, 'fanout', { durable: false, autoDelete: false });
    await this.channel.assertQueue(this.queue, { exclusive: true, autoDelete: true, durable: false });
    await this.channel.bindQueue(this.queue, PIDBOX_EXCHANGE, '');
    await this.channel.consume(this.queue, (message) => message && this.onRequest(message), { noAck: true });
  }

  /** A well-formed reply to `request`. */
  reply(request: Request, body: unknown, extraHeaders: Record<string, unknown> = {}): Reply {
    return { content: JSON.stringify(body), headers: { ticket: request.body.ticket, clock: 5, ...extraHeaders } };
  }

  private onRequest(message: ConsumeMessage): void {
    const body = JSON.parse(message.content.toString()) as Record<string, unknown>;
    const request = { body, message };
    const destination = body.destination as string[] | null;
    const mine = [FAKE, FAKE2].filter((name) => destination?.includes(name));
    if (mine.length === 0) return;
    this.requests.push(request);
    const replyTo = body.reply_to as { exchange: string; routing_key: string } | undefined;
    if (!replyTo) return;
    for (const worker of mine) {
      for (const reply of this.script(request, worker)) {
        const send = () => {
          try {
            this.channel.publish(replyTo.exchange, replyTo.routing_key, Buffer.from(reply.content), {
              contentType: reply.contentType ?? 'application/json',
              contentEncoding: 'utf-8',
              ...(reply.headers ? { headers: reply.headers } : {}),
            });
          } catch {
            // A delayed reply after the test closed the connection.
          }
        };
        const later = () => (reply.delayMs ? setTimeout(send, reply.delayMs) : send());
        if (reply.after) void reply.after.then(later);
        else later();
      }
    }
  }
}

describe('AMQP mailbox', () => {
  let admin: ChannelModel;
  let fake: FakeWorker;
  let mailbox: AmqpMailbox;

  beforeAll(async () => {
    admin = await connect(BROKER.url);
    admin.on('error', () => undefined);
    fake = new FakeWorker(admin);
    await fake.start();
    mailbox = new AmqpMailbox(BROKER);
  });

  afterAll(async () => {
    await mailbox?.close();
    await admin?.close().catch(() => undefined);
  });

  it('publishes requests as kombu does and collects the reply of the destination', async () => {
    fake.requests.length = 0;
    const before = Date.now() / 1000;
    const replies = await mailbox.call('stats', { safe: true }, { destination: [FAKE], timeoutMs: 2_000, reply: true });
    const after = Date.now() / 1000;
    expect(replies).toEqual({ [FAKE]: { ok: 'pong' } });
    const [request] = fake.requests;
    expect(request).toBeDefined();
    const { body, message } = request as Request;
    expect(body).toEqual({
      method: 'stats',
      arguments: { safe: true },
      destination: [FAKE],
      pattern: null,
      matcher: null,
      ticket: expect.stringMatching(/^[0-9a-f-]{36}$/),
      reply_to: { exchange: REPLY_EXCHANGE, routing_key: mailbox.oid },
    });
    expect(message.fields.exchange).toBe(PIDBOX_EXCHANGE);
    expect(message.fields.routingKey).toBe('');
    expect(message.properties.contentType).toBe('application/json');
    expect(message.properties.contentEncoding).toBe('utf-8');
    const headers = message.properties.headers as { clock: number; expires: number };
    expect(headers.clock).toBeGreaterThan(0);
    // The timeout from the moment it was sent.
    expect(headers.expires).toBeGreaterThanOrEqual(before + 2);
    expect(headers.expires).toBeLessThanOrEqual(after + 2);
    // The reply queue is ours, named as kombu names it.
    expect(mailbox.replyQueue).toBe(`${mailbox.oid}.reply.celery.pidbox`);
    const channel = await admin.createChannel();
    expect((await channel.checkQueue(mailbox.replyQueue)).consumerCount).toBe(1);
    await channel.close();
  });

  it('sends fire-and-forget commands without ticket or reply_to, resolving {} at once', async () => {
    fake.requests.length = 0;
    const started = Date.now();
    expect(await mailbox.call('revoke', { task_id: 'abc' }, { destination: [FAKE], timeoutMs: NEVER_MS, reply: false })).toEqual({});
    expect(Date.now() - started).toBeLessThan(AT_ONCE_MS);
    await waitFor(() => fake.requests.length === 1, 3_000, 'the cast to arrive');
    const body = fake.requests[0]?.body;
    expect(body).toEqual({ method: 'revoke', arguments: { task_id: 'abc' }, destination: [FAKE], pattern: null, matcher: null });
  });

  it('skips malformed replies and replies to other tickets, keeping the good one', async () => {
    fake.script = (request, worker) => [
      { content: '{not json', headers: { ticket: request.body.ticket } },
      { content: '[1, 2]', headers: { ticket: request.body.ticket } },
      { content: 'null', headers: { ticket: request.body.ticket } },
      {
        content: JSON.stringify({ [worker]: 'pickled' }),
        headers: { ticket: request.body.ticket },
        contentType: 'application/x-python-serialize',
      },
      { content: JSON.stringify({ [worker]: 'no ticket' }) },
      fake.reply(request, { [worker]: 'other ticket' }, { ticket: 'not-this-one' }),
      fake.reply(request, { __proto__: 'polluted' }),
      fake.reply(request, { [worker]: { ok: 'the good one' } }, { clock: 'not a number' }),
    ];
    const started = Date.now();
    const replies = await mailbox.call('ping', {}, { destination: [FAKE], timeoutMs: NEVER_MS, reply: true });
    expect(replies).toEqual({ [FAKE]: { ok: 'the good one' } });
    expect(Object.getPrototypeOf(replies)).toBe(Object.prototype);
    // The good reply ended the call.
    expect(Date.now() - started).toBeLessThan(AT_ONCE_MS);
  });

  it('resolves with what arrived at the timeout; a late reply is dropped quietly', async () => {
    fake.script = (request, worker) => [{ ...fake.reply(request, { [worker]: 'late' }), delayMs: 700 }];
    const started = Date.now();
    expect(await mailbox.call('ping', {}, { destination: [FAKE], timeoutMs: 300, reply: true })).toEqual({});
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    // The late reply lands while the next call waits: it must not be taken for that call's reply.
    fake.script = (request, worker) => [{ ...fake.reply(request, { [worker]: 'second' }), delayMs: 900 }];
    expect(await mailbox.call('ping', {}, { destination: [FAKE], timeoutMs: NEVER_MS, reply: true })).toEqual({ [FAKE]: 'second' });
  });

  it('keeps many calls in flight and gives each its own replies, whatever their order', async () => {
    const methods = Array.from({ length: 24 }, (_, i) => `method_${i}`);
    // The fake answers none until all 24 requests are there (calls one after another would never get
    // there), then all of them in a random order.
    let allThere: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (allThere = resolve));
    let seen = 0;
    fake.script = (request, worker) => {
      if (++seen === methods.length) allThere();
      return [{ ...fake.reply(request, { [worker]: request.body.method }), after: all, delayMs: 1 + Math.floor(Math.random() * 50) }];
    };
    const results = await Promise.all(
      methods.map((method) => mailbox.call(method, {}, { destination: [FAKE], timeoutMs: NEVER_MS, reply: true })),
    );
    expect(results).toEqual(methods.map((method) => ({ [FAKE]: method })));
  });

  it('stops at the limit: every destination by default, or the given number', async () => {
    fake.script = (request, worker) => [{ ...fake.reply(request, { [worker]: 'pong' }), delayMs: worker === FAKE2 ? 400 : 0 }];
    const started = Date.now();
    expect(await mailbox.call('ping', {}, { destination: [FAKE, FAKE2], timeoutMs: NEVER_MS, reply: true })).toEqual({
      [FAKE]: 'pong',
      [FAKE2]: 'pong',
    });
    const elapsed = Date.now() - started;
    // It waited for the late one, and no longer.
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(AT_ONCE_MS);
    // With a limit of 1 the late reply (which comes well within the timeout) is not waited for.
    expect(await mailbox.call('ping', {}, { destination: [FAKE, FAKE2], timeoutMs: NEVER_MS, reply: true, limit: 1 })).toEqual({
      [FAKE]: 'pong',
    });
  });

  it('declares the reply queue again when it is deleted under it', async () => {
    fake.script = (request, worker) => [fake.reply(request, { [worker]: 'pong' })];
    const channel = await admin.createChannel();
    await channel.deleteQueue(mailbox.replyQueue);
    await channel.close();
    // RabbitMQ cancels our consumer; the next call sets the channel up again.
    await waitFor(
      async () => (await mailbox.call('ping', {}, { destination: [FAKE], timeoutMs: 1_000, reply: true }))[FAKE] === 'pong',
      10_000,
      'a reply after the reply queue was deleted',
    );
  });
});

describe('AMQP control connection', () => {
  let admin: ChannelModel;
  let fake: FakeWorker;

  beforeAll(async () => {
    admin = await connect(BROKER.url);
    admin.on('error', () => undefined);
    fake = new FakeWorker(admin);
    await fake.start();
  });

  afterAll(async () => {
    await admin?.close().catch(() => undefined);
  });

  it('connects lazily and rejects clearly while the broker is unreachable', async () => {
    const port = await freePort();
    const link = new AmqpLink(parseBrokerUrl(`amqp://guest:guest@127.0.0.1:${port}//`));
    const mailbox = new AmqpMailbox(link);
    expect(link.isConnected()).toBe(false);
    await expect(mailbox.call('ping', {}, { timeoutMs: 500, reply: true })).rejects.toThrow(
      new RegExp(`RabbitMQ amqp://guest:\\*\\*\\*\\*@127\\.0\\.0\\.1:${port}// is unreachable \\(.*ECONNREFUSED`),
    );
    // While a reconnect is pending, calls fail at once and say when the next attempt is.
    const started = Date.now();
    await expect(mailbox.call('ping', {}, { timeoutMs: NEVER_MS, reply: true })).rejects.toThrow(
      /is unreachable \(.*ECONNREFUSED.*\); next attempt in \d+\.\d s/,
    );
    expect(Date.now() - started).toBeLessThan(AT_ONCE_MS);
    await mailbox.close();
  });

  it('refuses a Redis broker URL', () => {
    expect(() => new AmqpMailbox(parseBrokerUrl('redis://localhost:6379/0'))).toThrow(/amqp:\/\//);
  });

  it('reconnects with backoff after losing the broker; mailbox, publisher and probe work again', async () => {
    const proxy = new TcpProxy(await freePort());
    await proxy.up();
    const control = createAmqpControl(parseBrokerUrl(`amqp://guest:guest@127.0.0.1:${proxy.port}//`));
    const queue = `stalk.amqp-test.reconnect.${RUN}`;
    const ping = () => control.mailbox.call('ping', {}, { destination: [FAKE], timeoutMs: 1_000, reply: true });
    try {
      fake.script = (request, worker) => [fake.reply(request, { [worker]: 'pong' })];
      expect(await ping()).toEqual({ [FAKE]: 'pong' });
      await control.publisher.send({ name: 'stalk.add', args: [1, 2], kwargs: {}, queue });

      await proxy.down();
      // Every call fails fast with the reason while the broker is gone.
      await waitFor(
        async () => {
          try {
            await ping();
            return false;
          } catch (error) {
            return /unreachable|closed/i.test((error as Error).message);
          }
        },
        5_000,
        'calls to reject while the broker is unreachable',
      );
      await expect(control.queues.lengths([queue])).rejects.toThrow(/unreachable/);
      await expect(control.publisher.send({ name: 'stalk.add', args: [1, 2], kwargs: {}, queue })).rejects.toThrow(/unreachable/);

      // A reconnect attempt has been refused: the backoff is under way.
      await waitFor(
        async () =>
          (
            await ping().then(
              () => '',
              (error: Error) => error.message,
            )
          ).includes('ECONNREFUSED'),
        10_000,
        'a reconnect attempt refused',
      );
      await proxy.up();
      // Back within the capped backoff; the reply queue is declared again on the new connection.
      await waitFor(async () => (await ping().catch((): Replies => ({})))[FAKE] === 'pong', 10_000, 'the mailbox to work again');
      await control.publisher.send({ name: 'stalk.add', args: [3, 4], kwargs: {}, queue });
      expect(await control.queues.lengths([queue])).toEqual([{ name: queue, messages: 2, ready: 2, unacked: null, consumers: 0 }]);
    } finally {
      await control.close();
      await proxy.down();
      const channel = await admin.createChannel();
      await channel.deleteQueue(queue);
      await channel.close();
    }
  });
});
