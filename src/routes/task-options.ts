// The options of a task to send (the JSON body of apply/async-apply/
// send-task, and the tasks page's form): Flower takes a number or a string
// holding one, and dates as text. Read here into checked values, with 400
// and a message naming the option otherwise.

import { badRequest } from '../errors';
import { checkText, inRange, LIMITS, parseDecimal, type Range } from './params';

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
  const [y, mo, d, h = 0, mi = 0, s = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((part) => (part === undefined ? undefined : Number(part)));
  const fraction = m[7] ? Number(m[7]) * 1000 : 0;
  const zone = m[8] && m[8].toUpperCase() !== 'Z' ? (m[8].startsWith('-') ? -1 : 1) * (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6))) : 0;
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
    throw badRequest(`Invalid option '${name}': expected seconds (0 to ${LIMITS.seconds}) or a date (YYYY-MM-DD HH:MM:SS[.ffffff], or ISO 8601)`);
  }
  return new Date(time).toISOString();
}
