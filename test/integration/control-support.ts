// Helpers for the control tests (test/integration/control-api.test.ts and
// test/e2e/control.test.ts): Celery workers with the options startWorker does
// not offer (autoscale, other concurrency), Stalk's API over HTTP with POST,
// the audit page read as rows, and cleanup of the queues a test created on
// the shared brokers.

import { connect } from 'amqplib';
import { Redis } from 'ioredis';
import { BINDING_PREFIX } from '../../worker-collector/kombu-wire';
import { redisQueueKeys } from '../../worker-collector/control/task-message';
import { parseBrokerUrl } from '../../worker-collector/transport/broker-url';
import { CELERY_DIR, type CeleryTarget, type CeleryWorker, celeryEnv, PYTHON } from '../support/celery';
import { spawnManaged, waitFor } from '../support/processes';
import type { Stalk } from '../support/stalk';

export interface ControlWorkerOptions extends CeleryTarget {
  hostname: string;
  /** Pool options; default `-c 1`. */
  pool?: string[];
  readyTimeoutMs?: number;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `celery worker -E` on `queue` (Celery's task_default_queue through STALK_TEST_QUEUE), ready when it says so. */
export async function startControlWorker(options: ControlWorkerOptions): Promise<CeleryWorker> {
  const args = [
    '-m',
    'celery',
    '-A',
    'stalk_tasks',
    'worker',
    '-n',
    options.hostname,
    '-E',
    '--loglevel=INFO',
    '--without-gossip',
    '--without-mingle',
    ...(options.pool ?? ['-c', '1']),
  ];
  const proc = spawnManaged(`celery worker ${options.hostname}`, PYTHON, args, { cwd: CELERY_DIR, env: celeryEnv(options) });
  try {
    await proc.waitForOutput(new RegExp(`${escapeRegExp(options.hostname)} ready\\.`), options.readyTimeoutMs ?? 30_000);
  } catch (error) {
    await proc.stop(5_000);
    throw error;
  }
  return { hostname: options.hostname, process: proc, stop: (graceMs = 20_000) => proc.stop(graceMs) };
}

export interface Answer {
  status: number;
  text: string;
  /** The body as JSON (throws with the text when it is not JSON). */
  json<T = Record<string, unknown>>(): T;
  /** Milliseconds the request took. */
  ms: number;
}

/** A request to Stalk: `body` as JSON when given; query parameters belong in `path`. */
export async function request(stalk: Stalk, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 60_000): Promise<Answer> {
  const started = Date.now();
  const response = await fetch(stalk.baseUrl + path, {
    method,
    signal: AbortSignal.timeout(timeoutMs),
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    text,
    ms: Date.now() - started,
    json<T>() {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new Error(`${method} ${path}: HTTP ${response.status}, not JSON: ${text}`);
      }
    },
  };
}

export const post = (stalk: Stalk, path: string, body?: unknown, timeoutMs?: number) => request(stalk, 'POST', path, body, timeoutMs);
export const get = (stalk: Stalk, path: string, timeoutMs?: number) => request(stalk, 'GET', path, undefined, timeoutMs);

/** What /api/workers?refresh=1 tells about one worker (Flower's shape: inspect replies and event facts). */
export interface InspectedWorker {
  hostname: string;
  status: boolean;
  timestamp?: number;
  stats?: {
    pid?: number;
    pool?: { 'max-concurrency'?: number; processes?: number[] };
    autoscaler?: { max?: number; min?: number; qty?: number };
    [key: string]: unknown;
  };
  active_queues?: { name: string; [key: string]: unknown }[];
  registered?: string[];
  conf?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Fresh inspect replies of one worker through Stalk (GET /api/workers?refresh=1&workername=). */
export async function inspectWorker(stalk: Stalk, hostname: string): Promise<InspectedWorker> {
  const answer = await get(stalk, `/api/workers?refresh=1&workername=${encodeURIComponent(hostname)}`);
  if (answer.status !== 200) throw new Error(`/api/workers?refresh=1&workername=${hostname}: HTTP ${answer.status}: ${answer.text}`);
  const worker = answer.json<Record<string, InspectedWorker>>()[hostname];
  if (!worker) throw new Error(`/api/workers?refresh=1 has no ${hostname}: ${answer.text}`);
  return worker;
}

/**
 * Wait until Stalk knows the worker (its events arrived) and the worker answers inspect (it
 * subscribes to its pidbox slightly after printing "ready").
 */
export async function waitUntilAnswering(stalk: Stalk, hostname: string, timeoutMs = 30_000): Promise<InspectedWorker> {
  const since = Date.now() / 1000 - 1;
  return waitFor(
    async () => {
      const worker = await inspectWorker(stalk, hostname);
      return worker.stats && (worker.timestamp ?? 0) >= since ? worker : null;
    },
    timeoutMs,
    `${hostname} to answer inspect through Stalk`,
    200,
  );
}

export function poolProcesses(worker: InspectedWorker): number {
  const processes = worker.stats?.pool?.processes;
  if (!Array.isArray(processes)) throw new Error(`stats.pool.processes missing: ${JSON.stringify(worker.stats?.pool)}`);
  return processes.length;
}

/** One task as /api/task/info gives it (null while Stalk does not know it). */
export interface TaskInfo {
  uuid: string;
  name: string | null;
  state: string;
  started: number | null;
  received: number | null;
  revoked: number | null;
  result: string | null;
  exception: string | null;
  worker: string | null;
}

export async function taskInfo(stalk: Stalk, id: string): Promise<TaskInfo | null> {
  const answer = await get(stalk, `/api/task/info/${id}`);
  if (answer.status === 404) return null;
  if (answer.status !== 200) throw new Error(`/api/task/info/${id}: HTTP ${answer.status}: ${answer.text}`);
  return answer.json<TaskInfo>();
}

export async function waitForTaskState(stalk: Stalk, id: string, states: string[], timeoutMs: number): Promise<TaskInfo> {
  return waitFor(
    async () => {
      const info = await taskInfo(stalk, id);
      return info && states.includes(info.state) ? info : null;
    },
    timeoutMs,
    `task ${id} in ${states.join('/')}`,
    200,
  );
}

export interface AuditRow {
  id: number;
  ok: boolean;
  user: string;
  action: string;
  target: string;
  arguments: string;
  outcome: string;
}

const decodeEntities = (text: string) =>
  text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** The rows of the /audit page's table, newest first. */
export function auditRows(html: string): AuditRow[] {
  const rows: AuditRow[] = [];
  for (const match of html.matchAll(/<tr data-audit="(\d+)" data-ok="(true|false)">([\s\S]*?)<\/tr>/g)) {
    const cells = [...match[3]!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((cell) =>
      decodeEntities(cell[1]!.replace(/<[^>]+>/g, '')).trim(),
    );
    rows.push({
      id: Number(match[1]),
      ok: match[2] === 'true',
      user: cells[1] ?? '',
      action: cells[2] ?? '',
      target: cells[3] ?? '',
      arguments: cells[4] ?? '',
      outcome: cells[5] ?? '',
    });
  }
  return rows;
}

/** Delete queues (and what Celery and kombu declared with them) from a shared broker. */
export async function deleteQueues(broker: string, queues: string[]): Promise<void> {
  if (queues.length === 0) return;
  if (broker.startsWith('redis')) {
    const redis = new Redis(broker, { maxRetriesPerRequest: 2 });
    try {
      await redis.del(...queues.flatMap((q) => [...redisQueueKeys(q), `${BINDING_PREFIX}${q}`]));
    } finally {
      redis.disconnect();
    }
    return;
  }
  const connection = await connect(parseBrokerUrl(broker).url);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    for (const name of queues) {
      await channel.deleteQueue(name).catch(() => undefined);
      await channel.deleteExchange(name).catch(() => undefined);
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Delete task results from the result backend. */
export async function deleteResults(backend: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const redis = new Redis(backend, { maxRetriesPerRequest: 2 });
  try {
    await redis.del(...ids.map((id) => `celery-task-meta-${id}`));
  } finally {
    redis.disconnect();
  }
}
