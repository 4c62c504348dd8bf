// The broker-facing parts of control, one implementation per broker
// (control/redis.ts, control/amqp.ts). Formats: docs/celery-protocol.md (#broadcast-control-pidbox).

import type { QueueLength } from '../../src/shared/control';

export interface BroadcastOptions {
  /** Worker hostnames; undefined or an empty list broadcasts to every worker (control/pidbox.ts). */
  destination?: string[];
  /** How long to collect replies (Flower's inspect_timeout; default 1 s). */
  timeoutMs: number;
  /** Wait for replies (inspect and most control commands); false for fire-and-forget (revoke, enable_events). */
  reply: boolean;
  /** Stop collecting once this many workers answered (defaults to the number of destinations; none without destinations). */
  limit?: number;
}

/** Replies by worker hostname, e.g. { "w1@host": { "ok": "pong" } }. */
export type Replies = Record<string, unknown>;

export interface Mailbox {
  /**
   * Broadcast a pidbox command (celery.pidbox fanout exchange) and, when
   * asked, collect the replies matching its ticket from this mailbox's reply
   * queue until every destination answered or the timeout passed. Rejects
   * only when the broker cannot be reached; a timeout resolves with what
   * arrived (possibly {}).
   */
  call(method: string, args: Record<string, unknown>, options: BroadcastOptions): Promise<Replies>;
  close(): Promise<void>;
}

export interface OutgoingTask {
  name: string;
  /** Defaults to a new uuid4. */
  id?: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  /** Defaults to "celery". */
  queue?: string;
  /** ISO 8601 time before which the task must not run. */
  eta?: string;
  /** ISO 8601 time after which the task is discarded. */
  expires?: string;
  priority?: number;
  /**
   * The body's args and kwargs as JSON text, sent as given instead of
   * `args`/`kwargs` serialized (a retry keeps `1.0` a float; JSON.stringify
   * would write `1`). `args`/`kwargs` still give argsrepr and kwargsrepr.
   */
  exactJson?: { args: string; kwargs: string };
}

export interface TaskPublisher {
  /** Publish a Celery protocol-2 task message; resolves with the task id once the broker has it. */
  send(task: OutgoingTask): Promise<string>;
  close(): Promise<void>;
}

/** The `queues` command's result, so it is typed with the contract (src/shared/control.ts). */
export type { QueueLength };

export interface QueueProbe {
  /** Lengths of the named queues; a queue that does not exist has 0 messages. */
  lengths(names: string[]): Promise<QueueLength[]>;
  close(): Promise<void>;
}

export interface TaskResult {
  task_id: string;
  status: string;
  result: unknown;
  traceback: string | null;
  date_done: string | null;
}

export interface ResultBackend {
  /** The stored result, or null when the backend has none (yet). */
  get(id: string): Promise<TaskResult | null>;
  /** Wait up to timeoutMs for a ready state (SUCCESS, FAILURE, REVOKED); resolves with the latest known result or null. */
  wait(id: string, timeoutMs: number): Promise<TaskResult | null>;
  /** celery.contrib.abortable: mark the task ABORTED so an AbortableTask stops. */
  abort(id: string): Promise<void>;
  /** The stored task meta as the backend holds it (JSON text), or null: what a retry reads args from (result_extended). */
  raw?(id: string): Promise<string | null>;
  close(): Promise<void>;
}
