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

export interface TaskEventFields {
  name?: string | null;
  args?: string | null;
  kwargs?: string | null;
  root_id?: string | null;
  parent_id?: string | null;
  retries?: number | null;
  eta?: string | null;
  expires?: string | null;
  queue?: string | null;
  exchange?: string | null;
  routing_key?: string | null;
  result?: string | null;
  runtime?: number | null;
  exception?: string | null;
  traceback?: string | null;
  terminated?: boolean | null;
  signum?: string | null;
  expired?: boolean | null;
  requeue?: boolean | null;
}

export interface TaskEvent extends BaseEvent, TaskEventFields {
  kind: 'task';
  uuid: string;
}

export interface WorkerEvent extends BaseEvent {
  kind: 'worker';
  freq?: number | null;
  sw_ident?: string | null;
  sw_ver?: string | null;
  sw_sys?: string | null;
  loadavg?: number[] | null;
  active?: number | null;
  processed?: number | null;
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

type Kind = 'text' | 'key' | 'short' | 'int' | 'number' | 'bool' | 'signal';

const TASK_FIELDS: Record<keyof TaskEventFields, Kind> = {
  name: 'key',
  args: 'text',
  kwargs: 'text',
  root_id: 'key',
  parent_id: 'key',
  retries: 'int',
  eta: 'short',
  expires: 'short',
  queue: 'key',
  exchange: 'key',
  routing_key: 'key',
  result: 'text',
  runtime: 'number',
  exception: 'text',
  traceback: 'text',
  terminated: 'bool',
  signum: 'signal',
  expired: 'bool',
  requeue: 'bool',
};

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

function readField(value: unknown, kind: Kind): string | number | boolean | null {
  switch (kind) {
    case 'text':
      return asText(value, MAX_TEXT_LENGTH);
    case 'key':
      return typeof value === 'string' ? cut(value, MAX_KEY_LENGTH) : null;
    case 'short':
      return typeof value === 'string' ? cut(value, MAX_SHORT_LENGTH) : null;
    case 'int': {
      const n = finite(value);
      return n === null ? null : Math.trunc(n);
    }
    case 'number':
      return finite(value);
    case 'bool':
      return typeof value === 'boolean' ? value : value === null || value === undefined ? null : Boolean(value);
    case 'signal':
      return typeof value === 'number' || typeof value === 'string' ? cut(String(value), MAX_SHORT_LENGTH) : null;
  }
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
    const event: TaskEvent = { ...base, kind: 'task', uuid };
    const target = event as unknown as Record<string, unknown>;
    for (const [field, kind] of Object.entries(TASK_FIELDS)) {
      if (field in body) target[field] = readField(body[field], kind);
    }
    return event;
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
      sw_ident: typeof body.sw_ident === 'string' ? cut(body.sw_ident, MAX_SHORT_LENGTH) : null,
      sw_ver: typeof body.sw_ver === 'string' ? cut(body.sw_ver, MAX_SHORT_LENGTH) : null,
      sw_sys: typeof body.sw_sys === 'string' ? cut(body.sw_sys, MAX_SHORT_LENGTH) : null,
      loadavg,
      active: finite(body.active),
      processed: finite(body.processed),
    };
  }

  return { ...base, kind: 'other' };
}
