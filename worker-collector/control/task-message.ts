// Celery task messages (protocol 2), built once and carried by either broker:
// the Redis transport wraps them in kombu's JSON envelope and LPUSHes it, the
// AMQP transport publishes the raw JSON body with the same headers and
// properties. Formats: docs/celery-protocol.md (Task messages).
//
// What Celery 5.2's `apply_async` produces, field for field (celery/app/amqp.py
// as_task_v2, kombu's Producer.publish and its Redis channel), except that
// args arrive from JSON as a list, so argsrepr reads `[2, 3]` (as with
// Flower's apply, or `apply_async([2, 3])`) rather than `(2, 3)`.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { KOMBU_SEP } from '../kombu-wire';
import { pythonRepr, REPR_MAXSIZE } from './python-repr';
import type { OutgoingTask } from './types';

export const TASK_CONTENT_TYPE = 'application/json';
export const TASK_CONTENT_ENCODING = 'utf-8';
/** kombu's Redis transport: priorities 0-9 are folded onto these sub-queues (0 = the queue itself). */
export const REDIS_PRIORITY_STEPS = [0, 3, 6, 9] as const;

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
  /** The serialized body when the task gave its args as JSON text (OutgoingTask.exactJson). */
  bodyJson?: string;
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
  if (typeof task.kwargs !== 'object' || task.kwargs === null || Array.isArray(task.kwargs))
    throw new Error('task kwargs must be an object');
  const id = task.id ?? randomUUID();
  const queue = task.queue ?? 'celery';
  if (queue === '') throw new Error('queue name must not be empty');
  const eta = task.eta ? celeryIsoTime(task.eta, 'eta') : null;
  const expires = task.expires ? celeryIsoTime(task.expires, 'expires') : null;
  const priority = Math.max(0, Math.min(255, Math.trunc(task.priority ?? 0) || 0));
  const embed: TaskEmbed = { callbacks: null, errbacks: null, chain: null, chord: null };

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
    body: [task.args, task.kwargs, embed],
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
    ...(task.exactJson ? { bodyJson: `[${task.exactJson.args},${task.exactJson.kwargs},${JSON.stringify(embed)}]` } : {}),
  };
}

/** The serialized body (what AMQP carries raw and Redis base64-encodes). */
export function taskBodyBytes(message: TaskMessage): Buffer {
  return Buffer.from(message.bodyJson ?? JSON.stringify(message.body), 'utf8');
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
