// Every request parameter is read here into a typed value: query strings,
// form fields, path parameters and the options of a JSON body. A value the
// route does not take is refused with 400 and a message naming the parameter
// (Flower's wording where Flower has one), so nothing unchecked reaches SQL,
// the command channel or a template, and nothing malformed becomes a 500.
// Unknown parameters are ignored, as Flower does (DataTables and caches add
// their own).
//
// Longer than most files on purpose: this is the one place a parameter is
// read, so the rules the README's API section lists live together.

import type { Context } from 'hono';
import { badRequest, quoted, unsupportedMediaType, uriTooLong } from '../errors';
import { MAX_COMMAND_SECONDS } from '../shared/control';
import { TASK_STATES } from '../shared/task-states';
import { bodyBytes, mediaType, multipartFields, parseJson, utf8 } from './body';

/** The bounds the routes share (README "API" lists them). */
export const LIMITS = {
  /** Task, worker and queue names and task ids sent on (Celery's, AMQP's and the command channel's 255). */
  name: 255,
  /**
   * Names and ids that look up stored rows (paths, filters): longer, because a
   * row stored before decode sanitized its strings may read back longer than
   * 255 (SQLite gives three U+FFFD for each lone surrogate it was given).
   */
  storedName: 1024,
  /** Other free text (a sign-in code, a `next` path). */
  text: 4096,
  /** Offsets into lists: past any table, and inside every SQL integer type (SQLite, MySQL, a 32-bit INT). */
  offset: 1_000_000_000,
  /** /api/tasks?limit: Flower's own history cap (0 means that cap). */
  apiTasks: 100_000,
  /** Rows on a page (the tasks page, DataTables). */
  page: 500,
  /** Processes to grow or shrink a pool by, and autoscale bounds. */
  pool: 10_000,
  /** Seconds for countdowns, expiry, and soft/hard time limits (ten years). */
  seconds: 10 * 366 * 86_400,
  /** Seconds a request may wait for a result: the command itself needs the rest of MAX_COMMAND_SECONDS. */
  wait: MAX_COMMAND_SECONDS - 5,
  /**
   * Path and query together. Node refuses longer request lines itself (431,
   * its 16 KiB header limit) and so does Cloudflare (414): the same answer
   * here, whoever calls the app.
   */
  url: 16 * 1024,
} as const;

export interface Range {
  min: number;
  max: number;
}

const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Text as a parameter may hold it: at most `max` characters, well-formed,
 * and no control characters unless allowed (names and ids: Celery sends any
 * text, decode keeps it, and every stored name must stay reachable; or a
 * value the caller judges itself).
 */
export function checkText(name: string, value: string, max: number, controls: 'refused' | 'allowed' = 'refused'): string {
  if (value.length > max) throw badRequest(`'${name}' is too long: at most ${max} characters`);
  if (controls === 'refused' && CONTROL.test(value)) throw badRequest(`'${name}' must not contain control characters`);
  if (!value.isWellFormed()) throw badRequest(`'${name}' is not well-formed text`);
  return value;
}

const invalid = (name: string, value: string, type: 'int' | 'float' | 'bool') =>
  badRequest(`Invalid argument '${quoted(value)}' of type '${type}' for '${name}'`);

export function inRange(name: string, value: string, type: 'int' | 'float', n: number, range: Range): number {
  // Below the minimum reads as Flower's refusal of a bad value; the maxima
  // are Stalk's own, and say so.
  if (!(n >= range.min)) throw invalid(name, value, type);
  if (n > range.max) throw badRequest(`'${name}' must be at most ${range.max}`);
  return n;
}

/** A decimal integer: no exponent, fraction, NaN or Infinity; in range. */
export function parseInteger(name: string, value: string, range: Range): number {
  const text = value.trim();
  if (!/^[+-]?\d+$/.test(text)) throw invalid(name, value, 'int');
  // Past 15 significant digits a number is outside every range here, and Number() would round it.
  const digits = text.replace(/^[+-]?0*/, '');
  const n = digits.length > 15 ? (text.startsWith('-') ? -Infinity : Infinity) : Number(text);
  return inRange(name, value, 'int', n, range);
}

/** A decimal number (`2.5`, `.5`, `3`): no exponent, NaN or Infinity; in range. */
export function parseDecimal(name: string, value: string, range: Range): number {
  const text = value.trim();
  if (!/^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/.test(text)) throw invalid(name, value, 'float');
  return inRange(name, value, 'float', Number(text), range);
}

const TRUE = new Set(['1', 'true', 't', 'yes', 'y', 'on']);
const FALSE = new Set(['0', 'false', 'f', 'no', 'n', 'off', '']);

export function parseBool(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw invalid(name, value, 'bool');
}

/** `%Y-%m-%d %H:%M` in the server's local time, as Flower reads received_start/received_end; seconds since the epoch. */
export function parseLocalMinute(name: string, value: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})$/.exec(value.trim());
  if (!match) throw badRequest(`Invalid '${name}' '${quoted(value)}': expected YYYY-MM-DD HH:MM`);
  return minuteOf(name, value, match, false);
}

/**
 * `YYYY-MM-DD HH:MM` in UTC, with or without a trailing `Z` (the tasks page's
 * form: stalk.js turns the time entered in the zone the page shows into UTC;
 * without the script the page shows UTC); seconds since the epoch.
 */
export function parseUtcMinute(name: string, value: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})Z?$/.exec(value.trim());
  if (!match) throw badRequest(`Invalid '${name}' '${quoted(value)}': expected YYYY-MM-DD HH:MM (UTC)`);
  return minuteOf(name, value, match, true);
}

function minuteOf(name: string, value: string, match: RegExpExecArray, utc: boolean): number {
  const [, y, mo, d, h, mi] = match.map(Number) as [number, number, number, number, number, number];
  const date = utc ? new Date(Date.UTC(y, mo - 1, d, h, mi)) : new Date(y, mo - 1, d, h, mi);
  // Date() moves years 0-99 to 1900-1999 and rolls over a 31st of February: both are refused.
  const [year, month, day] = utc
    ? [date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()]
    : [date.getFullYear(), date.getMonth(), date.getDate()];
  if (year !== y || month !== mo - 1 || day !== d || h > 23 || mi > 59) {
    throw badRequest(`Invalid '${name}' '${quoted(value)}': no such date or time`);
  }
  return date.getTime() / 1000;
}

interface TextOptions {
  max?: number;
  required?: boolean;
  controls?: 'refused' | 'allowed';
}

/** Parameters by name, every value kept, so that a repeated one can be refused. */
export class Params {
  constructor(private readonly values: ReadonlyMap<string, readonly string[]>) {}

  /** The value of a parameter given at most once; undefined when absent. */
  one(name: string): string | undefined {
    const values = this.values.get(name);
    if (values === undefined || values.length === 0) return undefined;
    if (values.length > 1) throw badRequest(`'${name}' was given ${values.length} times: give it once`);
    return values[0];
  }

  /** Every value of a parameter that may repeat, each checked as text. */
  many(name: string, max: number = LIMITS.name): string[] {
    return (this.values.get(name) ?? []).map((value) => checkText(name, value, max));
  }

  /** Trimmed text; empty or absent is undefined, or "Missing argument" (Flower's) when required. */
  text(name: string, options: TextOptions & { required: true }): string;
  text(name: string, options?: TextOptions): string | undefined;
  text(name: string, options: TextOptions = {}): string | undefined {
    const value = this.one(name)?.trim();
    if (value === undefined || value === '') {
      if (options.required) throw badRequest(`Missing argument '${name}'`);
      return undefined;
    }
    return checkText(name, value, options.max ?? LIMITS.name, options.controls ?? 'refused');
  }

  /** The name or id of something stored (a worker, a task name): text, control characters included (any name Celery sends must stay reachable). */
  name(name: string, options: { required: true }): string;
  name(name: string, options?: { required?: boolean }): string | undefined;
  name(name: string, options: { required?: boolean } = {}): string | undefined {
    return this.text(name, { ...options, max: LIMITS.storedName, controls: 'allowed' });
  }

  /** Text as given (untrimmed, '' when absent): search queries, filter fields echoed back. */
  raw(name: string, max: number): string {
    return checkText(name, this.one(name) ?? '', max);
  }

  int(name: string, range: Range): number | undefined {
    const value = this.one(name);
    return value === undefined || value.trim() === '' ? undefined : parseInteger(name, value, range);
  }

  requiredInt(name: string, range: Range): number {
    const n = this.int(name, range);
    if (n === undefined) throw badRequest(`Missing argument '${name}'`);
    return n;
  }

  float(name: string, range: Range): number | undefined {
    const value = this.one(name);
    return value === undefined || value.trim() === '' ? undefined : parseDecimal(name, value, range);
  }

  bool(name: string, fallback = false): boolean {
    const value = this.one(name);
    return value === undefined ? fallback : parseBool(name, value);
  }

  /** One of a closed set of values; absent or empty is undefined. */
  choice<T extends string>(name: string, options: readonly T[]): T | undefined {
    const value = this.one(name);
    if (value === undefined || value === '') return undefined;
    if (!(options as readonly string[]).includes(value))
      throw badRequest(`Invalid ${name} '${quoted(value)}': use one of ${options.join(', ')}`);
    return value as T;
  }

  localMinute(name: string): number | undefined {
    const value = this.one(name);
    return value === undefined || value.trim() === '' ? undefined : parseLocalMinute(name, value);
  }

  /** A minute in UTC (the tasks page's received range); undefined when absent or empty. */
  utcMinute(name: string): number | undefined {
    const value = this.one(name);
    return value === undefined || value.trim() === '' ? undefined : parseUtcMinute(name, value);
  }
}

function decodeComponent(text: string, where: string): string {
  if (!text.includes('%')) return text;
  try {
    // Throws on a broken escape (%E0%A4%A), invalid UTF-8, and encoded surrogates (%ED%A0%80).
    return decodeURIComponent(text);
  } catch {
    throw badRequest(`Malformed percent-encoding in the ${where}: '${quoted(text)}'`);
  }
}

/** application/x-www-form-urlencoded, decoded strictly (browsers' lenient decoding would hide a broken value). */
export function parseUrlEncoded(text: string, where: string): [string, string][] {
  const entries: [string, string][] = [];
  for (const piece of text.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const key = decodeComponent((eq < 0 ? piece : piece.slice(0, eq)).replace(/\+/g, ' '), where);
    const value = decodeComponent((eq < 0 ? '' : piece.slice(eq + 1)).replace(/\+/g, ' '), where);
    entries.push([key, value]);
  }
  return entries;
}

function grouped(entries: [string, string][]): Params {
  const values = new Map<string, string[]>();
  for (const [key, value] of entries) {
    const list = values.get(key);
    if (list) list.push(value);
    else values.set(key, [value]);
  }
  return new Params(values);
}

const queries = new WeakMap<Context, [string, string][]>();

function queryEntries(c: Context): [string, string][] {
  let entries = queries.get(c);
  if (!entries) {
    entries = parseUrlEncoded(new URL(c.req.url).search.slice(1), 'query string');
    queries.set(c, entries);
  }
  return entries;
}

/** The query string's parameters. */
export function query(c: Context): Params {
  return grouped(queryEntries(c));
}

/**
 * Query parameters and, for a POST, the form body's fields, together (as
 * Flower reads them): a parameter given in both counts as repeated. A body
 * that is not a form is refused with 415.
 */
export async function form(c: Context): Promise<Params> {
  const entries = [...queryEntries(c)];
  if (c.req.method === 'POST') {
    const bytes = await bodyBytes(c);
    const type = mediaType(c);
    if (bytes.byteLength === 0) {
      // An empty body says nothing, whatever its type.
    } else if (type === 'application/x-www-form-urlencoded') {
      entries.push(...parseUrlEncoded(utf8(bytes, 'form body'), 'form body'));
    } else if (type === 'multipart/form-data') {
      entries.push(...(await multipartFields(c, bytes)));
    } else {
      throw unsupportedMediaType(
        `Unsupported content type '${quoted(type)}': send form fields (application/x-www-form-urlencoded or multipart/form-data) or query parameters`,
      );
    }
  }
  return grouped(entries);
}

/**
 * The URL is well-formed: not over LIMITS.url, and every path segment and
 * the query string decode strictly. Hono keeps a broken escape as literal
 * text, which would otherwise reach a lookup or a message as "%ED%A0%80".
 */
export function checkUrl(c: Context): void {
  const url = new URL(c.req.url);
  if (url.pathname.length + url.search.length > LIMITS.url)
    throw uriTooLong(`URL too long: at most ${LIMITS.url} characters of path and query`);
  for (const segment of url.pathname.split('/')) decodeComponent(segment, 'path');
  queryEntries(c);
}

/** A path parameter (a task id, a task or worker name): well-formed text of a stored name's length, control characters included. */
export function pathName(c: Context, name: string): string {
  const value = c.req.param(name) ?? '';
  if (value === '') throw badRequest(`Missing '${name}' in the path`);
  return checkText(name, value, LIMITS.storedName, 'allowed');
}

/**
 * A task state filter: absent, empty or "All" is none. Celery's states and
 * custom ones (a `task-<x>` event gives the state X) are words; any case.
 */
export function stateFilter(params: Params, name: string): string | undefined {
  const value = params.text(name, { max: 64 });
  if (value === undefined || value === 'All') return undefined;
  if (!/^[\p{L}\p{N}_.:-]+$/u.test(value))
    throw badRequest(`Invalid ${name} '${quoted(value)}': a task state is a word, such as ${TASK_STATES.join(', ')}`);
  return value.toUpperCase();
}

/** `stuck=<seconds>`: tasks STARTED at least that long ago and still running (none when absent or empty). */
export function stuckFilter(params: Params, now: number): { stuckBefore?: number } {
  const seconds = params.int('stuck', { min: 1, max: LIMITS.seconds });
  return seconds === undefined ? {} : { stuckBefore: now - seconds };
}

/** A form field holding JSON (the send form's args and kwargs); empty is undefined. */
export function parseJsonField(params: Params, name: string): unknown {
  const value = params.one(name);
  return value === undefined || value.trim() === '' ? undefined : parseJson(value, `'${name}'`);
}

/** The signals a worker can send (Python's `signal` names on Linux and macOS). */
export const SIGNALS = [
  'SIGABRT',
  'SIGALRM',
  'SIGBUS',
  'SIGCHLD',
  'SIGCONT',
  'SIGEMT',
  'SIGFPE',
  'SIGHUP',
  'SIGILL',
  'SIGINFO',
  'SIGINT',
  'SIGIO',
  'SIGKILL',
  'SIGPIPE',
  'SIGPROF',
  'SIGPWR',
  'SIGQUIT',
  'SIGSEGV',
  'SIGSTOP',
  'SIGSYS',
  'SIGTERM',
  'SIGTRAP',
  'SIGTSTP',
  'SIGTTIN',
  'SIGTTOU',
  'SIGURG',
  'SIGUSR1',
  'SIGUSR2',
  'SIGVTALRM',
  'SIGWINCH',
  'SIGXCPU',
  'SIGXFSZ',
] as const;

/** rate_limit's `ratelimit`: a rate as Celery takes it (100, 10/s, 100/m, 1000/h). */
export function rateLimitParam(params: Params): string {
  const rate = params.text('ratelimit', { required: true, max: 32 });
  if (!/^\d+(\.\d+)?(\/[smh])?$/.test(rate)) throw badRequest(`Invalid rate limit '${quoted(rate)}' (e.g. 100, 10/s, 100/m, 1000/h)`);
  return rate;
}

/**
 * revoke's `signal`: a signal name, with or without SIG, any case; SIGTERM
 * when absent. Sent as `SIGNAME`: Celery looks names up upper case only.
 */
export function signalParam(params: Params): string {
  const value = params.text('signal', { max: 16 }) ?? 'SIGTERM';
  const upper = value.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  if (!(SIGNALS as readonly string[]).includes(name))
    throw badRequest(`Invalid signal '${quoted(value)}': use a signal name such as SIGTERM, SIGKILL, SIGINT, SIGQUIT, SIGUSR1, SIGHUP`);
  return name;
}
