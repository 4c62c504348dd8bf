import { describe, expect, it } from 'vitest';
import { MAX_TEXT_LENGTH } from '../../src/shared/celery-events';
import { redisEnvelope } from '../../worker-collector/kombu-wire';
import { decodeAmqpMessage, decodeRedisMessage } from '../../worker-collector/decode';
import { amqpEventMessages, redisEventMessages } from '../fixtures/captures';

const NOW = 1_800_000_000;

function envelope(body: unknown, overrides: Record<string, unknown> = {}): string {
  const json = JSON.parse(redisEnvelope(body, { hostname: 'w1@h' }, 'celeryev', 'task.multi', 1)) as Record<string, unknown>;
  return JSON.stringify({ ...json, ...overrides });
}

describe('decoding captured Celery messages', () => {
  it('reads every Redis event message of the capture, expanding task.multi', () => {
    const messages = redisEventMessages();
    const decoded = messages.map((m) => decodeRedisMessage(m.raw, NOW));
    expect(decoded.flatMap((d) => d.dropped)).toEqual([]);
    const events = decoded.flatMap((d) => d.events);
    const expected = messages.flatMap((m) => (Array.isArray(m.decoded_body) ? m.decoded_body : [m.decoded_body]));
    expect(events).toHaveLength(expected.length);
    expect(events.map((e) => e.type)).toEqual(expected.map((e) => (e as { type: string }).type));
    const success = events.find((e) => e.type === 'task-succeeded');
    expect(success).toMatchObject({ kind: 'task', hostname: 'w1@cap', result: "{'customer': 'c<b>1', 'cents': 100, 'note': 'x'}" });
  });

  it('reads every AMQP event message of the capture', () => {
    const messages = amqpEventMessages();
    const decoded = messages.map((m) =>
      decodeAmqpMessage(
        Buffer.from(m.body),
        {
          contentType: m.properties.content_type,
          contentEncoding: m.properties.content_encoding,
          headers: m.properties.application_headers,
        },
        NOW,
      ),
    );
    expect(decoded.flatMap((d) => d.dropped)).toEqual([]);
    const types = decoded.flatMap((d) => d.events.map((e) => e.type));
    expect(types).toContain('task-failed');
    expect(types).toContain('worker-online');
  });
});

describe('refusing what cannot be read, without throwing', () => {
  const event = { type: 'task-started', uuid: 'u1', hostname: 'w1@h', timestamp: NOW - 1, clock: 1 };

  it.each([
    ['not JSON at all', 'garbage{', 'envelope-invalid'],
    ['a JSON array envelope', '[1,2]', 'envelope-invalid'],
    ['an envelope without body', JSON.stringify({ 'content-type': 'application/json' }), 'envelope-invalid'],
    ['pickle', envelope(event, { 'content-type': 'application/x-python-serialize' }), 'serializer-pickle'],
    ['yaml', envelope(event, { 'content-type': 'application/x-yaml' }), 'serializer-yaml'],
    ['msgpack', envelope(event, { 'content-type': 'application/x-msgpack' }), 'serializer-msgpack'],
    ['an unknown serializer', envelope(event, { 'content-type': 'text/x-klingon' }), 'serializer-unknown'],
    ['compressed bodies', envelope(event, { headers: { compression: 'application/x-gzip' } }), 'compression-unsupported'],
    ['a body that is not JSON', envelope(event, { body: Buffer.from('{oops').toString('base64') }), 'body-invalid-json'],
    ['a body that is a number', envelope(event, { body: Buffer.from('42').toString('base64') }), 'body-not-event'],
  ])('%s', (_what, raw, reason) => {
    expect(decodeRedisMessage(raw, NOW)).toEqual({ events: [], dropped: [reason] });
  });

  it('keeps the good events of a task.multi batch and counts the bad ones', () => {
    const batch = [event, { type: 'task-started' }, 'string', { uuid: 'x' }, { ...event, uuid: 'y'.repeat(300) }];
    const decoded = decodeRedisMessage(envelope(batch), NOW);
    expect(decoded.events).toHaveLength(1);
    expect(decoded.dropped).toEqual(['event-missing-uuid', 'event-not-object', 'event-missing-type', 'event-uuid-too-long']);
  });

  it('bounds hostile field values instead of storing them whole', () => {
    const huge = 'x'.repeat(MAX_TEXT_LENGTH * 3);
    const decoded = decodeRedisMessage(
      envelope({
        ...event,
        type: 'task-received',
        name: 'n'.repeat(1000),
        args: huge,
        kwargs: { nested: [1, 2] },
        retries: 'many',
        runtime: 'fast',
      }),
      NOW,
    );
    const [e] = decoded.events;
    expect(e).toMatchObject({ kind: 'task', retries: null, kwargs: '{"nested":[1,2]}' });
    if (e?.kind !== 'task') throw new Error('expected a task event');
    expect(e.args).toHaveLength(MAX_TEXT_LENGTH);
    expect(e.name).toHaveLength(255);
  });

  it('uses the arrival time when an event has no usable timestamp', () => {
    const [e] = decodeRedisMessage(envelope({ ...event, timestamp: 'noon' }), NOW).events;
    expect(e?.timestamp).toBe(NOW);
  });

  it('refuses worker events without a hostname', () => {
    expect(decodeRedisMessage(envelope({ type: 'worker-heartbeat', freq: 2 }), NOW).dropped).toEqual(['event-missing-hostname']);
  });

  it('refuses non-JSON content types on AMQP too', () => {
    expect(decodeAmqpMessage(Buffer.from('x'), { contentType: 'application/x-python-serialize' }, NOW).dropped).toEqual([
      'serializer-pickle',
    ]);
    expect(decodeAmqpMessage(Buffer.from('{'), { contentType: 'application/json' }, NOW).dropped).toEqual(['body-invalid-json']);
  });
});
