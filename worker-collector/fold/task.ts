// Pure folding of task events into partial task rows (no I/O).

import type { TaskEvent } from '../../src/shared/celery-events';
import type { NewTaskRow } from '../../src/shared/schema';
import { stateForEvent, stateKey, timeFieldForEvent } from '../../src/shared/task-states';
import { cutText } from '../../src/shared/text';

// Task names, hostnames and queues repeat across thousands of buffered
// tasks, but every decoded event carries its own copy of each: buffered rows
// keep one shared copy instead (a bounded table, emptied when full).
const SHARED_LIMIT = 10_000;
const shared = new Map<string, string>();

function share(text: string | null): string | null {
  if (text === null || text.length > 255) return text;
  const known = shared.get(text);
  if (known !== undefined) return known;
  if (shared.size >= SHARED_LIMIT) shared.clear();
  shared.set(text, text);
  return text;
}

/** The row one event alone says about its task (written into `into` when given, to spare an allocation). */
export function taskRowFromEvent(event: TaskEvent, into?: NewTaskRow): NewTaskRow {
  const state = stateForEvent(event.type);
  const sentByClient = event.type === 'task-sent';
  const timeField = timeFieldForEvent(event.type);
  const at = event.timestamp;
  const row = into ?? ({} as NewTaskRow);
  row.uuid = event.uuid;
  row.name = share(event.name);
  row.state = state;
  row.state_key = stateKey(state, at);
  row.timestamp = at;
  row.clock = event.clock;
  row.sent = timeField === 'sent' ? at : null;
  row.received = timeField === 'received' ? at : null;
  row.started = timeField === 'started' ? at : null;
  row.succeeded = timeField === 'succeeded' ? at : null;
  row.failed = timeField === 'failed' ? at : null;
  row.retried = timeField === 'retried' ? at : null;
  row.revoked = timeField === 'revoked' ? at : null;
  row.rejected = timeField === 'rejected' ? at : null;
  row.args = event.args;
  row.kwargs = event.kwargs;
  row.result = event.result;
  row.exception = event.exception;
  row.traceback = event.traceback;
  row.worker = sentByClient ? null : share(event.hostname || null);
  row.client = sentByClient ? share(event.hostname || null) : null;
  row.runtime = event.runtime;
  row.retries = event.retries;
  row.eta = event.eta;
  row.expires = event.expires;
  row.root_id = event.root_id;
  row.parent_id = event.parent_id;
  row.queue = share(event.queue);
  row.exchange = share(event.exchange);
  row.routing_key = share(event.routing_key);
  row.state_reason = null;
  return row;
}

/** One event of a task's timeline: what happened, when, where, and its own facts. */
export interface TimelineEntry {
  type: string;
  timestamp: number;
  hostname: string;
  clock: number;
  /** The event's own fields (retries, runtime, exception, ...), or null when it has none. */
  data: TimelineData | null;
}

export interface TimelineData {
  retries?: number;
  eta?: string;
  expires?: string;
  queue?: string;
  runtime?: number;
  exception?: string;
  terminated?: boolean;
  signum?: string;
  expired?: boolean;
  requeue?: boolean;
}

// The big texts (args, kwargs, result, traceback) live once, on the task row;
// an exception is kept short here because the row has it whole.
const TIMELINE_TEXT_LIMIT = 1_024;

export function timelineEntry(event: TaskEvent): TimelineEntry {
  let data: TimelineData | null = null;
  if (event.retries !== null) (data ??= {}).retries = event.retries;
  if (event.eta !== null) (data ??= {}).eta = event.eta;
  if (event.expires !== null) (data ??= {}).expires = event.expires;
  if (event.queue !== null) (data ??= {}).queue = event.queue;
  if (event.runtime !== null) (data ??= {}).runtime = event.runtime;
  if (event.exception !== null) (data ??= {}).exception = cutText(event.exception, TIMELINE_TEXT_LIMIT);
  if (event.terminated !== null) (data ??= {}).terminated = event.terminated;
  if (event.signum !== null) (data ??= {}).signum = event.signum;
  if (event.expired !== null) (data ??= {}).expired = event.expired;
  if (event.requeue !== null) (data ??= {}).requeue = event.requeue;
  return { type: event.type, timestamp: event.timestamp, hostname: share(event.hostname)!, clock: event.clock, data };
}

/** `ValueError('x')` -> `ValueError`; the class name is the label metrics use for failures. */
export function exceptionClass(exception: string | null | undefined): string {
  if (!exception) return '';
  const match = /^\s*([A-Za-z_][\w.]*)/.exec(exception);
  return match?.[1] ?? '';
}
