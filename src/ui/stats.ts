// What the /stats pages render (read by src/routes/stats.tsx), and the
// links from their numbers to the task list that holds the same tasks.

import type { ExceptionStats, QueueLengthSeries, StatsSeries, StatsStep, TaskTypeStats } from '../shared/stats';

export const STATS_PERIODS = [
  { key: '1h', label: '1 hour', seconds: 3600 },
  { key: '24h', label: '24 hours', seconds: 86400 },
  { key: '7d', label: '7 days', seconds: 7 * 86400 },
  { key: '30d', label: '30 days', seconds: 30 * 86400 },
] as const;
export type StatsPeriod = (typeof STATS_PERIODS)[number]['key'];

export interface StatsView {
  period: StatsPeriod;
  /** The window, epoch seconds, [from, to). */
  from: number;
  to: number;
  step: StatsStep;
  /** One task name, or null for all of them. */
  name: string | null;
  /** The charted series: all names summed, or the one name's. */
  total: StatsSeries;
  /** Queue lengths (all names only). */
  queues: QueueLengthSeries[] | null;
  /** The task types table (all names only). */
  types: TaskTypeStats[] | null;
  exceptions: ExceptionStats[];
}

/** A minute as the tasks page's received-time filter reads it: UTC, marked 'Z'. */
export function utcMinuteParam(seconds: number): string {
  return `${new Date(Math.floor(seconds / 60) * 60 * 1000).toISOString().slice(0, 16)}Z`;
}

/** A search phrase for the tasks page's `q` (Flower's language): quoted, with \ and " escaped. */
export function searchPhrase(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export interface TaskListFilter {
  name?: string | undefined;
  state?: string;
  retried?: boolean;
  /** Free-text search (the exception class, quoted). */
  q?: string;
  sort?: string;
}

/**
 * The tasks page's query for the tasks of a window: received from its first
 * minute to its last (the filter is inclusive, by the minute), plus the
 * filter. Statistics count events by when they happened and the list filters
 * by when a task was received, so a task received before the window that
 * finished in it is counted but not listed.
 */
export function taskListQuery(from: number, to: number, filter: TaskListFilter): string {
  const params = new URLSearchParams();
  if (filter.name !== undefined) params.set('name', filter.name);
  if (filter.state) params.set('state', filter.state);
  if (filter.retried) params.set('retried', '1');
  if (filter.q) params.set('q', filter.q);
  params.set('received_start', utcMinuteParam(from));
  params.set('received_end', utcMinuteParam(to));
  if (filter.sort) params.set('sort', filter.sort);
  return params.toString();
}
