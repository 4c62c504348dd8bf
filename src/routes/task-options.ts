// A task to send (the JSON body of apply/async-apply/send-task, and the
// tasks page's form): its args and kwargs, and its options, where Flower
// takes a number or a string holding one, and dates as text. Read here into
// checked values, with 400 and a message naming the option otherwise.

import type { Context } from 'hono';
import { badRequest } from '../errors';
import { jsonBody } from './body';
import { checkText, inRange, LIMITS, type Params, parseDecimal, parseJsonField, type Range } from './params';

export interface TaskArguments {
  args: unknown[];
  kwargs: Record<string, unknown>;
}

/** When and where a task is published (ISO times). */
export interface PublishOptions {
  queue?: string;
  eta?: string;
  expires?: string;
}

/** A number, or a string holding a decimal number, in range. */
export function optionNumber(name: string, value: unknown, range: Range): number {
  if (typeof value === 'string') return parseDecimal(name, value, range);
  if (typeof value !== 'number') throw badRequest(`Invalid option '${name}': expected a number`);
  return inRange(name, String(value), 'float', value, range);
}

/** Non-empty text of at most `max` characters. */
export function optionText(name: string, value: unknown, max: number = LIMITS.name): string {
  if (typeof value !== 'string' || value.trim() === '') throw badRequest(`Invalid option '${name}': expected text`);
  // A queue name: any well-formed text, as names are.
  return checkText(name, value, max, 'allowed');
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$/i;
const NUMERIC = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)\s*$/;

/** Milliseconds since the epoch of a strict calendar date (no 31st of February), or NaN. */
function dateTime(text: string): number {
  const m = DATE.exec(text);
  if (!m) return NaN;
  const [y, mo, d, h = 0, mi = 0, s = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((part) =>
    part === undefined ? undefined : Number(part),
  );
  const fraction = m[7] ? Number(m[7]) * 1000 : 0;
  const zone =
    m[8] && m[8].toUpperCase() !== 'Z' ? (m[8].startsWith('-') ? -1 : 1) * (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6))) : 0;
  const local = Date.UTC(y!, mo! - 1, d!, h, mi, s);
  const back = new Date(local);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo! - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return NaN;
  return local + fraction - zone * 60_000;
}

/**
 * A time as an ISO string: seconds from `now` (a number or numeric text), or
 * a date (Flower's `%Y-%m-%d %H:%M:%S.%f`, taken as UTC, or ISO 8601) from
 * 1970 to 9999, which every Celery version reads back.
 */
export function optionTime(name: string, value: unknown, now: number): string {
  if (typeof value === 'number' || (typeof value === 'string' && NUMERIC.test(value))) {
    return new Date((now + optionNumber(name, value, { min: 0, max: LIMITS.seconds })) * 1000).toISOString();
  }
  const time = typeof value === 'string' ? dateTime(value.trim()) : NaN;
  const year = Number.isFinite(time) ? new Date(time).getUTCFullYear() : 0;
  if (year < 1970 || year > 9999) {
    throw badRequest(
      `Invalid option '${name}': expected seconds (0 to ${LIMITS.seconds}) or a date (YYYY-MM-DD HH:MM:SS[.ffffff], or ISO 8601)`,
    );
  }
  return new Date(time).toISOString();
}

function taskArguments(args: unknown, kwargs: unknown, json: boolean): TaskArguments {
  if (!Array.isArray(args)) throw badRequest(json ? 'args must be a JSON array' : 'args must be an array');
  if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs))
    throw badRequest(json ? 'kwargs must be a JSON object' : 'kwargs must be an object');
  return { args, kwargs: kwargs as Record<string, unknown> };
}

/** The body of apply/async-apply/send-task: {args, kwargs, ...options} as JSON; null is the same as absent (Python's None). */
export async function taskBody(c: Context): Promise<TaskArguments & { options: Record<string, unknown> }> {
  const body = (await jsonBody(c)) ?? {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('invalid options');
  const given = Object.fromEntries(Object.entries(body).filter(([, value]) => value !== null));
  const { args = [], kwargs = {}, ...options } = given;
  return { ...taskArguments(args, kwargs, false), options };
}

/** Flower's option normalisation for apply/async-apply (and, unlike Flower, send-task too): queue, eta, countdown, expires. */
export function publishOptions(options: Record<string, unknown>, now: number): PublishOptions {
  const out: PublishOptions = {};
  if (options.queue !== undefined) out.queue = optionText('queue', options.queue);
  if (options.countdown !== undefined) {
    out.eta = new Date((now + optionNumber('countdown', options.countdown, { min: 0, max: LIMITS.seconds })) * 1000).toISOString();
  }
  if (options.eta !== undefined) out.eta = optionTime('eta', options.eta, now);
  if (options.expires !== undefined) out.expires = optionTime('expires', options.expires, now);
  return out;
}

/** apply's `timeout`: seconds to wait for the result, LIMITS.wait when absent. */
export function waitOption(options: Record<string, unknown>): number {
  return options.timeout === undefined ? LIMITS.wait : optionNumber('timeout', options.timeout, { min: 0, max: LIMITS.wait });
}

/** The tasks page's send form: the task name, args and kwargs as JSON fields, a queue and a countdown. */
export function sendForm(p: Params, now: number): { name: string } & TaskArguments & PublishOptions {
  const { args, kwargs } = taskArguments(parseJsonField(p, 'args') ?? [], parseJsonField(p, 'kwargs') ?? {}, true);
  const queue = p.text('queue', { controls: 'allowed' });
  const countdown = p.float('countdown', { min: 0, max: LIMITS.seconds });
  const options = publishOptions({ ...(queue ? { queue } : {}), ...(countdown ? { countdown } : {}) }, now);
  return { name: p.text('name', { required: true, controls: 'allowed' }), args, kwargs, ...options };
}
