// The control vocabulary the web app and the collector share: what can be
// asked, how a request travels (id, user, deadline), and what comes back,
// typed per command. The web app never talks to the broker; it sends these
// to the collector through a ControlClient (in-process locally, through
// Redis at the edge, signed: see command-signing.ts) and waits for the
// outcome.

import { INSPECT_METHODS, type InspectMethod, type WorkerInspect } from './inspect';

export const WORKER_ACTIONS = [
  'shutdown',
  'pool_restart',
  'pool_grow',
  'pool_shrink',
  'autoscale',
  'add_consumer',
  'cancel_consumer',
] as const;
export type WorkerAction = (typeof WORKER_ACTIONS)[number];

export type ControlCommand =
  /** Refresh the inspect replies of one worker, or of all; only `methods` when given (the others stay as stored). */
  | { kind: 'inspect'; worker?: string; methods?: InspectMethod[] }
  | { kind: 'worker'; action: WorkerAction; worker: string; args: Record<string, string | number | boolean> }
  | { kind: 'rate_limit'; task: string; worker: string; rate: string }
  | { kind: 'time_limit'; task: string; worker: string; soft: number | null; hard: number | null }
  | { kind: 'revoke'; task: string; terminate: boolean; signal: string }
  | { kind: 'abort'; task: string }
  /** Publish a task; `waitSeconds` > 0 waits for its result (Flower's apply). */
  | {
      kind: 'send';
      name: string;
      args: unknown[];
      kwargs: Record<string, unknown>;
      queue?: string;
      eta?: string;
      expires?: string;
      waitSeconds?: number;
    }
  | { kind: 'result'; task: string; waitSeconds?: number }
  | { kind: 'queues' }
  /**
   * Send each task again with its exact arguments (read from the result
   * backend's task meta, or from the event's argsrepr when it reads back
   * losslessly), in chunks of `chunk` with `pauseMs` between them; a dry run
   * only says which would go. `filters` describes a bulk selection, for the audit log.
   */
  | { kind: 'retry'; tasks: string[]; dryRun: boolean; chunk: number; pauseMs: number; filters?: Record<string, string> };

export interface CommandRequest {
  id: string;
  /** Who asked (an email, a basic-auth user, or 'anonymous'). */
  user: string;
  /** Seconds since the epoch after which the collector must not run it. */
  deadline: number;
  command: ControlCommand;
}

export type CommandKind = ControlCommand['kind'];

/** The most tasks one retry command carries (POST /api/tasks/retry's `limit`). */
export const MAX_RETRY_TASKS = 10_000;
export const MAX_RETRY_CHUNK = 1_000;
export const MAX_RETRY_PAUSE_MS = 10_000;

/** `retry`: the new task of each original that was sent (null on a dry run: it would be), and why each other was not. */
export interface RetryReport {
  tasks: Record<string, string | null>;
  refused: Record<string, string>;
}

/** `send` without waiting: the new task's id, and PENDING when a result backend will record its state. */
export interface SentTask {
  'task-id': string;
  state?: string | undefined;
}

/** `result` (and `send` with `waitSeconds`): the task's result as the backend has it; PENDING, result and traceback null, when it has none. */
export interface TaskResultReply {
  'task-id': string;
  status: string;
  result: unknown;
  traceback: string | null;
}

/** A queue's length as the broker reports it. */
export interface QueueLength {
  name: string;
  messages: number;
  /** RabbitMQ only (null on Redis). */
  ready: number | null;
  unacked: number | null;
  consumers: number | null;
}

/** What each command answers with when it succeeds (the collector's executor builds these). */
export interface CommandResults {
  /** The fresh inspect replies by worker hostname (a worker that did not answer is absent). */
  inspect: Record<string, WorkerInspect>;
  /** The worker's own answer, as text. */
  worker: string;
  rate_limit: string;
  time_limit: string;
  revoke: string;
  abort: string;
  send: SentTask | TaskResultReply;
  result: TaskResultReply;
  queues: QueueLength[];
  retry: RetryReport;
}

export type CommandResult<K extends CommandKind = CommandKind> = CommandResults[K];

export type CommandErrorStatus = 400 | 403 | 404 | 503 | 504;

export type CommandOutcome<K extends CommandKind = CommandKind> =
  | { ok: true; result: CommandResults[K] }
  | { ok: false; status: CommandErrorStatus; error: string };

/**
 * Sends control commands to the collector and waits for the outcome (at
 * most `waitSeconds`, then a 504 outcome). In-process locally
 * (worker-collector/control/in-process.ts); through a Redis list at the edge
 * (src/edge/control-client.ts).
 */
export interface ControlClient {
  run<C extends ControlCommand>(command: C, user: string, waitSeconds: number): Promise<CommandOutcome<C['kind']>>;
}

/**
 * `outcome` as the answer to `command`. An outcome crosses a process (or the
 * network, as JSON) from the collector's executor, which answers each kind
 * with its CommandResults entry; a ControlClient takes that on trust here,
 * the one place it does.
 */
export function outcomeFor<C extends ControlCommand>(_command: C, outcome: CommandOutcome): CommandOutcome<C['kind']> {
  return outcome as CommandOutcome<C['kind']>;
}

/** The list the collector reads commands from (Redis / Upstash). */
export const COMMAND_QUEUE_KEY = 'stalk:commands';
/** Each command's reply is pushed onto its own list, `stalk:reply:<id>`, that the Worker waits on (BLPOP). */
export const REPLY_KEY_PREFIX = 'stalk:reply:';
/** A reply list expires this long after the collector wrote it, collected or not. */
export const REPLY_TTL_SECONDS = 60;
/** The longest a web request waits for the collector. */
export const MAX_COMMAND_SECONDS = 60;

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 255;
const isNumberOrNull = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0);

/** Why a command is malformed, or null when it is one Stalk knows. */
export function validateCommand(command: Record<string, unknown>): string | null {
  switch (command.kind) {
    case 'inspect':
      if (command.worker !== undefined && !isString(command.worker)) return 'worker must be a name';
      return command.methods === undefined ||
        (Array.isArray(command.methods) &&
          command.methods.length > 0 &&
          command.methods.every((m) => (INSPECT_METHODS as readonly unknown[]).includes(m)))
        ? null
        : `methods must be some of ${INSPECT_METHODS.join(', ')}`;
    case 'worker':
      if (!(WORKER_ACTIONS as readonly unknown[]).includes(command.action)) return `unknown worker action '${String(command.action)}'`;
      if (!isString(command.worker)) return 'worker must be a name';
      return typeof command.args === 'object' && command.args !== null && !Array.isArray(command.args) ? null : 'args must be an object';
    case 'rate_limit':
      return isString(command.task) && isString(command.worker) && isString(command.rate) ? null : 'task, worker and rate are required';
    case 'time_limit':
      return isString(command.task) && isString(command.worker) && isNumberOrNull(command.soft) && isNumberOrNull(command.hard)
        ? null
        : 'task, worker and numeric soft/hard limits are required';
    case 'revoke':
      return isString(command.task) && typeof command.terminate === 'boolean' && isString(command.signal)
        ? null
        : 'task, terminate and signal are required';
    case 'abort':
      return isString(command.task) ? null : 'task is required';
    case 'send':
      if (!isString(command.name)) return 'task name is required';
      if (!Array.isArray(command.args)) return 'args must be an array';
      return typeof command.kwargs === 'object' && command.kwargs !== null && !Array.isArray(command.kwargs)
        ? null
        : 'kwargs must be an object';
    case 'result':
      return isString(command.task) ? null : 'task is required';
    case 'queues':
      return null;
    case 'retry':
      return validateRetry(command);
    default:
      return `unknown command '${String(command.kind)}'`;
  }
}

const isIntIn = (v: unknown, min: number, max: number) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function validateRetry(command: Record<string, unknown>): string | null {
  const { tasks, filters } = command;
  if (!Array.isArray(tasks) || tasks.length === 0 || tasks.length > MAX_RETRY_TASKS || !tasks.every(isString))
    return `tasks must be 1 to ${MAX_RETRY_TASKS} task ids`;
  if (typeof command.dryRun !== 'boolean') return 'dryRun must be a boolean';
  if (!isIntIn(command.chunk, 1, MAX_RETRY_CHUNK)) return `chunk must be 1 to ${MAX_RETRY_CHUNK}`;
  if (!isIntIn(command.pauseMs, 0, MAX_RETRY_PAUSE_MS)) return `pauseMs must be 0 to ${MAX_RETRY_PAUSE_MS}`;
  if (filters === undefined) return null;
  if (typeof filters !== 'object' || filters === null || Array.isArray(filters)) return 'filters must be an object';
  return Object.values(filters).every((v) => typeof v === 'string' && v.length <= 4096) ? null : 'filters must be text';
}
