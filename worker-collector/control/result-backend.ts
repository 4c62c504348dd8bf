// Celery's Redis result backend (celery/backends/redis.py, base.py): results
// are JSON under `celery-task-meta-<id>`, written with SETEX (result_expires,
// one day by default) and PUBLISHed on a channel of the same name.

import type { Redis } from 'ioredis';
import { commandClient, failure, ready, type RedisControlOptions, type RedisTarget } from '../redis-connection';
import { maskUrl } from '../transport/broker-url';
import type { ResultBackend, TaskResult } from './types';

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

  async raw(id: string): Promise<string | null> {
    const client = await this.connected();
    try {
      return await client.get(RedisResultBackend.key(id));
    } catch (error) {
      throw failure(this.target.display, error);
    }
  }

  async get(id: string): Promise<TaskResult | null> {
    const raw = await this.raw(id);
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
