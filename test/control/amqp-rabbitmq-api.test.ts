// Queue lengths from the RabbitMQ management API, against a local HTTP
// server answering as RabbitMQ 3.10.8's management plugin did when it was
// captured (GET /api/queues/%2F?columns=...; the bodies below are real
// answers). The plugin is not enabled on the test machines, so the real API
// is not needed here; the AMQP fallback runs against the real RabbitMQ.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAmqpControl } from '../../worker-collector/control/amqp';
import { AmqpQueueProbe } from '../../worker-collector/control/amqp-queues';
import { RabbitMqApiQueueProbe, vhostOf } from '../../worker-collector/control/rabbitmq-api';
import type { QueueLength, QueueProbe } from '../../worker-collector/control/types';
import { parseBrokerUrl } from '../../worker-collector/transport/broker-url';
import { AMQP_BROKER } from '../support/celery';
import { LATE_MS } from '../support/timing';

const BROKER = parseBrokerUrl(AMQP_BROKER);
const COLUMNS = 'name,messages,messages_ready,messages_unacknowledged,consumers';

/** Captured from RabbitMQ 3.10.8 (management plugin) with `?columns=`: a queue with 3 ready, 2 unacked and 1 consumer. */
const CAPTURED = [
  { consumers: 0, messages: 0, messages_ready: 0, messages_unacknowledged: 0, name: 'celery' },
  { consumers: 1, messages: 5, messages_ready: 3, messages_unacknowledged: 2, name: 'stalk.api-check.21757' },
];
/** Captured right after the plugin started: queues listed before their first statistics. */
const CAPTURED_NO_STATS = [{ name: 'celery' }];

type Handler = (request: IncomingMessage) => { status: number; body: string } | 'hang';

interface Seen {
  url: string;
  authorization: string | undefined;
}

describe('RabbitMQ management API queue probe', () => {
  let server: Server;
  let base: string;
  let handler: Handler = () => ({ status: 200, body: JSON.stringify(CAPTURED) });
  const seen: Seen[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      seen.push({ url: request.url ?? '', authorization: request.headers.authorization });
      const answer = handler(request);
      if (answer === 'hang') return;
      response.writeHead(answer.status, { 'content-type': 'application/json' });
      response.end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  /** A fallback that records what it was asked. */
  function recordingProbe(): QueueProbe & { asked: string[][] } {
    const asked: string[][] = [];
    return {
      asked,
      async lengths(names: string[]): Promise<QueueLength[]> {
        asked.push(names);
        return names.map((name) => ({ name, messages: 42, ready: 42, unacked: null, consumers: 7 }));
      },
      async close() {},
    };
  }

  it('reads ready, unacked and consumers of the vhost, 0 for queues it does not list', async () => {
    handler = () => ({ status: 200, body: JSON.stringify(CAPTURED) });
    seen.length = 0;
    const probe = new RabbitMqApiQueueProbe(`http://admin:s%40cret@127.0.0.1:${new URL(base).port}/api/`, BROKER);
    expect(await probe.lengths(['stalk.api-check.21757', 'celery', 'missing'])).toEqual([
      { name: 'stalk.api-check.21757', messages: 5, ready: 3, unacked: 2, consumers: 1 },
      { name: 'celery', messages: 0, ready: 0, unacked: 0, consumers: 0 },
      { name: 'missing', messages: 0, ready: 0, unacked: 0, consumers: 0 },
    ]);
    // One request for all queues, credentials from the API URL (decoded), none in the URL.
    expect(seen).toEqual([{ url: `/api/queues/%2F?columns=${COLUMNS}`, authorization: basic('admin', 's@cret') }]);
  });

  it("takes the broker's credentials and vhost when the API URL has none, and finds /api/ from the bare host", async () => {
    seen.length = 0;
    const broker = parseBrokerUrl(`amqp://user:p%3Ass@localhost:5672/my%20vhost`);
    expect(vhostOf(broker)).toBe('my vhost');
    expect(vhostOf(BROKER)).toBe('/');
    expect(vhostOf(parseBrokerUrl('amqp://localhost'))).toBe('/');
    await new RabbitMqApiQueueProbe(base, broker).lengths(['celery']);
    await new RabbitMqApiQueueProbe(`${base}/api`, broker).lengths(['celery']);
    expect(seen).toEqual([
      { url: `/api/queues/my%20vhost?columns=${COLUMNS}`, authorization: basic('user', 'p:ss') },
      { url: `/api/queues/my%20vhost?columns=${COLUMNS}`, authorization: basic('user', 'p:ss') },
    ]);
  });

  it('says what the API answered when it refuses (401, 404), without a fallback', async () => {
    handler = () => ({ status: 401, body: '{"error":"not_authorized","reason":"Login failed"}' });
    const probe = new RabbitMqApiQueueProbe(`${base}/api/`, BROKER);
    await expect(probe.lengths(['celery'])).rejects.toThrow(
      `RabbitMQ management API ${base}/api/ answered 401 (not_authorized: Login failed)`,
    );
    handler = () => ({ status: 404, body: '{"error":"Object Not Found","reason":"Not Found"}' });
    await expect(probe.lengths(['celery'])).rejects.toThrow(/answered 404 \(Object Not Found: Not Found\)/);
    handler = () => ({ status: 200, body: '<html>proxy login</html>' });
    await expect(probe.lengths(['celery'])).rejects.toThrow(/not JSON/);
    handler = () => ({ status: 200, body: '{"queues": []}' });
    await expect(probe.lengths(['celery'])).rejects.toThrow(/unexpected shape/);
  });

  it('gives up after 2 s when the API does not answer', async () => {
    handler = () => 'hang';
    const probe = new RabbitMqApiQueueProbe(`${base}/api/`, BROKER);
    const started = Date.now();
    await expect(probe.lengths(['celery'])).rejects.toThrow(/unreachable \(no answer within 2 s\)/);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1_900);
    expect(elapsed).toBeLessThan(2_000 + LATE_MS);
  });

  it('falls back to the other probe when the API fails, and for queues without statistics yet', async () => {
    handler = () => ({ status: 503, body: 'busy' });
    const fallback = recordingProbe();
    const probe = new RabbitMqApiQueueProbe(`${base}/api/`, BROKER, { fallback });
    expect(await probe.lengths(['a', 'b'])).toEqual([
      { name: 'a', messages: 42, ready: 42, unacked: null, consumers: 7 },
      { name: 'b', messages: 42, ready: 42, unacked: null, consumers: 7 },
    ]);
    handler = () => ({ status: 200, body: JSON.stringify([...CAPTURED_NO_STATS, CAPTURED[1]]) });
    expect(await probe.lengths(['stalk.api-check.21757', 'celery', 'gone'])).toEqual([
      { name: 'stalk.api-check.21757', messages: 5, ready: 3, unacked: 2, consumers: 1 },
      { name: 'celery', messages: 42, ready: 42, unacked: null, consumers: 7 },
      { name: 'gone', messages: 0, ready: 0, unacked: 0, consumers: 0 },
    ]);
    expect(fallback.asked).toEqual([['a', 'b'], ['celery']]);
  });

  it('measures over AMQP (real RabbitMQ) when the API is down, via createAmqpControl', async () => {
    const port = new URL(base).port;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    const control = createAmqpControl(BROKER, { brokerApi: `http://127.0.0.1:${port}/api/` });
    try {
      expect(control.queues).toBeInstanceOf(RabbitMqApiQueueProbe);
      const [length] = await control.queues.lengths([`stalk.amqp-test.absent.${process.pid}`]);
      expect(length).toEqual({ name: `stalk.amqp-test.absent.${process.pid}`, messages: 0, ready: 0, unacked: null, consumers: 0 });
    } finally {
      await control.close();
      await new Promise<void>((resolve) => server.listen(Number(port), '127.0.0.1', resolve));
    }
    // Without --broker-api the factory measures over AMQP directly.
    const plain = createAmqpControl(BROKER);
    expect(plain.queues).toBeInstanceOf(AmqpQueueProbe);
    await plain.close();
  });

  it('refuses an API URL that is not http(s)', () => {
    expect(() => new RabbitMqApiQueueProbe('localhost:15672', BROKER)).toThrow(/--broker-api: use http/);
    expect(() => new RabbitMqApiQueueProbe('not a url', BROKER)).toThrow(/--broker-api: 'not a url' is not a URL/);
  });
});
