// How two partial task rows combine into one. The collector folds events with
// `mergeTaskRowInto` in memory, and the store's upsert applies the same rules in
// SQL (store/upsert.ts reads TASK_MERGE_RULES), so a row
// converges to the same values however events were split across flushes.
//
// Three rules, all order-independent:
// - 'max': the greater non-null value (event times, retries, the state key);
// - 'winner': the value from the side whose state key is greater, falling back
//   to the other side where the winner has none. A row's state, worker and
//   outcome therefore come from the event that set its state, and fields only
//   an earlier event carried (a client's `task-sent` queue, a retry's
//   exception) are kept;
// - 'own': the value from the side whose state key is greater, with no
//   fallback (a LOST task's reason goes when a later event's state wins).

import type { NewTaskRow, TasksTable } from '../../src/shared/schema';

export type MergeRule = 'key' | 'max' | 'winner' | 'own';

// retried_from is not an event's to set: the upsert never names it (see the retried-from migration).
export const TASK_MERGE_RULES: Record<Exclude<keyof TasksTable, 'id' | 'retried_from'>, MergeRule> = {
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
  state_reason: 'own',
  // Compared by every 'winner' column, so the SQL assigns it last.
  state_key: 'max',
};

/** Columns in the order an upsert must assign them (MySQL evaluates assignments left to right). */
export type TaskColumn = keyof typeof TASK_MERGE_RULES;
export const TASK_COLUMNS: TaskColumn[] = [
  ...(Object.keys(TASK_MERGE_RULES) as TaskColumn[]).filter((c) => c !== 'state_key'),
  'state_key',
];

type MutableRow = Record<TaskColumn, unknown>;

// The fold runs once per event (tens of thousands per second), so the merge
// is compiled from the rules into straight-line property accesses instead of
// a loop over column names (which V8 would run as slow, megamorphic keyed
// accesses). Column names come from the fixed table above, never from input.
function compileMergeInto(): (target: MutableRow, next: MutableRow) => void {
  const lines = ['const nextWins = next.state_key > target.state_key;', 'let a, b;'];
  for (const column of TASK_COLUMNS) {
    const rule = TASK_MERGE_RULES[column];
    if (rule === 'key') continue;
    lines.push(`a = target.${column}; b = next.${column};`);
    if (rule === 'max') lines.push(`target.${column} = a == null ? (b ?? null) : b == null ? a : b > a ? b : a;`);
    else if (rule === 'own') lines.push(`target.${column} = nextWins ? (b ?? null) : (a ?? null);`);
    else lines.push(`target.${column} = nextWins ? (b ?? a ?? null) : (a ?? b ?? null);`);
  }
  return new Function('target', 'next', lines.join('\n')) as (target: MutableRow, next: MutableRow) => void;
}

const compiledMergeInto = compileMergeInto();

/** Merge `next` (what arrived since) into `target` (what is known), in place. */
export function mergeTaskRowInto(target: NewTaskRow, next: NewTaskRow): void {
  compiledMergeInto(target as unknown as MutableRow, next as unknown as MutableRow);
}

// Also compiled: a row's values in TASK_COLUMNS order (the bulk statements'
// parameters), built once per task per flush.
const compiledRowValues = new Function('row', `return [${TASK_COLUMNS.map((c) => `row.${c} ?? null`).join(', ')}];`) as (
  row: MutableRow,
) => unknown[];

/** A row's values in TASK_COLUMNS order, null for what it lacks. */
export function taskRowValues(row: NewTaskRow): unknown[] {
  return compiledRowValues(row as unknown as MutableRow);
}
