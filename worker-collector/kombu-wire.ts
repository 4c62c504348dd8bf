// kombu's names and encodings on the wire, shared by the event transport
// (transport/) and broker control (control/), so that neither imports the
// other: the pidbox exchanges, the Redis binding keys and message envelope,
// and AMQP header tables as Celery's AMQP client reads them.
// Formats: docs/celery-protocol.md.

import { randomUUID } from 'node:crypto';

/** The fanout exchange of pidbox broadcasts (kombu's `<namespace>.pidbox`, namespace `celery`). */
export const PIDBOX_EXCHANGE = 'celery.pidbox';
/** The direct exchange replies come back through, routed by the requester's oid. */
export const REPLY_EXCHANGE = 'reply.celery.pidbox';
/** kombu's `keyprefix_queue` on Redis: `_kombu.binding.<exchange>` is the set of that exchange's bindings. */
export const BINDING_PREFIX = '_kombu.binding.';
/** kombu's separator in Redis binding members and priority queue names. */
export const KOMBU_SEP = '\x06\x16';

/** The kombu JSON envelope that carries a message on Redis. */
export function redisEnvelope(
  body: unknown,
  headers: Record<string, unknown>,
  exchange: string,
  routingKey: string,
  deliveryMode = 2,
): string {
  return JSON.stringify({
    body: Buffer.from(JSON.stringify(body), 'utf8').toString('base64'),
    'content-encoding': 'utf-8',
    'content-type': 'application/json',
    headers,
    properties: {
      delivery_mode: deliveryMode,
      delivery_info: { exchange, routing_key: routingKey },
      priority: 0,
      body_encoding: 'base64',
      delivery_tag: randomUUID(),
    },
  });
}

/**
 * Headers as Celery's AMQP client (py-amqp) can read them. amqplib writes a
 * JS integer in the smallest type: 'b' below 128, 's' (16-bit int) below
 * 32768, 'I', then 'l'. py-amqp reads 's' as a *short string* and 'b'/'l' as
 * unsigned, so a header like `clock: 300` desynchronises the frame and the
 * worker dies with "Unrecoverable error: UnicodeDecodeError". Integers go as
 * 32-bit 'I' (what py-amqp itself writes), other numbers as doubles 'd'.
 */
export function pyAmqpTable(value: unknown): unknown {
  if (typeof value === 'number') {
    const int32 = Number.isInteger(value) && value >= -0x80000000 && value < 0x80000000;
    return { '!': int32 ? 'int' : 'double', value };
  }
  if (Array.isArray(value)) return value.map(pyAmqpTable);
  if (typeof value === 'object' && value !== null && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, pyAmqpTable(v)]));
  }
  return value;
}
