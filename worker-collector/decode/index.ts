// Bytes from the broker -> typed Celery events. Nothing here throws: every
// message either yields events or a reason, which the collector counts.
// Formats: docs/celery-protocol.md (#message-envelope) (kombu envelope on Redis, raw
// body with message properties on AMQP; `task.multi` bodies are arrays).

import { type CeleryEvent, type InvalidEventReason, parseEvent } from '../../src/shared/celery-events';

export type MessageErrorReason =
  | 'too-large'
  /** Shed unread by the Redis reader while the collector was behind (transport/redis-reader.ts). */
  | 'overload'
  | 'envelope-invalid'
  | 'body-encoding-unsupported'
  | 'compression-unsupported'
  | 'serializer-pickle'
  | 'serializer-yaml'
  | 'serializer-msgpack'
  | 'serializer-unknown'
  | 'body-invalid-json'
  | 'body-not-event';

export type DropReason = MessageErrorReason | InvalidEventReason;

/** `--max-event-bytes`'s default: a Celery event message is a few kilobytes; a task.multi batch rarely 100. */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

export interface Decoded {
  events: CeleryEvent[];
  /** One reason per message or event that could not be used. */
  dropped: DropReason[];
}

const SERIALIZERS: Record<string, MessageErrorReason | 'json'> = {
  'application/json': 'json',
  'application/x-python-serialize': 'serializer-pickle',
  'application/x-yaml': 'serializer-yaml',
  'application/x-msgpack': 'serializer-msgpack',
};

function fail(reason: DropReason): Decoded {
  return { events: [], dropped: [reason] };
}

function serializerOf(contentType: unknown): MessageErrorReason | 'json' {
  if (contentType === undefined || contentType === null) return 'json';
  if (typeof contentType !== 'string') return 'serializer-unknown';
  return SERIALIZERS[contentType.split(';')[0]!.trim().toLowerCase()] ?? 'serializer-unknown';
}

/** Parse a JSON body that is one event or (task.multi) an array of events. */
export function decodeEventBody(text: string, localReceived: number): Decoded {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return fail('body-invalid-json');
  }
  const items = Array.isArray(body) ? body : [body];
  if (!Array.isArray(body) && (typeof body !== 'object' || body === null)) return fail('body-not-event');
  const decoded: Decoded = { events: [], dropped: [] };
  for (const item of items) {
    const event = parseEvent(item, localReceived);
    if (event.kind === 'invalid') decoded.dropped.push(event.reason);
    else decoded.events.push(event);
  }
  return decoded;
}

// One buffer reused for every base64 body (decoded bytes are at most 3/4 of
// the text): a Buffer per message was a tenth of the collector's time,
// allocating and then collecting it.
let scratch = Buffer.allocUnsafe(64 * 1024);

function fromBase64(text: string): string {
  const most = Math.ceil((text.length * 3) / 4);
  if (most > scratch.length) {
    // Past the usual size: a buffer of its own, so one huge body does not stay allocated.
    if (most > 1024 * 1024) return Buffer.from(text, 'base64').toString('utf8');
    scratch = Buffer.allocUnsafe(Math.max(most, scratch.length * 2));
  }
  const length = scratch.write(text, 0, 'base64');
  return scratch.toString('utf8', 0, length);
}

/**
 * A message as published on Redis: the kombu JSON envelope around a (base64)
 * body. `raw` is the message as the socket delivered it (a Buffer); one
 * larger than `maxBytes` is refused before anything copies or parses it.
 */
export function decodeRedisMessage(raw: Buffer | string, localReceived: number, maxBytes = DEFAULT_MAX_EVENT_BYTES): Decoded {
  const body = redisMessageBody(raw, maxBytes);
  return typeof body === 'string' ? decodeEventBody(body, localReceived) : fail(body.reason);
}

/**
 * The first half of decodeRedisMessage: the envelope opened, its body as
 * JSON text, or why not. The Redis reader thread runs this half, so the
 * collector thread parses only event bodies.
 */
export function redisMessageBody(raw: Buffer | string, maxBytes = DEFAULT_MAX_EVENT_BYTES): string | { reason: MessageErrorReason } {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw, 'utf8') : raw.length;
  if (size > maxBytes) return { reason: 'too-large' };
  let envelope: unknown;
  try {
    envelope = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch {
    return { reason: 'envelope-invalid' };
  }
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) return { reason: 'envelope-invalid' };
  const { body, properties, headers } = envelope as Record<string, unknown>;
  if (typeof body !== 'string') return { reason: 'envelope-invalid' };
  if (typeof headers === 'object' && headers !== null && 'compression' in headers) return { reason: 'compression-unsupported' };

  const serializer = serializerOf((envelope as Record<string, unknown>)['content-type']);
  if (serializer !== 'json') return { reason: serializer };

  const encoding =
    typeof properties === 'object' && properties !== null ? (properties as Record<string, unknown>).body_encoding : undefined;
  // Invalid UTF-8 in the body becomes U+FFFD here (one per bad sequence).
  if (encoding === 'base64') return fromBase64(body);
  if (encoding === undefined || encoding === null) return body;
  return { reason: 'body-encoding-unsupported' };
}

export interface AmqpMessageProperties {
  contentType?: string | undefined;
  contentEncoding?: string | undefined;
  headers?: Record<string, unknown> | undefined;
}

/** A message as delivered by RabbitMQ: the raw body, typed by its properties; one larger than `maxBytes` is never read. */
export function decodeAmqpMessage(
  content: Buffer,
  properties: AmqpMessageProperties,
  localReceived: number,
  maxBytes = DEFAULT_MAX_EVENT_BYTES,
): Decoded {
  if (content.length > maxBytes) return fail('too-large');
  if (properties.headers && 'compression' in properties.headers) return fail('compression-unsupported');
  const serializer = serializerOf(properties.contentType);
  if (serializer !== 'json') return fail(serializer);
  return decodeEventBody(content.toString('utf8'), localReceived);
}
