// Folding spelled out one event at a time, for tests to compute what the
// collector's batches (fold/batch.ts) and the store's SQL merge must reach.

import type { TaskEvent } from '../../src/shared/celery-events';
import type { NewTaskRow } from '../../src/shared/schema';
import { mergeTaskRowInto } from '../../worker-collector/fold/merge';
import { taskRowFromEvent } from '../../worker-collector/fold/task';

/** Combine what is known (`old`) with what arrived since (`next`), as a new row. */
export function mergeTaskRows(old: NewTaskRow, next: NewTaskRow): NewTaskRow {
  const merged = { ...old };
  mergeTaskRowInto(merged, next);
  return merged;
}

/** Apply one event to what is known of its task, as a new row. */
export function foldTaskEvent(row: NewTaskRow | undefined, event: TaskEvent): NewTaskRow {
  const next = taskRowFromEvent(event);
  return row ? mergeTaskRows(row, next) : next;
}
