// Celery task states and the order in which they win.
//
// Celery's own State applies events in arrival order, so a late or duplicated
// event can move a task backwards (a `task-retried` arriving after
// `task-succeeded` leaves it in RETRY). Stalk instead gives every event a
// sortable *state key* and keeps the state of the greatest key. Taking a
// maximum is commutative, associative and idempotent, so any order or
// repetition of the same events converges to the same row, in memory and in
// the SQL upsert alike.
//
// The key orders events by:
//   1. class: PENDING (sent by a client) < in-flight states < final states;
//   2. for final states, Celery's precedence (SUCCESS > FAILURE > REVOKED),
//      then time;
//   3. for in-flight states (RECEIVED, STARTED, RETRY, REJECTED, custom), time,
//      then Celery's precedence for events in the same microsecond. Time
//      decides here because a task legitimately goes STARTED -> RETRY ->
//      RECEIVED -> STARTED when it retries.
//
// LOST is Stalk's own state, never an event's: the collector sets it on a
// RECEIVED or STARTED task whose worker went offline, or on a PENDING task
// never received in time (worker-collector/store/lost.ts). It keeps the state
// key of the state it replaced and the merge keeps the stored side on equal
// keys, so LOST ranks just below that event: any later real event (a greater
// key) wins and clears it, while a duplicate or older one leaves it. It is
// never set on a final state.

import { cutText } from './text';

export const PENDING = 'PENDING';
export const RECEIVED = 'RECEIVED';
export const STARTED = 'STARTED';
export const SUCCESS = 'SUCCESS';
export const FAILURE = 'FAILURE';
export const REVOKED = 'REVOKED';
export const REJECTED = 'REJECTED';
export const RETRY = 'RETRY';
export const LOST = 'LOST';

export const TASK_STATES = [PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, REVOKED, REJECTED, RETRY, LOST] as const;
/** The states a task is marked LOST from when its worker goes offline. */
export const LOSABLE_STATES: readonly string[] = [RECEIVED, STARTED];

/** Event type -> the state it moves a task to, and the task field that records its time. */
const EVENT_STATE: Record<string, { state: string; field: TaskTimeField }> = {
  'task-sent': { state: PENDING, field: 'sent' },
  'task-received': { state: RECEIVED, field: 'received' },
  'task-started': { state: STARTED, field: 'started' },
  'task-succeeded': { state: SUCCESS, field: 'succeeded' },
  'task-failed': { state: FAILURE, field: 'failed' },
  'task-retried': { state: RETRY, field: 'retried' },
  'task-revoked': { state: REVOKED, field: 'revoked' },
  'task-rejected': { state: REJECTED, field: 'rejected' },
};

export const TASK_TIME_FIELDS = ['sent', 'received', 'started', 'succeeded', 'failed', 'retried', 'revoked', 'rejected'] as const;
export type TaskTimeField = (typeof TASK_TIME_FIELDS)[number];

/** Longest state kept: the width of the tasks.state column (migration 001). */
export const MAX_STATE_LENGTH = 32;

/**
 * The state a task event implies; unknown `task-<x>` events give the custom
 * state `X`, as in Celery, cut to fit its column (a type may be 64
 * characters, and upper-casing can lengthen text: 'ß' becomes 'SS').
 */
export function stateForEvent(type: string): string {
  return EVENT_STATE[type]?.state ?? cutText(type.slice('task-'.length).toUpperCase(), MAX_STATE_LENGTH);
}

export function timeFieldForEvent(type: string): TaskTimeField | undefined {
  return EVENT_STATE[type]?.field;
}

const FINAL_RANK: Record<string, number> = { [SUCCESS]: 3, [FAILURE]: 2, [REVOKED]: 1 };
/** The states a task never leaves by the merge (the ones SQLite's text index covers, migration 003). */
export const FINAL_STATES: readonly string[] = Object.keys(FINAL_RANK);
// Celery's precedence among in-flight states; custom states sit where Celery
// puts unknown ones (above STARTED).
const IN_FLIGHT_RANK: Record<string, number> = { [STARTED]: 5, [RECEIVED]: 4, [REJECTED]: 3, [RETRY]: 2 };
const CUSTOM_RANK = 7;

export function isFinalState(state: string): boolean {
  return state in FINAL_RANK;
}

/**
 * A fixed-width string that sorts like the event's claim on the task state.
 * 19 characters: class digit, then rank and time (final) or time and rank.
 */
export function stateKey(state: string, timestamp: number): string {
  const micros = Math.max(0, Math.min(Number.MAX_SAFE_INTEGER, Math.round(timestamp * 1e6)));
  const time = micros.toString().padStart(17, '0');
  if (state === PENDING) return `0${time}0`;
  const final = FINAL_RANK[state];
  if (final !== undefined) return `2${final}${time}`;
  return `1${time}${IN_FLIGHT_RANK[state] ?? CUSTOM_RANK}`;
}
