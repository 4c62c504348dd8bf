// Pure folding of task events into partial task rows (no I/O).

import type { TaskEvent } from '../../src/shared/celery-events';
import type { NewTaskRow, TaskEventRow } from '../../src/shared/schema';
import { mergeTaskRows } from '../../src/shared/task-merge';
import { stateForEvent, stateKey, timeFieldForEvent } from '../../src/shared/task-states';

/** The row one event alone says about its task. */
export function taskRowFromEvent(event: TaskEvent): NewTaskRow {
  const state = stateForEvent(event.type);
  const sentByClient = event.type === 'task-sent';
  const row: NewTaskRow = {
    uuid: event.uuid,
    name: event.name ?? null,
    state,
    state_key: stateKey(state, event.timestamp),
    timestamp: event.timestamp,
    clock: event.clock,
    sent: null,
    received: null,
    started: null,
    succeeded: null,
    failed: null,
    retried: null,
    revoked: null,
    rejected: null,
    args: event.args ?? null,
    kwargs: event.kwargs ?? null,
    result: event.result ?? null,
    exception: event.exception ?? null,
    traceback: event.traceback ?? null,
    worker: sentByClient ? null : event.hostname || null,
    client: sentByClient ? event.hostname || null : null,
    runtime: event.runtime ?? null,
    retries: event.retries ?? null,
    eta: event.eta ?? null,
    expires: event.expires ?? null,
    root_id: event.root_id ?? null,
    parent_id: event.parent_id ?? null,
    queue: event.queue ?? null,
    exchange: event.exchange ?? null,
    routing_key: event.routing_key ?? null,
  };
  const timeField = timeFieldForEvent(event.type);
  if (timeField) row[timeField] = event.timestamp;
  return row;
}

/** Apply one event to what is known of its task. */
export function foldTaskEvent(row: NewTaskRow | undefined, event: TaskEvent): NewTaskRow {
  const next = taskRowFromEvent(event);
  return row ? mergeTaskRows(row, next) : next;
}

// The timeline keeps each event's own facts; the big texts (args, kwargs,
// result, traceback) live once, on the task row.
const TIMELINE_FIELDS = [
  'retries',
  'eta',
  'expires',
  'queue',
  'exchange',
  'routing_key',
  'runtime',
  'exception',
  'terminated',
  'signum',
  'expired',
  'requeue',
] as const;
const TIMELINE_TEXT_LIMIT = 1_024;

export function timelineRowFromEvent(event: TaskEvent): TaskEventRow {
  const data: Record<string, unknown> = {};
  let any = false;
  for (const field of TIMELINE_FIELDS) {
    const value = event[field];
    if (value === null || value === undefined) continue;
    data[field] = typeof value === 'string' && value.length > TIMELINE_TEXT_LIMIT ? value.slice(0, TIMELINE_TEXT_LIMIT) : value;
    any = true;
  }
  return {
    task_id: event.uuid,
    type: event.type,
    timestamp: event.timestamp,
    hostname: event.hostname,
    clock: event.clock,
    data: any ? JSON.stringify(data) : null,
  };
}

/** `ValueError('x')` -> `ValueError`; the class name is the label metrics use for failures. */
export function exceptionClass(exception: string | null | undefined): string {
  if (!exception) return '';
  const match = /^\s*([A-Za-z_][\w.]*)/.exec(exception);
  return match?.[1] ?? '';
}
