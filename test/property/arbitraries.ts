// Generators of hostile input for the property tests: broker messages built
// from arbitrary JSON (lone surrogates, numbers no field can hold, wrong
// types, missing fields, task.multi batches), and table rows holding any
// value their column types can hold.

import fc from 'fast-check';
import { redisEnvelope } from '../../worker-collector/kombu-wire';

/** Roughly now, so most generated events fall in the sane time window. */
export const NOW = 1_800_000_000;

/** Any UTF-16 code unit (lone surrogates included), with the troublemakers weighted up. */
export const unit = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('a', 'Z', '0', '@', '.', '-', ' ') },
  { weight: 2, arbitrary: fc.constantFrom('<', '>', '&', '"', "'", '/', '%', '\\', '\n', '\0', '\u2028', '\ufeff', 'ß', 'ŉ') },
  { weight: 2, arbitrary: fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\ufffd', '\ud83d\ude00') },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)) },
);

export const text = (maxLength = 24) => fc.string({ unit, maxLength });

/**
 * Text around a length limit, with a surrogate pair straddling it: the
 * places where a naive cut splits a pair.
 */
export const textAtLimit = fc
  .tuple(fc.constantFrom(31, 32, 63, 64, 127, 128, 190, 191, 254, 255, 1023, 1024, 65_535, 65_536), fc.integer({ min: -1, max: 1 }))
  .map(([limit, shift]) => `${'x'.repeat(Math.max(0, limit - 1 + shift))}\ud83d\ude00tail`);

/** A big text (up to a little over the 64 Ki field cap). */
export const bigText = fc
  .tuple(text(4), fc.integer({ min: 60_000, max: 70_000 }))
  .map(([seed, n]) => (seed || 'y').repeat(Math.ceil(n / Math.max(1, seed.length))).slice(0, n));

// JSON cannot spell an infinity, but a producer can write `1e999`, which
// JSON.parse reads as Infinity: this marker string is swapped for it after
// JSON.stringify.
const INFINITY_MARKER = '\u0000+inf';
const NEG_INFINITY_MARKER = '\u0000-inf';

/** Numbers no field should keep as they are, and some it should. */
export const extremeNumber = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    1,
    -1,
    0.5,
    2 ** 31,
    2 ** 31 - 1,
    2 ** 32,
    2 ** 53,
    2 ** 53 + 2,
    2 ** 63,
    -(2 ** 63),
    1e20,
    -1e20,
    1e308,
    -1e308,
    5e-324,
    8.64e12,
    8.64e12 + 1,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);
const infinity = fc.constantFrom(INFINITY_MARKER, NEG_INFINITY_MARKER);

const anyJson = fc.jsonValue({ maxDepth: 2, stringUnit: unit });

/** Any value a field could hold on the wire. */
export const anyField = fc.oneof(
  { weight: 3, arbitrary: text() },
  { weight: 3, arbitrary: extremeNumber },
  { weight: 1, arbitrary: infinity },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: anyJson },
  { weight: 1, arbitrary: textAtLimit },
);

/** Timestamps: mostly believable, some far outside Date's range or the sane window. */
const timestamp = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: NOW - 86_400, max: NOW, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 946_684_799, NOW + 86_401, 1e20, -1e20, 8.64e12 + 1, 'noon', null) },
  { weight: 1, arbitrary: infinity },
  { weight: 1, arbitrary: anyField },
);

const TYPES = [
  'task-sent',
  'task-received',
  'task-started',
  'task-succeeded',
  'task-failed',
  'task-retried',
  'task-revoked',
  'task-rejected',
  'task-ßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßßß',
  'worker-online',
  'worker-heartbeat',
  'worker-offline',
  'worker-custom',
  'app-thing',
];

/** A few ids and hostnames recur, so events of one task or worker meet in the fold. */
const someId = fc.oneof(fc.constantFrom('task-1', 'task-2', 'a\ud800b', 'a\ufffdb', '\ud83d\ude00'), text(), anyField);
const someHost = fc.oneof(fc.constantFrom('w1@host', 'a\ud800@x', 'w/2@h', 'w1@host '), text(), anyField);

function field<T>(usual: fc.Arbitrary<T>) {
  return fc.oneof({ weight: 3, arbitrary: usual }, { weight: 1, arbitrary: anyField });
}

/** An event-shaped object: every field optional, any field possibly of any type. */
export const eventObject = fc.record(
  {
    type: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...TYPES) }, { weight: 1, arbitrary: anyField }),
    uuid: someId,
    hostname: someHost,
    timestamp,
    clock: field(fc.nat()),
    utcoffset: field(fc.integer({ min: -12, max: 14 })),
    pid: field(fc.nat()),
    name: field(fc.constantFrom('tasks.add', 'a\ud800.b', 'constructor', '__proto__')),
    args: field(fc.oneof(text(), bigText)),
    kwargs: field(fc.oneof(text(), anyJson)),
    result: field(text()),
    exception: field(fc.oneof(text(), textAtLimit)),
    traceback: field(text()),
    runtime: field(fc.double({ min: 0, max: 100, noNaN: true })),
    retries: field(fc.nat({ max: 5 })),
    eta: field(fc.constantFrom('2026-11-24T10:00:00.123456+00:00', '+275760-09-13T00:00:00Z', 'soon')),
    expires: field(text()),
    queue: field(fc.constantFrom('celery', 'q\ud800')),
    exchange: anyField,
    routing_key: anyField,
    root_id: someId,
    parent_id: someId,
    freq: field(fc.double({ min: 0.5, max: 5, noNaN: true })),
    loadavg: field(fc.array(fc.oneof(fc.double({ min: 0, max: 8, noNaN: true }), anyField), { maxLength: 4 })),
    active: field(fc.nat({ max: 10 })),
    processed: field(fc.nat()),
    sw_ident: field(text()),
    sw_ver: field(text()),
    sw_sys: field(textAtLimit),
    terminated: anyField,
    signum: anyField,
    expired: anyField,
    requeue: anyField,
  },
  { requiredKeys: [] },
);

/** A message body: one event, a task.multi batch, or any JSON at all. */
const body = fc.oneof(
  { weight: 5, arbitrary: eventObject },
  { weight: 3, arbitrary: fc.array(eventObject, { minLength: 1, maxLength: 6 }) },
  { weight: 1, arbitrary: anyJson },
);

function json(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll(JSON.stringify(INFINITY_MARKER), '1e999')
    .replaceAll(JSON.stringify(NEG_INFINITY_MARKER), '-1e999');
}

export type Message = { broker: 'redis'; raw: Buffer } | { broker: 'amqp'; content: Buffer; contentType: string | undefined };

/** A broker message as it arrives: a kombu envelope on Redis, a raw body on AMQP; sometimes bytes that are not UTF-8. */
export const message: fc.Arbitrary<Message> = fc.oneof(
  { weight: 6, arbitrary: body.map((b): Message => ({ broker: 'redis', raw: Buffer.from(redisEnvelopeOf(json(b))) })) },
  { weight: 3, arbitrary: body.map((b): Message => ({ broker: 'amqp', content: Buffer.from(json(b)), contentType: 'application/json' })) },
  {
    weight: 1,
    // Bytes that are not UTF-8 inside a string of the body's JSON text (where they survive parsing).
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((junk): Message => {
      const [before, after] = json({ type: 'task-received', uuid: 'task-1', hostname: 'w1@host', timestamp: NOW, args: 'JUNK' }).split(
        'JUNK',
      ) as [string, string];
      return {
        broker: 'amqp',
        content: Buffer.concat([Buffer.from(before), Buffer.from(junk), Buffer.from(after)]),
        contentType: undefined,
      };
    }),
  },
);

function redisEnvelopeOf(bodyJson: string): string {
  // The envelope kombu writes, with the body as produced (base64 of its UTF-8).
  const envelope = JSON.parse(redisEnvelope({}, { hostname: 'w1@host' }, 'celeryev', 'task.multi', 1)) as Record<string, unknown>;
  return JSON.stringify({ ...envelope, body: Buffer.from(bodyJson, 'utf8').toString('base64') });
}
