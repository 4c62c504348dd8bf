// Queue lengths from RabbitMQ's management HTTP API (Flower's --broker-api):
// ready and unacknowledged messages and consumers of every queue in the
// broker's vhost, in one request. The API's numbers are RabbitMQ's periodic
// statistics (every 5 s by default), so they lag a little behind a passive
// queue.declare; a queue created since the last collection has no numbers
// yet and is measured through the fallback probe (AMQP) when there is one.

import { createLogger, createRateLimitedLog, errorMessage, type Logger } from '../../src/shared/log';
import type { BrokerUrl } from '../transport/broker-url';
import type { QueueLength, QueueProbe } from './types';

const API_TIMEOUT_MS = 2_000;
const COLUMNS = 'name,messages,messages_ready,messages_unacknowledged,consumers';

export interface RabbitMqApiOptions {
  /** Asked when the API fails, and for queues the API has no numbers for yet. */
  fallback?: QueueProbe | undefined;
  log?: Logger | undefined;
  timeoutMs?: number;
}

interface ApiQueue {
  name?: unknown;
  messages?: unknown;
  messages_ready?: unknown;
  messages_unacknowledged?: unknown;
  consumers?: unknown;
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

/** The vhost a normalised broker URL names ('/' for Celery's '//' or none). */
export function vhostOf(broker: BrokerUrl): string {
  const path = new URL(broker.url).pathname.replace(/^\//, '');
  return path === '' ? '/' : decodeURIComponent(path);
}

export class RabbitMqApiQueueProbe implements QueueProbe {
  /** `<api>/queues/<vhost>?columns=...`, without credentials (fetch refuses them in URLs). */
  readonly endpoint: string;
  private readonly authorization: string | undefined;
  private readonly display: string;
  private readonly fallback: QueueProbe | undefined;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly warn: (key: string, message: string) => void;

  constructor(apiUrl: string, broker: BrokerUrl, options: RabbitMqApiOptions = {}) {
    let api: URL;
    try {
      api = new URL(apiUrl);
    } catch {
      throw new Error(
        `--broker-api: '${apiUrl.replace(/\/\/([^:/@]*):([^@/]*)@/, '//$1:****@')}' is not a URL (expected http://user:pass@host:15672/api/)`,
      );
    }
    if (api.protocol !== 'http:' && api.protocol !== 'https:')
      throw new Error(`--broker-api: use http:// or https://, not ${api.protocol}//`);
    // Credentials from the API URL, else the broker's (as Flower does).
    const source = api.username ? api : new URL(broker.url);
    const user = decodeURIComponent(source.username);
    const password = decodeURIComponent(source.password);
    this.authorization = user ? `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}` : undefined;
    api.username = '';
    api.password = '';
    api.search = '';
    api.hash = '';
    // http://host:15672 means the API at /api/; otherwise the given path is the API root.
    if (api.pathname === '' || api.pathname === '/') api.pathname = '/api/';
    if (!api.pathname.endsWith('/')) api.pathname += '/';
    this.display = api.toString();
    this.endpoint = `${this.display}queues/${encodeURIComponent(vhostOf(broker))}?columns=${COLUMNS}`;
    this.fallback = options.fallback;
    this.log = options.log ?? createLogger('control.rabbitmq-api');
    this.timeoutMs = options.timeoutMs ?? API_TIMEOUT_MS;
    this.warn = createRateLimitedLog((message) => this.log.warn(message), 60_000);
  }

  async lengths(names: string[]): Promise<QueueLength[]> {
    let listed: Map<string, ApiQueue>;
    try {
      listed = await this.fetchQueues();
    } catch (error) {
      if (!this.fallback) throw error;
      this.warn('api', `${errorMessage(error)}; measuring queues over AMQP instead`);
      return this.fallback.lengths(names);
    }
    const lengths = new Map<string, QueueLength>();
    const unmeasured: string[] = [];
    for (const name of names) {
      const queue = listed.get(name);
      if (!queue) {
        // Not in the vhost: it does not exist.
        lengths.set(name, { name, messages: 0, ready: 0, unacked: 0, consumers: 0 });
        continue;
      }
      const ready = count(queue.messages_ready);
      const unacked = count(queue.messages_unacknowledged);
      const messages = count(queue.messages) ?? (ready !== null && unacked !== null ? ready + unacked : null);
      if (messages === null && this.fallback) {
        unmeasured.push(name);
        continue;
      }
      lengths.set(name, { name, messages: messages ?? 0, ready, unacked, consumers: count(queue.consumers) });
    }
    if (unmeasured.length > 0 && this.fallback) {
      for (const length of await this.fallback.lengths(unmeasured)) lengths.set(length.name, length);
    }
    return names.map((name) => lengths.get(name) ?? { name, messages: 0, ready: null, unacked: null, consumers: null });
  }

  private async fetchQueues(): Promise<Map<string, ApiQueue>> {
    let response: Response;
    try {
      response = await fetch(this.endpoint, {
        headers: { accept: 'application/json', ...(this.authorization ? { authorization: this.authorization } : {}) },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
      const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : '';
      const reason =
        (error as Error).name === 'TimeoutError'
          ? `no answer within ${this.timeoutMs / 1000} s`
          : `${errorMessage(error)}${detail ? `: ${detail}` : ''}`;
      throw new Error(`RabbitMQ management API ${this.display} unreachable (${reason})`);
    }
    const text = await response.text().catch(() => '');
    if (!response.ok) {
      let reason = text.slice(0, 200);
      try {
        const body = JSON.parse(text) as { error?: unknown; reason?: unknown };
        if (typeof body.reason === 'string') reason = `${String(body.error)}: ${body.reason}`;
      } catch {
        // Not JSON: keep the text.
      }
      throw new Error(`RabbitMQ management API ${this.display} answered ${response.status}${reason ? ` (${reason})` : ''}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`RabbitMQ management API ${this.display} answered something that is not JSON`);
    }
    // Paged answers ({items: [...]}) when a proxy or a default adds paging.
    const items = Array.isArray(body)
      ? body
      : Array.isArray((body as { items?: unknown })?.items)
        ? (body as { items: unknown[] }).items
        : null;
    if (!items) throw new Error(`RabbitMQ management API ${this.display} answered an unexpected shape (not a list of queues)`);
    const queues = new Map<string, ApiQueue>();
    for (const item of items) {
      if (typeof item === 'object' && item !== null && typeof (item as ApiQueue).name === 'string')
        queues.set((item as { name: string }).name, item as ApiQueue);
    }
    return queues;
  }

  async close(): Promise<void> {
    await this.fallback?.close();
  }
}
