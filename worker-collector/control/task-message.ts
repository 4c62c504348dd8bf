// Celery task messages (protocol 2), built once and carried by either broker:
// the Redis transport wraps them in kombu's JSON envelope and LPUSHes it, the
// AMQP transport publishes the raw JSON body with the same headers and
// properties. Formats: ../../../shared/celery-protocol.md (Task messages).
//
// What Celery 5.2's `apply_async` produces, field for field (celery/app/amqp.py
// as_task_v2, kombu's Producer.publish and its Redis channel), except that
// args arrive from JSON as a list, so argsrepr reads `[2, 3]` (as with
// Flower's apply, or `apply_async([2, 3])`) rather than `(2, 3)`.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { OutgoingTask } from './types';

export const TASK_CONTENT_TYPE = 'application/json';
export const TASK_CONTENT_ENCODING = 'utf-8';
/** Celery's argsrepr_maxsize and kwargsrepr_maxsize. */
export const REPR_MAXSIZE = 1024;
/** kombu's Redis transport: priorities 0-9 are folded onto these sub-queues (0 = the queue itself). */
export const REDIS_PRIORITY_STEPS = [0, 3, 6, 9] as const;
/** kombu's separator in Redis queue and binding names. */
export const KOMBU_SEP = '\x06\x16';

export interface TaskHeaders {
  lang: 'py';
  task: string;
  id: string;
  shadow: string | null;
  eta: string | null;
  expires: string | null;
  group: string | null;
  group_index: number | null;
  retries: number;
  timelimit: [number | null, number | null];
  root_id: string;
  parent_id: string | null;
  argsrepr: string;
  kwargsrepr: string;
  origin: string;
  ignore_result: boolean;
}

export interface TaskEmbed {
  callbacks: null;
  errbacks: null;
  chain: null;
  chord: null;
}

/** The message properties both brokers carry (AMQP: basic properties; Redis: envelope properties). */
export interface TaskProperties {
  correlation_id: string;
  reply_to: string;
  delivery_mode: 2;
  priority: number;
  /** Set when the task expires: the TTL in ms as a string (kombu's `expiration`); RabbitMQ drops the message after it. */
  expiration?: string;
}

export interface TaskMessage {
  id: string;
  queue: string;
  body: [unknown[], Record<string, unknown>, TaskEmbed];
  headers: TaskHeaders;
  properties: TaskProperties;
  contentType: typeof TASK_CONTENT_TYPE;
  contentEncoding: typeof TASK_CONTENT_ENCODING;
}

export interface TaskMessageOptions {
  /** headers.origin; Celery's is `gen<pid>@<host>`. */
  origin?: string;
  /** properties.reply_to: the producer's oid (Celery: app.thread_oid). */
  replyTo?: string;
  /** Seconds since the epoch (for `expiration`). */
  now?: () => number;
}

const DEFAULT_ORIGIN = `stalk${process.pid}@${hostname()}`;

/**
 * An ISO 8601 time as Celery writes it (`datetime.isoformat()` of an aware UTC
 * datetime: `2030-01-01T00:00:00.000000+00:00`). A time without an offset is
 * read as UTC (Celery's default enable_utc). Throws on anything else.
 */
export function celeryIsoTime(value: string, field: string): string {
  const text = value.trim();
  const hasZone = /(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$/.test(text);
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(hasZone || dateOnly ? text : `${text}Z`) : NaN;
  if (!Number.isFinite(ms)) throw new Error(`${field} '${value}' is not an ISO 8601 time`);
  const iso = new Date(ms).toISOString(); // 2030-01-01T00:00:00.000Z
  return `${iso.slice(0, 23)}000+00:00`;
}

/** kombu's Redis priority step for a message priority (clamped to 0-9, then the highest step not above it). */
export function redisPriorityStep(priority: number): number {
  const clamped = Math.max(0, Math.min(9, Math.trunc(Number.isFinite(priority) ? priority : 0)));
  let step = 0;
  for (const s of REDIS_PRIORITY_STEPS) if (s <= clamped) step = s;
  return step;
}

/** The Redis list a message of this priority goes to: `<queue>` or `<queue>\x06\x16<step>`. */
export function redisQueueKey(queue: string, priority = 0): string {
  const step = redisPriorityStep(priority);
  return step === 0 ? queue : `${queue}${KOMBU_SEP}${step}`;
}

/** Every Redis list that holds a queue's messages (kombu BRPOPs and LLENs all of them). */
export function redisQueueKeys(queue: string): string[] {
  return REDIS_PRIORITY_STEPS.map((step) => (step === 0 ? queue : `${queue}${KOMBU_SEP}${step}`));
}

/** Build the protocol-2 message for a task. Throws on a bad name, eta or expires. */
export function buildTaskMessage(task: OutgoingTask, options: TaskMessageOptions = {}): TaskMessage {
  if (typeof task.name !== 'string' || task.name === '') throw new Error('task name is required');
  if (!Array.isArray(task.args)) throw new Error('task args must be an array');
  if (typeof task.kwargs !== 'object' || task.kwargs === null || Array.isArray(task.kwargs)) throw new Error('task kwargs must be an object');
  const id = task.id ?? randomUUID();
  const queue = task.queue ?? 'celery';
  if (queue === '') throw new Error('queue name must not be empty');
  const eta = task.eta ? celeryIsoTime(task.eta, 'eta') : null;
  const expires = task.expires ? celeryIsoTime(task.expires, 'expires') : null;
  const priority = Math.max(0, Math.min(255, Math.trunc(task.priority ?? 0) || 0));

  const properties: TaskProperties = {
    correlation_id: id,
    reply_to: options.replyTo ?? '',
    delivery_mode: 2,
    priority,
  };
  if (expires) {
    // Celery: seconds until expiry (not below 0), kombu: str(int(s * 1000)).
    const now = options.now ?? (() => Date.now() / 1000);
    const seconds = Math.max(0, Date.parse(expires) / 1000 - now());
    properties.expiration = String(Math.trunc(seconds * 1000));
  }

  return {
    id,
    queue,
    body: [task.args, task.kwargs, { callbacks: null, errbacks: null, chain: null, chord: null }],
    headers: {
      lang: 'py',
      task: task.name,
      id,
      shadow: null,
      eta,
      expires,
      group: null,
      group_index: null,
      retries: 0,
      timelimit: [null, null],
      root_id: id,
      parent_id: null,
      argsrepr: pythonRepr(task.args, REPR_MAXSIZE),
      kwargsrepr: pythonRepr(task.kwargs, REPR_MAXSIZE),
      origin: options.origin ?? DEFAULT_ORIGIN,
      ignore_result: false,
    },
    properties,
    contentType: TASK_CONTENT_TYPE,
    contentEncoding: TASK_CONTENT_ENCODING,
  };
}

/** The serialized body (what AMQP carries raw and Redis base64-encodes). */
export function taskBodyBytes(message: TaskMessage): Buffer {
  return Buffer.from(JSON.stringify(message.body), 'utf8');
}

/** The kombu JSON envelope Celery LPUSHes onto a Redis queue for this message. */
export function redisTaskEnvelope(message: TaskMessage, deliveryTag: string = randomUUID()): string {
  const { expiration, ...rest } = message.properties;
  return JSON.stringify({
    body: taskBodyBytes(message).toString('base64'),
    'content-encoding': message.contentEncoding,
    'content-type': message.contentType,
    headers: message.headers,
    properties: {
      correlation_id: rest.correlation_id,
      reply_to: rest.reply_to,
      delivery_mode: rest.delivery_mode,
      ...(expiration !== undefined ? { expiration } : {}),
      delivery_info: { exchange: '', routing_key: message.queue },
      priority: rest.priority,
      body_encoding: 'base64',
      delivery_tag: deliveryTag,
    },
  });
}

// ---------------------------------------------------------------------------
// argsrepr / kwargsrepr: what celery.utils.saferepr(value, 1024) gives for the
// Python value a JSON document decodes to. saferepr is not repr(): strings are
// wrapped in single quotes with only `'` escaped (newlines stay as they are),
// containers nested 3 deep become `[...]` / `{...}`, and past `maxlen`
// characters the output ends with `, ...` and the brackets still open.

type Token =
  | { kind: 'literal'; text: string; closers: string[] }
  | { kind: 'text'; text: string; closers: string[] }
  | { kind: 'quoted'; text: string; closers: string[] }
  | { kind: 'key'; text: string; closers: string[] };

const MAX_LEVELS = 3;

/** Python's len(): code points, not UTF-16 units. */
function pyLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** The first `count` code points of `text`. */
function pySlice(text: string, count: number): string {
  let n = 0;
  let i = 0;
  while (i < text.length && n < count) {
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && text.charCodeAt(i + 1) >= 0xdc00 && text.charCodeAt(i + 1) <= 0xdfff ? 2 : 1;
    n++;
  }
  return text.slice(0, i);
}

/** celery.utils.text.truncate: at `maxlen` or longer, cut to maxlen, back to the last space, add '...'. */
function truncate(text: string, maxlen: number | null): string {
  if (maxlen && pyLength(text) >= maxlen) {
    const head = pySlice(text, maxlen);
    const space = head.lastIndexOf(' ');
    return `${space === -1 ? head : head.slice(0, space)}...`;
  }
  return text;
}

/** Python's repr() of a float (shortest round-trip digits, exponent outside 1e-4 <= |x| < 1e16). */
export function pythonFloatRepr(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const [mantissa, exponentText] = value.toExponential().split('e') as [string, string];
  const exponent = Number(exponentText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = negative ? '-' : '';
  if (exponent < -4 || exponent >= 16) {
    const frac = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const exp = Math.abs(exponent);
    return `${sign}${frac}e${exponent < 0 ? '-' : '+'}${exp < 10 ? `0${exp}` : exp}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const intPart = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
  const fracPart = digits.slice(exponent + 1);
  return `${sign}${intPart}.${fracPart === '' ? '0' : fracPart}`;
}

/** A JSON number as Python's json module decodes and prints it: integers stay integers. */
function pythonNumberRepr(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e21) return BigInt(value).toString();
  return pythonFloatRepr(value);
}

function* reprTokens(value: unknown, open: string[]): Generator<Token> {
  const closers = () => [...open].reverse();
  if (value === null || value === undefined) {
    yield { kind: 'text', text: 'None', closers: closers() };
  } else if (typeof value === 'boolean') {
    yield { kind: 'text', text: value ? 'True' : 'False', closers: closers() };
  } else if (typeof value === 'number') {
    yield { kind: 'text', text: pythonNumberRepr(value), closers: closers() };
  } else if (typeof value === 'bigint') {
    yield { kind: 'text', text: value.toString(), closers: closers() };
  } else if (typeof value === 'string') {
    yield { kind: 'quoted', text: value, closers: closers() };
  } else if (Array.isArray(value) || typeof value === 'object') {
    const isList = Array.isArray(value);
    const [start, end] = isList ? ['[', ']'] : ['{', '}'];
    if (open.length >= MAX_LEVELS) {
      yield { kind: 'text', text: `${start}...${end}`, closers: closers() };
      return;
    }
    const inner = [...open, end];
    const innerClosers = () => [...inner].reverse();
    yield { kind: 'literal', text: start, closers: innerClosers() };
    const entries: [string | null, unknown][] = isList
      ? (value as unknown[]).map((v) => [null, v])
      : Object.entries(value as Record<string, unknown>);
    for (let i = 0; i < entries.length; i++) {
      const [key, item] = entries[i]!;
      if (key !== null) {
        yield { kind: 'key', text: key, closers: innerClosers() };
        yield { kind: 'literal', text: ': ', closers: innerClosers() };
      }
      yield* reprTokens(item, inner);
      if (i < entries.length - 1) yield { kind: 'literal', text: ', ', closers: innerClosers() };
    }
    yield { kind: 'literal', text: end, closers: closers() };
  } else {
    // Functions, symbols: not JSON; Python would print some repr.
    yield { kind: 'quoted', text: String(value), closers: closers() };
  }
}

function quote(text: string, maxlen: number | null): string {
  return `'${truncate(text, maxlen).replaceAll("'", "\\'")}'`;
}

/**
 * celery.utils.saferepr.saferepr(value, maxlen) for a JSON value: dicts and
 * lists, strings in single quotes, True/False/None, numbers as Python prints them.
 */
export function pythonRepr(value: unknown, maxlen: number | null = REPR_MAXSIZE): string {
  let remaining = maxlen;
  let out = '';
  for (const token of reprTokens(value, [])) {
    if (remaining !== null && remaining <= 0) {
      // Cut here: what was open gets closed, the token at the cut is lost (as in Celery).
      out += ', ...';
      out += token.closers.join('');
      return out;
    }
    let text: string;
    if (token.kind === 'literal') text = token.text;
    else if (token.kind === 'quoted') text = quote(token.text, remaining);
    else if (token.kind === 'key') text = quote(token.text, remaining);
    else text = truncate(token.text, remaining);
    out += text;
    if (remaining !== null) remaining -= pyLength(text);
  }
  return out;
}
