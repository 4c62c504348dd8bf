// The AMQP task publisher on the real RabbitMQ, read back the way Celery
// reads it: with py-amqp (Debian's python3-amqp, Celery's AMQP client), so
// header types and properties are checked by the real decoder. Also: queues
// declared as Celery declares them, an existing queue with other arguments,
// a queue deleted after we declared it.

import { randomBytes } from 'node:crypto';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpTaskPublisher } from '../../worker-collector/control/amqp-publisher';
import { pyAmqpTable } from '../../worker-collector/kombu-wire';
import { parseBrokerUrl } from '../../worker-collector/transport/broker-url';
import { AMQP_BROKER, PYTHON, runPython } from '../support/celery';

const BROKER = parseBrokerUrl(AMQP_BROKER);
const RUN = `${process.pid}-${randomBytes(3).toString('hex')}`;

/** Take one message off `queue` with py-amqp and return what it decoded. */
async function readWithPyAmqp(
  queue: string,
): Promise<{ properties: Record<string, unknown>; body: string; delivery: Record<string, unknown> }> {
  const code = `
import json, sys, amqp
conn = amqp.Connection('localhost:5672', userid='guest', password='guest', virtual_host='/')
conn.connect()
ch = conn.channel()
msg = ch.basic_get(sys.argv[1], no_ack=True)
if msg is None:
    print(json.dumps(None))
else:
    print(json.dumps({'properties': msg.properties, 'body': msg.body if isinstance(msg.body, str) else msg.body.decode('utf-8'),
                      'delivery': {'exchange': msg.delivery_info['exchange'], 'routing_key': msg.delivery_info['routing_key']}}, default=repr))
conn.close()
`;
  expect(PYTHON).toBe('/usr/bin/python3');
  const out = await runPython('py-amqp reader', ['-c', code, queue], { broker: AMQP_BROKER }, 20_000);
  const parsed = JSON.parse(out.trim().split('\n').pop() ?? 'null') as Awaited<ReturnType<typeof readWithPyAmqp>> | null;
  if (!parsed) throw new Error(`no message in ${queue}`);
  return parsed;
}

describe('AMQP task publisher', () => {
  let admin: ChannelModel;
  let channel: Channel;
  let publisher: AmqpTaskPublisher;
  const queues: string[] = [];
  const queue = (label: string) => {
    const name = `stalk.amqp-test.${label}.${RUN}`;
    queues.push(name);
    return name;
  };

  beforeAll(async () => {
    admin = await connect(BROKER.url);
    admin.on('error', () => undefined);
    channel = await admin.createChannel();
    channel.on('error', () => undefined);
    publisher = new AmqpTaskPublisher(BROKER);
  });

  afterAll(async () => {
    await publisher?.close();
    if (admin) {
      const cleanup = await admin.createChannel();
      cleanup.on('error', () => undefined);
      for (const name of queues) await cleanup.deleteQueue(name).catch(() => undefined);
      await admin.close().catch(() => undefined);
    }
  });

  it('publishes a protocol-2 task message that py-amqp reads as Celery sends it', async () => {
    const name = queue('format');
    const id = await publisher.send({
      name: 'billing.charge',
      args: ['c<b>1', 100, 2.5, null, true, "it's"],
      kwargs: { note: 'x', nested: { n: [1, 'two'] } },
      queue: name,
      eta: '2030-01-02T03:04:05.678Z',
      expires: '2030-01-02T04:00:00+01:00',
      priority: 3,
    });
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const { properties, body, delivery } = await readWithPyAmqp(name);
    expect(delivery).toEqual({ exchange: '', routing_key: name });
    expect(JSON.parse(body)).toEqual([
      ['c<b>1', 100, 2.5, null, true, "it's"],
      { note: 'x', nested: { n: [1, 'two'] } },
      { callbacks: null, errbacks: null, chain: null, chord: null },
    ]);
    expect(properties).toMatchObject({
      content_type: 'application/json',
      content_encoding: 'utf-8',
      correlation_id: id,
      delivery_mode: 2,
      priority: 3,
    });
    expect(properties.reply_to).toMatch(/^[0-9a-f-]{36}$/);
    // kombu's per-message TTL for `expires`: milliseconds from now, as a string.
    const expiration = Number(properties.expiration);
    expect(expiration).toBeGreaterThan(Date.parse('2030-01-02T03:00:00Z') - Date.now() - 60_000);
    expect(expiration).toBeLessThanOrEqual(Date.parse('2030-01-02T03:00:00Z') - Date.now() + 1_000);
    expect(properties.application_headers).toEqual({
      lang: 'py',
      task: 'billing.charge',
      id,
      shadow: null,
      eta: '2030-01-02T03:04:05.678000+00:00',
      expires: '2030-01-02T03:00:00.000000+00:00',
      group: null,
      group_index: null,
      retries: 0,
      timelimit: [null, null],
      root_id: id,
      parent_id: null,
      // task-message.ts: args come as a JSON list, so the repr is a list (as with Flower's apply).
      argsrepr: `['c<b>1', 100, 2.5, None, True, 'it\\'s']`,
      kwargsrepr: `{'note': 'x', 'nested': {'n': [1, 'two']}}`,
      origin: expect.stringMatching(/^stalk\d+@/),
      ignore_result: false,
    });
  });

  it('sends priority 0 and no expiration unless asked, and keeps a given task id', async () => {
    const name = queue('defaults');
    const id = await publisher.send({ id: 'my-own-id', name: 'stalk.echo', args: [7], kwargs: {}, queue: name });
    expect(id).toBe('my-own-id');
    const { properties } = await readWithPyAmqp(name);
    expect(properties.priority).toBe(0);
    expect(properties.expiration).toBeUndefined();
    expect(properties.correlation_id).toBe('my-own-id');
    const headers = properties.application_headers as Record<string, unknown>;
    expect([headers.id, headers.root_id, headers.eta, headers.expires]).toEqual(['my-own-id', 'my-own-id', null, null]);
  });

  it('declares a missing queue durable with no arguments, like Celery', async () => {
    const name = queue('declared');
    await publisher.send({ name: 'stalk.add', args: [1, 1], kwargs: {}, queue: name });
    // Declaring it again exactly as kombu declares Celery's default queue must not conflict.
    const same = await channel.assertQueue(name, { durable: true, autoDelete: false, exclusive: false });
    expect(same.messageCount).toBe(1);
  });

  it('publishes to an existing queue declared with other arguments, without redeclaring it', async () => {
    const name = queue('priority');
    await channel.assertQueue(name, { durable: true, arguments: { 'x-max-priority': 10 } });
    await publisher.send({ name: 'stalk.add', args: [1, 1], kwargs: {}, queue: name, priority: 9 });
    await publisher.send({ name: 'stalk.add', args: [2, 2], kwargs: {}, queue: name });
    expect((await channel.checkQueue(name)).messageCount).toBe(2);
    // The queue kept its arguments: declaring it with them still agrees.
    await channel.assertQueue(name, { durable: true, arguments: { 'x-max-priority': 10 } });
  });

  it('declares the queue again when it was deleted after the first send', async () => {
    const name = queue('recreated');
    await publisher.send({ name: 'stalk.add', args: [1, 1], kwargs: {}, queue: name });
    await channel.deleteQueue(name);
    // RabbitMQ returns the unroutable message; the publisher declares the queue and sends once more.
    await publisher.send({ name: 'stalk.add', args: [2, 2], kwargs: {}, queue: name });
    expect((await channel.checkQueue(name)).messageCount).toBe(1);
  });

  it('refuses an eta that is not a time, sending nothing', async () => {
    const name = queue('bad-eta');
    await expect(publisher.send({ name: 'stalk.add', args: [], kwargs: {}, queue: name, eta: 'tomorrow-ish' })).rejects.toThrow(
      /eta 'tomorrow-ish' is not an ISO 8601 time/,
    );
    await expect(channel.checkQueue(name)).rejects.toThrow(/NOT_FOUND/);
    channel = await admin.createChannel();
    channel.on('error', () => undefined);
  });

  it('encodes header numbers so that py-amqp reads them back unchanged', async () => {
    const name = queue('numbers');
    await channel.assertQueue(name, { durable: false });
    const headers = {
      tiny: 5,
      byte: 127,
      clock: 300,
      short: 32_767,
      int: 40_000,
      big: 2 ** 40,
      negative: -5,
      ratio: 1.5,
      list: [1, 200, 70_000],
      nested: { n: 129 },
    };
    channel.sendToQueue(name, Buffer.from('{}'), { headers: pyAmqpTable(headers), contentType: 'application/json' });
    const { properties } = await readWithPyAmqp(name);
    expect(properties.application_headers).toEqual(headers);
  });
});
