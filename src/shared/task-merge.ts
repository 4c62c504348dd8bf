// How two partial task rows combine into one. The collector folds events with
// `mergeTaskRows` in memory, and the store's upsert applies the same rules in
// SQL (worker-collector/store/task-upsert.ts reads TASK_MERGE_RULES), so a row
// converges to the same values however events were split across flushes.
//
// Two rules, both order-independent:
// - 'max': the greater non-null value (event times, retries, the state key);
// - 'winner': the value from the side whose state key is greater, falling back
//   to the other side where the winner has none. A row's state, worker and
//   outcome therefore come from the event that set its state, and fields only
//   an earlier event carried (a client's `task-sent` queue, a retry's
//   exception) are kept.

import type { NewTaskRow, TasksTable } from './schema';

export type MergeRule = 'key' | 'max' | 'winner';

export const TASK_MERGE_RULES: Record<Exclude<keyof TasksTable, 'id'>, MergeRule> = {
  uuid: 'key',
  name: 'winner',
  state: 'winner',
  timestamp: 'winner',
  clock: 'winner',
  sent: 'max',
  received: 'max',
  started: 'max',
  succeeded: 'max',
  failed: 'max',
  retried: 'max',
  revoked: 'max',
  rejected: 'max',
  args: 'winner',
  kwargs: 'winner',
  result: 'winner',
  exception: 'winner',
  traceback: 'winner',
  worker: 'winner',
  client: 'winner',
  runtime: 'winner',
  retries: 'max',
  eta: 'winner',
  expires: 'winner',
  root_id: 'winner',
  parent_id: 'winner',
  queue: 'winner',
  exchange: 'winner',
  routing_key: 'winner',
  // Compared by every 'winner' column, so the SQL assigns it last.
  state_key: 'max',
};

/** Columns in the order an upsert must assign them (MySQL evaluates assignments left to right). */
export type TaskColumn = keyof typeof TASK_MERGE_RULES;
export const TASK_COLUMNS: TaskColumn[] = [
  ...(Object.keys(TASK_MERGE_RULES) as TaskColumn[]).filter((c) => c !== 'state_key'),
  'state_key',
];

function maxOf<T>(a: T | null | undefined, b: T | null | undefined): T | null {
  if (a === null || a === undefined) return b ?? null;
  if (b === null || b === undefined) return a;
  return b > a ? b : a;
}

/** Combine what is stored (`old`) with what arrived since (`next`). */
export function mergeTaskRows(old: NewTaskRow, next: NewTaskRow): NewTaskRow {
  const nextWins = next.state_key > old.state_key;
  const winner = nextWins ? next : old;
  const loser = nextWins ? old : next;
  const merged: Record<string, unknown> = {};
  for (const column of TASK_COLUMNS) {
    const rule = TASK_MERGE_RULES[column];
    if (rule === 'max') merged[column] = maxOf(old[column], next[column]);
    else if (rule === 'winner') merged[column] = winner[column] ?? loser[column] ?? null;
    else merged[column] = old[column];
  }
  return merged as unknown as NewTaskRow;
}
