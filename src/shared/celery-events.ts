// Celery events as Stalk reads them: a typed union checked field by field.
// Everything here is untrusted input from the broker, so each field is
// type-checked and bounded before it can reach a row.

import { cutText, wellFormed } from './text';

// Lengths are in UTF-16 code units (JavaScript's string length): a character
// outside the BMP counts two, and a cut never splits one (text.ts).
/** Longest id, name or hostname kept; longer ids are refused, longer names cut. */
export const MAX_KEY_LENGTH = 255;
/** Longest args/kwargs/result/exception/traceback text kept; longer text is cut. */
export const MAX_TEXT_LENGTH = 65_536;
/** Longest type, eta, expires, signum and worker software strings kept. */
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
  | 'event-missing-hostname'
  | 'bad-timestamp';

export interface InvalidEvent {
  kind: 'invalid';
  reason: InvalidEventReason;
}

// The sane window for an event's time. Before 2000-01-01 is a clock that
// never synced (a board without a real-time clock starts at 1970; Celery
// itself dates from 2009). More than a day ahead of the collector's clock is
// beyond any clock skew (timestamps are epoch seconds, so time zones do not
// shift them), and a claim from the future would hold a task's state (the
// state key orders by time) and its place in retention for that long.
/** Earliest believable event time: 2000-01-01T00:00:00Z, seconds. */
export const EARLIEST_EVENT_TIME = 946_684_800;
/** How far ahead of the collector's clock an event time may be, seconds. */
export const FUTURE_EVENT_WINDOW = 86_400;

export function isSaneEventTime(seconds: number, now: number): boolean {
  return seconds >= EARLIEST_EVENT_TIME && seconds <= now + FUTURE_EVENT_WINDOW;
}

// Bounds of the numeric fields: what the columns hold (INT is 32-bit signed;
// BIGINT and DOUBLE are read back as JavaScript numbers, exact up to 2^53)
// and what Celery can mean. A value outside its bounds is not clamped to
// them but becomes null (unknown), because a clamped count or interval would
// be a made-up fact; only the Lamport clock, which is only compared, is clamped.
const INT_MAX = 2_147_483_647;
/** Ten years: no task runs longer, and a negative runtime cannot happen. */
const MAX_RUNTIME_SECONDS = 315_360_000;
/** Heartbeat interval: Celery's default is 2 s; a day is far beyond any setting. */
const MAX_FREQ_SECONDS = 86_400;
/** Process ids are 32-bit unsigned on every OS Celery runs on. */
const MAX_PID = 4_294_967_295;
/** UTC offsets lie within -12..+14 hours; allow a day either way. */
const MAX_UTCOFFSET_HOURS = 24;
/** A load average beyond this is no machine's. */
const MAX_LOADAVG = 1_000_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function finite(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** A finite number within [min, max], else null. */
function within(value: unknown, min: number, max: number): number | null {
  const n = finite(value);
  return n !== null && n >= min && n <= max ? n : null;
}

/** A whole number (fractions dropped) within [0, max], else null. */
function count(value: unknown, max: number): number | null {
  const n = finite(value);
  if (n === null) return null;
  const whole = Math.trunc(n);
  return whole >= 0 && whole <= max ? whole : null;
}

/** Celery sends reprs as strings; other producers send JSON values. Keep both readable. */
function asText(value: unknown, max: number): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return cutText(value, max);
  try {
    // JSON.stringify escapes lone surrogates, so its output is well formed.
    return cutText(JSON.stringify(value) ?? String(value), max);
  } catch {
    // Nesting too deep for the stack: unreadable, not fatal.
    return null;
  }
}

function key(value: unknown): string | null {
  return typeof value === 'string' ? cutText(value, MAX_KEY_LENGTH) : null;
}

function short(value: unknown): string | null {
  return typeof value === 'string' ? cutText(value, MAX_SHORT_LENGTH) : null;
}

function flag(value: unknown): boolean | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'boolean' ? value : Boolean(value);
}

function signal(value: unknown): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? cutText(String(value), MAX_SHORT_LENGTH) : null;
  return typeof value === 'string' ? cutText(value, MAX_SHORT_LENGTH) : null;
}

/** Up to three load averages, each a finite number in [0, MAX_LOADAVG]; anything else is no reading. */
function loadAverages(value: unknown): number[] | null {
  if (!Array.isArray(value) || value.length === 0) return null;
  const first = value.slice(0, 3).map((n) => within(n, 0, MAX_LOADAVG));
  return first.every((n): n is number => n !== null) ? first : null;
}

/**
 * The event's time: its own when it is a number in the sane window, the
 * collector's receive time when it sent none (or no number), and null when it
 * sent a number outside the window.
 */
function eventTime(value: unknown, localReceived: number): number | null {
  if (typeof value !== 'number') return localReceived;
  return isSaneEventTime(value, localReceived) ? value : null;
}

/** The sender's Lamport clock. Only compared (ordering, duplicates), so clamped to [0, 2^53) rather than refused; 0 when there is none. */
function lamportClock(value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value)) return 0;
  return Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.trunc(value)));
}

function readBase(body: Record<string, unknown>, type: string, timestamp: number, localReceived: number): BaseEvent {
  return {
    type,
    hostname: key(body.hostname) ?? '',
    timestamp,
    clock: lamportClock(body.clock),
    utcoffset: within(body.utcoffset, -MAX_UTCOFFSET_HOURS, MAX_UTCOFFSET_HOURS),
    pid: count(body.pid, MAX_PID),
    localReceived,
  };
}

/**
 * Turn one decoded event object into a typed event, or say why it cannot be
 * used. This is where broker input is sanitized, once: every string comes out
 * well formed and within its length, every number finite and within its
 * field's bounds (see above), so no later step meets a value it cannot store,
 * encode or render.
 */
export function parseEvent(body: unknown, localReceived: number): CeleryEvent | InvalidEvent {
  if (!isRecord(body)) return { kind: 'invalid', reason: 'event-not-object' };
  const rawType = body.type;
  if (typeof rawType !== 'string' || rawType.length === 0 || rawType.length > MAX_SHORT_LENGTH) {
    return { kind: 'invalid', reason: 'event-missing-type' };
  }
  const type = wellFormed(rawType);
  const sentAt = eventTime(body.timestamp, localReceived);

  if (type.startsWith('task-')) {
    const rawUuid = body.uuid;
    if (typeof rawUuid !== 'string' || rawUuid.length === 0) return { kind: 'invalid', reason: 'event-missing-uuid' };
    if (rawUuid.length > MAX_KEY_LENGTH) return { kind: 'invalid', reason: 'event-uuid-too-long' };
    // A task event's time is stored as the task's times and orders its
    // states: one outside the window cannot be trusted, nor replaced.
    if (sentAt === null) return { kind: 'invalid', reason: 'bad-timestamp' };
    const base = readBase(body, type, sentAt, localReceived);
    return {
      kind: 'task',
      type: base.type,
      hostname: base.hostname,
      timestamp: base.timestamp,
      clock: base.clock,
      utcoffset: base.utcoffset,
      pid: base.pid,
      localReceived,
      uuid: wellFormed(rawUuid),
      name: key(body.name),
      args: asText(body.args, MAX_TEXT_LENGTH),
      kwargs: asText(body.kwargs, MAX_TEXT_LENGTH),
      root_id: key(body.root_id),
      parent_id: key(body.parent_id),
      retries: count(body.retries, INT_MAX),
      // ISO 8601 text as Celery sends it; read (or found unreadable) where used.
      eta: short(body.eta),
      expires: short(body.expires),
      queue: key(body.queue),
      exchange: key(body.exchange),
      routing_key: key(body.routing_key),
      result: asText(body.result, MAX_TEXT_LENGTH),
      runtime: within(body.runtime, 0, MAX_RUNTIME_SECONDS),
      exception: asText(body.exception, MAX_TEXT_LENGTH),
      traceback: asText(body.traceback, MAX_TEXT_LENGTH),
      terminated: flag(body.terminated),
      signum: signal(body.signum),
      expired: flag(body.expired),
      requeue: flag(body.requeue),
    };
  }

  // Worker and other events' own times are not stored (heartbeats are kept
  // in the collector's clock, as Celery does), so a worker whose clock is off
  // stays visible: its events take the receive time instead.
  const base = readBase(body, type, sentAt ?? localReceived, localReceived);
  if (type.startsWith('worker-')) {
    if (base.hostname === '') return { kind: 'invalid', reason: 'event-missing-hostname' };
    return {
      ...base,
      kind: 'worker',
      freq: within(body.freq, Number.MIN_VALUE, MAX_FREQ_SECONDS),
      sw_ident: short(body.sw_ident),
      sw_ver: short(body.sw_ver),
      sw_sys: short(body.sw_sys),
      loadavg: loadAverages(body.loadavg),
      active: count(body.active, INT_MAX),
      processed: count(body.processed, Number.MAX_SAFE_INTEGER),
    };
  }

  return { ...base, kind: 'other' };
}
