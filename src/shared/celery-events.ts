// Celery events as Stalk reads them: a typed union checked field by field.
// Everything here is untrusted input from the broker, so each field is
// type-checked and bounded before it can reach a row.

/** Longest id, name or hostname kept; longer ids are refused, longer names cut. */
export const MAX_KEY_LENGTH = 255;
/** Longest args/kwargs/result/exception/traceback text kept (characters). */
export const MAX_TEXT_LENGTH = 65_536;
const MAX_SHORT_LENGTH = 64;

export interface BaseEvent {
  type: string;
  hostname: string;
  /** The sender's clock, seconds since the epoch, as sent (no utcoffset adjustment). */
  timestamp: number;
  /** Lamport clock of the sender. */
  clock: number;
  utcoffset: number | null;
  pid: number | null;
  /** The collector's clock when the message arrived, seconds. */
  localReceived: number;
}

/** Every task event carries every field, null where the event had none (one object shape, fast to fold). */
export interface TaskEventFields {
  name: string | null;
  args: string | null;
  kwargs: string | null;
  root_id: string | null;
  parent_id: string | null;
  retries: number | null;
  eta: string | null;
  expires: string | null;
  queue: string | null;
  exchange: string | null;
  routing_key: string | null;
  result: string | null;
  runtime: number | null;
  exception: string | null;
  traceback: string | null;
  terminated: boolean | null;
  signum: string | null;
  expired: boolean | null;
  requeue: boolean | null;
}

export interface TaskEvent extends BaseEvent, TaskEventFields {
  kind: 'task';
  uuid: string;
}

export interface WorkerEvent extends BaseEvent {
  kind: 'worker';
  freq: number | null;
  sw_ident: string | null;
  sw_ver: string | null;
  sw_sys: string | null;
  loadavg: number[] | null;
  active: number | null;
  processed: number | null;
}

/** An event of another family (e.g. an application's own); counted, not folded. */
export interface OtherEvent extends BaseEvent {
  kind: 'other';
}

export type CeleryEvent = TaskEvent | WorkerEvent | OtherEvent;

export type InvalidEventReason =
  | 'event-not-object'
  | 'event-missing-type'
  | 'event-missing-uuid'
  | 'event-uuid-too-long'
  | 'event-missing-hostname';

export interface InvalidEvent {
  kind: 'invalid';
  reason: InvalidEventReason;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function finite(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function cut(text: string, max: number): string {
  return text.length > max ? text.slice(0, max) : text;
}

/** Celery sends reprs as strings; other producers send JSON values. Keep both readable. */
function asText(value: unknown, max: number): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return cut(value, max);
  try {
    return cut(JSON.stringify(value) ?? String(value), max);
  } catch {
    return null;
  }
}

function key(value: unknown): string | null {
  return typeof value === 'string' ? cut(value, MAX_KEY_LENGTH) : null;
}

function short(value: unknown): string | null {
  return typeof value === 'string' ? cut(value, MAX_SHORT_LENGTH) : null;
}

function int(value: unknown): number | null {
  const n = finite(value);
  return n === null ? null : Math.trunc(n);
}

function flag(value: unknown): boolean | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'boolean' ? value : Boolean(value);
}

function signal(value: unknown): string | null {
  return typeof value === 'number' || typeof value === 'string' ? cut(String(value), MAX_SHORT_LENGTH) : null;
}

function readBase(body: Record<string, unknown>, type: string, localReceived: number): BaseEvent {
  const hostname = typeof body.hostname === 'string' ? cut(body.hostname, MAX_KEY_LENGTH) : '';
  return {
    type,
    hostname,
    timestamp: finite(body.timestamp) ?? localReceived,
    clock: Math.trunc(finite(body.clock) ?? 0),
    utcoffset: finite(body.utcoffset),
    pid: finite(body.pid),
    localReceived,
  };
}

/** Turn one decoded event object into a typed event, or say why it cannot be used. */
export function parseEvent(body: unknown, localReceived: number): CeleryEvent | InvalidEvent {
  if (!isRecord(body)) return { kind: 'invalid', reason: 'event-not-object' };
  const type = body.type;
  if (typeof type !== 'string' || type.length === 0 || type.length > MAX_SHORT_LENGTH) {
    return { kind: 'invalid', reason: 'event-missing-type' };
  }
  const base = readBase(body, type, localReceived);

  if (type.startsWith('task-')) {
    const uuid = body.uuid;
    if (typeof uuid !== 'string' || uuid.length === 0) return { kind: 'invalid', reason: 'event-missing-uuid' };
    if (uuid.length > MAX_KEY_LENGTH) return { kind: 'invalid', reason: 'event-uuid-too-long' };
    return {
      kind: 'task',
      type: base.type,
      hostname: base.hostname,
      timestamp: base.timestamp,
      clock: base.clock,
      utcoffset: base.utcoffset,
      pid: base.pid,
      localReceived,
      uuid,
      name: key(body.name),
      args: asText(body.args, MAX_TEXT_LENGTH),
      kwargs: asText(body.kwargs, MAX_TEXT_LENGTH),
      root_id: key(body.root_id),
      parent_id: key(body.parent_id),
      retries: int(body.retries),
      eta: short(body.eta),
      expires: short(body.expires),
      queue: key(body.queue),
      exchange: key(body.exchange),
      routing_key: key(body.routing_key),
      result: asText(body.result, MAX_TEXT_LENGTH),
      runtime: finite(body.runtime),
      exception: asText(body.exception, MAX_TEXT_LENGTH),
      traceback: asText(body.traceback, MAX_TEXT_LENGTH),
      terminated: flag(body.terminated),
      signum: signal(body.signum),
      expired: flag(body.expired),
      requeue: flag(body.requeue),
    };
  }

  if (type.startsWith('worker-')) {
    if (base.hostname === '') return { kind: 'invalid', reason: 'event-missing-hostname' };
    const loadavg = Array.isArray(body.loadavg)
      ? body.loadavg.slice(0, 3).map((n) => finite(n) ?? 0)
      : null;
    return {
      ...base,
      kind: 'worker',
      freq: finite(body.freq),
      sw_ident: short(body.sw_ident),
      sw_ver: short(body.sw_ver),
      sw_sys: short(body.sw_sys),
      loadavg,
      active: finite(body.active),
      processed: finite(body.processed),
    };
  }

  return { ...base, kind: 'other' };
}
