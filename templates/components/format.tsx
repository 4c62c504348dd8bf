// Small pieces every page shows: times, durations, state badges, links.
// Everything goes through JSX, so every value from Celery is escaped.

import type { UiOptions } from '../../src/ui/context';

/** 2026-11-24 09:00:01.123 UTC: a fixed, sortable form; the browser may localise it (static/stalk.js). */
export function formatTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

export function Time({ at, ui }: { at: number | null | undefined; ui: UiOptions }) {
  if (at === null || at === undefined) return <span class="muted">—</span>;
  const iso = new Date(at * 1000).toISOString();
  return (
    <time datetime={iso} data-natural={ui.naturalTime ? '1' : undefined} title={formatTime(at)}>
      {formatTime(at)}
    </time>
  );
}

export function Duration({ seconds }: { seconds: number | null | undefined }) {
  if (seconds === null || seconds === undefined) return <span class="muted">—</span>;
  return <span>{seconds < 1 ? `${(seconds * 1000).toFixed(1)} ms` : `${seconds.toFixed(2)} s`}</span>;
}

const STATE_CLASS: Record<string, string> = {
  SUCCESS: 'ok',
  FAILURE: 'bad',
  REVOKED: 'bad',
  REJECTED: 'bad',
  RETRY: 'warn',
  STARTED: 'run',
  RECEIVED: 'info',
  PENDING: 'info',
};

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge ${STATE_CLASS[state] ?? 'info'}`}>{state}</span>;
}

export function OnlineBadge({ alive }: { alive: boolean }) {
  return <span class={`badge ${alive ? 'ok' : 'bad'}`}>{alive ? 'Online' : 'Offline'}</span>;
}

/** Long text (args, results) shortened for tables; the full value is in the title and on the task page. */
export function Clip({ text, max = 80 }: { text: string | null | undefined; max?: number }) {
  if (text === null || text === undefined || text === '') return <span class="muted">—</span>;
  if (text.length <= max) return <code>{text}</code>;
  return <code title={text}>{`${text.slice(0, max)}…`}</code>;
}

export function href(ui: UiOptions, path: string): string {
  return `${ui.prefix}${path}`;
}

export function taskHref(ui: UiOptions, id: string): string {
  return href(ui, `/task/${encodeURIComponent(id)}`);
}

export function workerHref(ui: UiOptions, hostname: string): string {
  return href(ui, `/worker/${encodeURIComponent(hostname)}`);
}
