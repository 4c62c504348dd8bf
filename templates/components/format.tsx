// Small pieces every page shows: times, durations, state badges, links.
// Everything goes through JSX, so every value from Celery is escaped.

import { cutText, pathSegment } from '../../src/shared/text';
import type { UiOptions } from '../../src/ui/context';

// Every page must render every row the database can hold, including rows
// written before decode sanitized its input or by another writer: times that
// Date cannot hold (1e20 seconds), infinities (SQLite keeps them), negative
// runtimes, lone surrogates. Nothing here throws on such a value; it shows a
// visible placeholder with the raw value in the title instead.

/** Years a time is shown for: the four-digit years of ISO 8601 (and HTML's datetime attribute). */
const FIRST_SHOWN = Date.parse('0000-01-01T00:00:00.000Z');
const LAST_SHOWN = Date.parse('9999-12-31T23:59:59.999Z');

/** Seconds since the epoch as a Date, or null for anything that is not a time with a four-digit year. */
function dateOf(seconds: unknown): Date | null {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return null;
  const ms = seconds * 1000;
  return ms >= FIRST_SHOWN && ms <= LAST_SHOWN ? new Date(ms) : null;
}

/** The raw value, for the title of a placeholder. */
function raw(value: unknown): string {
  return typeof value === 'string' ? cutText(value, 200) : String(value);
}

/** 2026-11-24 09:00:01.123 UTC: a fixed, sortable form; the browser may localise it (static/stalk.js). */
export function formatTime(seconds: unknown): string {
  const date = dateOf(seconds);
  return date ? date.toISOString().replace('T', ' ').replace('Z', ' UTC') : `(invalid time: ${raw(seconds)})`;
}

/**
 * A time: the server writes it in UTC, labelled; static/stalk.js rewrites it
 * in the zone the reader chose (theirs or UTC) with that zone's label, or as
 * "3 min ago" where natural time is on. `bare` leaves the label out, for a
 * table column whose header carries it (<ZoneLabel />).
 */
export function Time({ at, ui, bare, id }: { at: number | null | undefined; ui: UiOptions; bare?: boolean; id?: string }) {
  if (at === null || at === undefined) return <span class="muted">—</span>;
  const date = dateOf(at);
  if (!date) {
    return (
      <span class="muted invalid" title={`stored value: ${raw(at)}`}>
        (invalid time)
      </span>
    );
  }
  const text = formatTime(at);
  return (
    <time
      id={id}
      datetime={date.toISOString()}
      data-natural={ui.naturalTime ? '1' : undefined}
      data-bare={bare ? '1' : undefined}
      title={text}
    >
      {bare ? text.replace(/ UTC$/, '') : text}
    </time>
  );
}

/** The zone a column's times are shown in, for its header: "(UTC)" until static/stalk.js names the reader's. */
export function ZoneLabel() {
  return (
    <span class="zone">
      (<span data-zone>UTC</span>)
    </span>
  );
}

export function Duration({ seconds }: { seconds: number | null | undefined }) {
  if (seconds === null || seconds === undefined) return <span class="muted">—</span>;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) {
    return (
      <span class="muted invalid" title={`stored value: ${raw(seconds)}`}>
        (invalid)
      </span>
    );
  }
  return <span>{durationText(seconds)}</span>;
}

/** 12.3 ms, 1.23 s: a finite number of seconds as the tables show runtimes. */
export function durationText(seconds: number): string {
  // A negative runtime cannot happen, but a stored one is shown as it is.
  return Math.abs(seconds) < 1 ? `${(seconds * 1000).toFixed(1)} ms` : `${seconds.toFixed(2)} s`;
}

/**
 * Celery's ISO 8601 text (ETA, expires: `2026-11-24T09:00:01.123456+00:00`,
 * or without an offset, which Celery means as UTC) as seconds since the
 * epoch; null for anything else.
 */
export function isoSeconds(text: string): number | null {
  const match = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!match) return null;
  const [, day, minute, second = ':00', fraction = '', zone = 'Z'] = match;
  const offset = zone === 'Z' ? zone : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = Date.parse(`${day}T${minute}${second}.${fraction.padEnd(3, '0').slice(0, 3)}${offset}`);
  return Number.isFinite(ms) ? ms / 1000 : null;
}

/** A time Celery sent as ISO text (ETA, expires), shown like every other time; text that is not one as it was. */
export function IsoTime({ text, ui, bare }: { text: string | null | undefined; ui: UiOptions; bare?: boolean }) {
  if (text === null || text === undefined || text === '') return <span class="muted">—</span>;
  const seconds = isoSeconds(text);
  return seconds === null ? <code>{cutText(text, 80)}</code> : <Time at={seconds} ui={ui} bare={bare} />;
}

/** An exchange name; AMQP's default exchange is the one named "". */
export function exchangeText(exchange: string | null | undefined): string {
  if (exchange === null || exchange === undefined) return '—';
  return exchange === '' ? '(default exchange)' : exchange;
}

/** A number from a stored row for a table cell: '—' when absent, the value as text otherwise. */
export function fixed(value: unknown, digits: number): string {
  if (value === null || value === undefined) return '—';
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : raw(value);
}

const STATE_CLASS: Record<string, string> = {
  SUCCESS: 'ok',
  FAILURE: 'bad',
  REVOKED: 'revoked',
  REJECTED: 'bad',
  RETRY: 'warn',
  STARTED: 'run',
  RECEIVED: 'info',
  PENDING: 'info',
  LOST: 'lost',
};

export function StateBadge({ state }: { state: string }) {
  // Own keys only: a stored state may be any text ('constructor', '__proto__').
  const kind = Object.hasOwn(STATE_CLASS, state) ? STATE_CLASS[state] : 'info';
  return <span class={`badge ${kind}`}>{state}</span>;
}

export function OnlineBadge({ alive }: { alive: boolean }) {
  return <span class={`badge ${alive ? 'ok' : 'bad'}`}>{alive ? 'Online' : 'Offline'}</span>;
}

/** Long text (args, results) shortened for tables; the full value is in the title and on the task page. */
export function Clip({ text, max = 80 }: { text: string | null | undefined; max?: number }) {
  if (text === null || text === undefined || text === '') return <span class="muted">—</span>;
  if (text.length <= max) return <code>{text}</code>;
  return <code title={text}>{`${cutText(text, max)}…`}</code>;
}

export function href(ui: UiOptions, path: string): string {
  return `${ui.prefix}${path}`;
}

export function taskHref(ui: UiOptions, id: string): string {
  return href(ui, `/task/${pathSegment(id)}`);
}

export function workerHref(ui: UiOptions, hostname: string): string {
  return href(ui, `/worker/${pathSegment(hostname)}`);
}
