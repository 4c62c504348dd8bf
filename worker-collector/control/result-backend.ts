// Celery's Redis result backend (celery/backends/redis.py, base.py): results
// are JSON under `celery-task-meta-<id>`, written with SETEX (result_expires,
// one day by default) and PUBLISHed on a channel of the same name. Also the
// small connection helpers redis.ts builds on (here, so that neither module
// imports the other in a circle).

import { Redis } from 'ioredis';
import { errorMessage, type Logger } from '../../src/shared/log';
import { createBackoff } from '../transport/backoff';
import { maskUrl } from '../transport/broker-url';
import type { ResultBackend, TaskResult } from './types';

export const NOOP_LOGGER: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return NOOP_LOGGER;
  },
};

export interface RedisControlOptions {
  log?: Logger;
  /** How long a command waits for a connection that is (re)connecting before it fails. Default 2 s. */
  connectWaitMs?: number;
}

/** Where a client connects: a BrokerUrl fits, as does a parsed result backend URL. */
export interface RedisTarget {
  url: string;
  tls: boolean;
  /** The URL with the password masked. */
  display: string;
}

/** An ioredis client for commands that must fail fast while Redis is down (nothing is queued offline). */
export function commandClient(target: RedisTarget, name: string, isStopping: () => boolean): Redis {
  const backoff = createBackoff();
  const client = new Redis(target.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 5_000,
    connectionName: name,
    retryStrategy: () => (isStopping() ? null : backoff.next()),
    ...(target.tls ? { tls: {} } : {}),
  });
  client.on('ready', () => backoff.reset());
  // Errors surface through the commands that fail; without a listener ioredis would print them.
  client.on('error', () => undefined);
  return client;
}

const firstConnect = new WeakMap<Redis, Promise<void>>();

/**
 * Resolve once `client` is ready, connecting it if it never was; reject with a
 * clear Error when Redis cannot be reached within `waitMs`.
 */
export async function ready(client: Redis, what: string, waitMs: number): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'end') throw new Error(`connection to ${what} is closed`);
  if (client.status === 'wait') {
    // The first commands on a fresh client share one connection attempt.
    let attempt = firstConnect.get(client);
    if (!attempt) {
      attempt = client.connect();
      firstConnect.set(client, attempt);
    }
    try {
      await attempt;
      return;
    } catch (error) {
      throw new Error(`${what} is unreachable: ${errorMessage(error)}`);
    }
  }
  // connecting, connect or reconnecting: give it a moment.
  await new Promise<void>((resolve, reject) => {
    let lastError = '';
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error) => {
      lastError = error.message;
    };
    const onEnd = () => {
      cleanup();
      reject(new Error(`${what} is unreachable${lastError ? `: ${lastError}` : ''}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} is unreachable (not connected after ${waitMs} ms${lastError ? `; ${lastError}` : ''})`));
    }, waitMs);
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
    };
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
  });
}

/** An Error that names what failed (`broker redis://…: …`). */
export function failure(what: string, error: unknown): Error {
  const message = errorMessage(error);
  return new Error(message.includes(what) ? message : `${what}: ${message}`);
}

/** Parse Celery's result_backend URL (redis:// or rediss://; db from the path, password from the user info). */
export function parseResultBackendUrl(raw: string): RedisTarget & { db: number } {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new Error(`result backend '${maskUrl(raw)}' is not a URL`);
  }
  const scheme = parsed.protocol.replace(/:$/, '').toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss') {
    throw new Error(`result backend '${maskUrl(raw)}': only redis:// and rediss:// backends are supported`);
  }
  const path = parsed.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (!Number.isInteger(db) || db < 0) throw new Error(`result backend '${maskUrl(raw)}': database '${path}' is not a number`);
  return { url: raw, tls: scheme === 'rediss', db, display: `result backend ${maskUrl(raw)}` };
}

/** Celery's task_keyprefix. */
export const TASK_META_PREFIX = 'celery-task-meta-';
/** celery.states.READY_STATES. */
export const READY_STATES: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);
/** celery.contrib.abortable.ABORTED. */
export const ABORTED = 'ABORTED';
/** Celery's default result_expires (one day). */
export const DEFAULT_RESULT_EXPIRES_SECONDS = 86_400;

/**
 * What AbortableAsyncResult(id).abort() writes from a client: store_result(id,
 * None, 'ABORTED') outside a task, so children is None and, ABORTED not being a
 * ready state, date_done is None. Python's json separators (", ", ": ").
 */
export function abortedMeta(id: string): string {
  return `{"status": "ABORTED", "result": null, "traceback": null, "children": null, "date_done": null, "task_id": ${JSON.stringify(id)}}`;
}

// Celery's _store_result never overwrites SUCCESS (it reads the current state
// first); done here in one step, so a task finishing meanwhile keeps its result.
const ABORT_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, meta = pcall(cjson.decode, current)
  if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then return 0 end
end
local ttl = tonumber(ARGV[2])
if ttl and ttl > 0 then
  redis.call('SETEX', KEYS[1], ttl, ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
`;

export interface RedisResultBackendOptions extends RedisControlOptions {
  /** Celery's result_expires, used when abort() writes the state; 0 = no expiry. Default one day. */
  resultExpiresSeconds?: number;
  /** How often wait() reads the result. Default 100 ms. */
  pollIntervalMs?: number;
}

/** Parse stored result meta; throws when it is not a JSON object (e.g. a pickle result_serializer). */
export function parseTaskMeta(id: string, raw: string): TaskResult {
  let meta: unknown;
  try {
    meta = JSON.parse(raw);
  } catch {
    throw new Error(`the result of task ${id} is not JSON (Stalk reads result_serializer='json' only)`);
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new Error(`the result of task ${id} is not a JSON object`);
  const m = meta as Record<string, unknown>;
  return {
    task_id: typeof m.task_id === 'string' ? m.task_id : id,
    status: typeof m.status === 'string' ? m.status : 'PENDING',
    result: m.result ?? null,
    traceback: typeof m.traceback === 'string' ? m.traceback : null,
    date_done: typeof m.date_done === 'string' ? m.date_done : null,
  };
}

export class RedisResultBackend implements ResultBackend {
  readonly target: RedisTarget & { db: number };
  private readonly client: Redis;
  private readonly connectWaitMs: number;
  private readonly expires: number;
  private readonly pollIntervalMs: number;
  private closed = false;

  constructor(url: string, options: RedisResultBackendOptions = {}) {
    this.target = parseResultBackendUrl(url);
    this.connectWaitMs = options.connectWaitMs ?? 2_000;
    this.expires = options.resultExpiresSeconds ?? DEFAULT_RESULT_EXPIRES_SECONDS;
    this.pollIntervalMs = options.pollIntervalMs ?? 100;
    this.client = commandClient(this.target, 'stalk-results', () => this.closed);
  }

  static key(id: string): string {
    return `${TASK_META_PREFIX}${id}`;
  }

  private async connected(): Promise<Redis> {
    if (this.closed) throw new Error('result backend client is closed');
    try {
      await ready(this.client, this.target.display, this.connectWaitMs);
    } catch (error) {
      throw failure(this.target.display, error);
    }
    return this.client;
  }

  async get(id: string): Promise<TaskResult | null> {
    const client = await this.connected();
    let raw: string | null;
    try {
      raw = await client.get(RedisResultBackend.key(id));
    } catch (error) {
      throw failure(this.target.display, error);
    }
    return raw === null ? null : parseTaskMeta(id, raw);
  }

  async wait(id: string, timeoutMs: number): Promise<TaskResult | null> {
    const deadline = Date.now() + Math.max(0, timeoutMs);
    for (;;) {
      const result = await this.get(id);
      if (result && READY_STATES.has(result.status)) return result;
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) return result;
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.pollIntervalMs, left)));
    }
  }

  async abort(id: string): Promise<void> {
    const client = await this.connected();
    try {
      await client.eval(ABORT_SCRIPT, 1, RedisResultBackend.key(id), abortedMeta(id), String(this.expires));
    } catch (error) {
      throw failure(this.target.display, error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client.quit().catch(() => undefined);
    this.client.disconnect();
  }
}
