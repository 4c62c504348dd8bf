// What every page needs to know about how to render: where it is mounted,
// how times read, which task columns show, how often live panels refresh.

import { hasRole, type Role, requiredRole } from '../shared/roles';

export const TASK_COLUMN_NAMES = [
  'name',
  'uuid',
  'state',
  'args',
  'kwargs',
  'result',
  'received',
  'started',
  'runtime',
  'worker',
  'exchange',
  'routing_key',
  'retries',
  'revoked',
  'exception',
  'expires',
  'eta',
] as const;
export type TaskColumnName = (typeof TASK_COLUMN_NAMES)[number];

/** Flower's default `tasks_columns`. */
export const DEFAULT_TASK_COLUMNS: TaskColumnName[] = [
  'name',
  'uuid',
  'state',
  'args',
  'kwargs',
  'result',
  'received',
  'started',
  'runtime',
  'worker',
];

export interface UiOptions {
  /** Mount point behind a reverse proxy, '' or '/flower' (no trailing slash). */
  prefix: string;
  /** Times as "3 minutes ago" instead of dates (Flower's natural_time). */
  naturalTime: boolean;
  tasksColumns: TaskColumnName[];
  /** Seconds between live refreshes of the dashboard panels (0: off). */
  refreshSeconds: number;
  /** Who is signed in (set per request when auth is on). */
  user?: string | undefined;
  /** The session's CSRF token, sent back by htmx and forms (set per request). */
  csrf?: string | undefined;
  /** What the reader may do (set per request; pages hide the actions above it). */
  role?: Role | undefined;
}

export const DEFAULT_UI: UiOptions = { prefix: '', naturalTime: false, tasksColumns: DEFAULT_TASK_COLUMNS, refreshSeconds: 3 };

/** Flower's tasks_columns option: a comma list, or 'all'. */
export function parseTaskColumns(text: string): TaskColumnName[] {
  const value = text.trim();
  if (value === '') return DEFAULT_TASK_COLUMNS;
  if (value === 'all') return [...TASK_COLUMN_NAMES];
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(TASK_COLUMN_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0)
    throw new Error(`--tasks-columns: unknown column ${unknown.join(', ')} (use ${TASK_COLUMN_NAMES.join(', ')} or all)`);
  return names as TaskColumnName[];
}

/** '/flower/' or 'flower' -> '/flower'; '' or '/' -> ''. */
export function normalizePrefix(text: string): string {
  const trimmed = text.trim().replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '' : `/${trimmed}`;
}

/** Whether the reader's role reaches `needed` (no role: auth is off, and everyone may). */
export function mayAct(ui: UiOptions, needed: Role): boolean {
  return !ui.role || hasRole(ui.role, needed);
}

/** Whether the reader may post to `path` (under the app): pages hide the actions they may not take. */
export function mayPost(ui: UiOptions, path: string): boolean {
  return mayAct(ui, requiredRole('POST', path));
}
