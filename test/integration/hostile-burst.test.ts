// A hostile burst through a real collector (the local entry, src/node.ts) on
// real Redis and RabbitMQ: malformed messages, an unsupported serializer,
// envelopes over --max-event-bytes, task events with impossible times, and
// lone surrogates in names and fields, then N good events. Every good event
// is stored, every hostile class is counted under its reason on /metrics,
// and the pages of the surrogate-named worker and task answer.

import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisEnvelope } from '../../worker-collector/kombu-wire';
import { AMQP_BROKER } from '../support/celery';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { printLogsOnFailure, stopAllProcesses } from '../support/processes';
import { type Stalk, startStalk, waitFor } from '../support/stalk';

/** Redis db 12: the collector reads `/12.celeryev/*`, which no other test publishes on. */
const REDIS = 'redis://localhost:6379/12';
const GOOD = 300;
/** Over the default --max-event-bytes (1 MiB), far under Redis' 32 MB pub/sub output limit for the three of them. */
const TOO_LARGE_BYTES = 1536 * 1024;

interface Publisher {
  /** One event message: kombu's envelope on Redis, the raw body on RabbitMQ. */
  event(routingKey: string, body: unknown, contentType?: string): Promise<void>;
  /** An event message whose body is this exact JSON text (which JSON.stringify could not write, e.g. 1e999). */
  eventText(routingKey: string, bodyText: string): Promise<void>;
  /** Bytes exactly as given: the whole message on Redis, the body on RabbitMQ. */
  raw(routingKey: string, bytes: Buffer): Promise<void>;
  close(): Promise<void>;
}

async function redisPublisher(): Promise<Publisher> {
  const client = new Redis(REDIS);
  const channel = (key: string) => `/12.celeryev/${key}`;
  const envelope = (key: string, bodyText: string, contentType: string) => {
    const kombu = JSON.parse(redisEnvelope({}, { hostname: 'hostile@test' }, 'celeryev', key, 12)) as Record<string, unknown>;
    return JSON.stringify({ ...kombu, body: Buffer.from(bodyText).toString('base64'), 'content-type': contentType });
  };
  return {
    event: async (key, body, contentType = 'application/json') =>
      void (await client.publish(channel(key), envelope(key, JSON.stringify(body), contentType))),
    eventText: async (key, bodyText) => void (await client.publish(channel(key), envelope(key, bodyText, 'application/json'))),
    raw: async (key, bytes) => void (await client.publish(channel(key), bytes)),
    close: async () => void (await client.quit()),
  };
}

async function amqpPublisher(): Promise<Publisher> {
  const connection = await connect(AMQP_BROKER);
  const channel = await connection.createConfirmChannel();
  await channel.assertExchange('celeryev', 'topic', { durable: true, autoDelete: false });
  const publish = (key: string, content: Buffer, contentType: string) =>
    new Promise<void>((resolve, reject) =>
      channel.publish(
        'celeryev',
        key,
        content,
        { contentType, contentEncoding: 'utf-8', deliveryMode: 1, headers: { hostname: 'hostile@test' } },
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  return {
    event: (key, body, contentType = 'application/json') => publish(key, Buffer.from(JSON.stringify(body)), contentType),
    eventText: (key, bodyText) => publish(key, Buffer.from(bodyText), 'application/json'),
    raw: (key, bytes) => publish(key, bytes, 'application/json'),
    close: async () => {
      await channel.close();
      await connection.close();
    },
  };
}

const BROKERS = [
  { broker: 'redis', url: REDIS, publisher: redisPublisher },
  { broker: 'amqp', url: AMQP_BROKER, publisher: amqpPublisher },
] as const;

/** `stalk_events_dropped_total{reason="..."} n` lines of a scrape. */
function droppedCounts(metrics: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const match of metrics.matchAll(/^stalk_events_dropped_total\{reason="([^"]+)"\} (\d+)$/gm)) counts[match[1]!] = Number(match[2]);
  return counts;
}

describe.each(BROKERS)('a hostile burst on $broker', ({ broker, url, publisher }) => {
  let database: TestDatabase | undefined;
  let stalk: Stalk | undefined;
  const run = randomUUID().slice(0, 8);

  printLogsOnFailure();

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    stalk = await startStalk({ broker: url, db: database.url, extraArgs: ['--metrics-open', '--no-enable-events'] });
    // Bound to the events before anything is published.
    await stalk.process.waitForOutput(/subscribed to|consuming celeryev via queue/, 30_000);
  });

  afterAll(async () => {
    await stopAllProcesses();
    await database?.drop();
  });

  it('stores every good event after the burst and counts each hostile class under its reason', async () => {
    if (!stalk) throw new Error('stalk did not start');
    const now = Date.now() / 1000;
    const publish = await publisher();
    const hostUuid = `hostile-${run}-\ud800-lone`;
    try {
      // Malformed: not JSON at all (the envelope on Redis, the body on RabbitMQ).
      await publish.raw('task.multi', Buffer.from('{"body": garbage'));
      // An unsupported serializer (pickle).
      await publish.event(
        'task.multi',
        [{ type: 'task-received', uuid: `pickled-${run}`, hostname: 'w@x', timestamp: now }],
        'application/x-python-serialize',
      );
      // Over --max-event-bytes: refused unread.
      for (let i = 0; i < 3; i++) {
        await publish.event('task.multi', [
          { type: 'task-received', uuid: `big-${run}-${i}`, hostname: 'w@x', timestamp: now, args: 'x'.repeat(TOO_LARGE_BYTES) },
        ]);
      }
      // Impossible times: 1e20, -1e20, 0 (1970), and 1e999 (JSON.parse reads it as Infinity).
      const times = [1e20, -1e20, 0].map((timestamp, i) => ({
        type: 'task-started',
        uuid: `time-${run}-${i}`,
        hostname: 'w@x',
        timestamp,
      }));
      await publish.event('task.multi', times);
      await publish.eventText('task.multi', `[{"type": "task-started", "uuid": "time-${run}-inf", "hostname": "w@x", "timestamp": 1e999}]`);
      // Lone surrogates: a worker's hostname, a task's id, name and arguments.
      await publish.event('worker.heartbeat', {
        type: 'worker-heartbeat',
        hostname: `a\ud800@${run}`,
        timestamp: now,
        freq: 2,
        clock: 1,
        loadavg: [0.1, 0.2, 0.3],
        active: 0,
        processed: 0,
      });
      await publish.event('task.multi', [
        {
          type: 'task-received',
          uuid: hostUuid,
          hostname: `a\ud800@${run}`,
          timestamp: now,
          name: 'hostile.\udc00name',
          args: "('\ud800',)",
          kwargs: '{}',
        },
      ]);
      // Then the good events.
      for (let i = 0; i < GOOD; i++) {
        await publish.event('task.sent', {
          type: 'task-sent',
          uuid: `good-${run}-${i}`,
          hostname: 'client@test',
          timestamp: now,
          clock: i,
          name: `hostile.good.${run}`,
          args: `(${i},)`,
          kwargs: '{}',
          queue: 'celery',
        });
      }
    } finally {
      await publish.close();
    }

    const stored = await waitFor(
      async () => {
        const tasks = await stalk!.fetchJson<Record<string, unknown>>(`/api/tasks?taskname=hostile.good.${run}`);
        return Object.keys(tasks).length === GOOD ? tasks : undefined;
      },
      30_000,
      `all ${GOOD} good events stored`,
    );
    expect(Object.keys(stored)).toHaveLength(GOOD);

    const malformed = broker === 'redis' ? 'envelope-invalid' : 'body-invalid-json';
    const expected = { [malformed]: 1, 'serializer-pickle': 1, 'too-large': 3, 'bad-timestamp': 4 };
    // The collector reports its counts in its status row every 5 s.
    let counted: Record<string, number> = {};
    const counts = await waitFor(
      async () => {
        counted = droppedCounts((await stalk!.fetchText('/metrics')).text);
        return Object.entries(expected).every(([reason, n]) => (counted[reason] ?? 0) >= n) ? counted : undefined;
      },
      20_000,
      `drops counted on /metrics: ${JSON.stringify(expected)}`,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; counted: ${JSON.stringify(counted)}`);
    });
    expect(counts).toMatchObject(expected);

    // None of the refused tasks was stored; the surrogate-named ones were, and their pages answer.
    const all = await stalk.fetchJson<Record<string, { name: string | null; args: string | null; worker: string | null }>>('/api/tasks');
    expect(Object.keys(all).filter((id) => /^(pickled|big|time)-/.test(id) && id.includes(run))).toEqual([]);
    const lone = all[hostUuid.toWellFormed()];
    expect(lone).toMatchObject({ name: 'hostile.\ufffdname', args: "('\ufffd',)", worker: `a\ufffd@${run}` });
    for (const path of [
      '/',
      '/workers',
      `/worker/${encodeURIComponent(`a\ufffd@${run}`)}`,
      `/task/${encodeURIComponent(hostUuid.toWellFormed())}`,
      '/tasks',
      '/tasks?sort=-received',
    ]) {
      const response = await stalk.fetchText(path);
      expect(response.status, path).toBe(200);
    }
  }, 90_000);
});
