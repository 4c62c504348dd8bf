// Publishing the hot state: in memory for the local all-in-one mode, and to
// Redis (TCP) or Upstash (REST) for the Worker at the edge.

import { Redis } from 'ioredis';
import { HOT_STATE_TTL_SECONDS, HOT_WORKERS_KEY, type WorkersSnapshot } from '../src/shared/hot-state';

export interface HotStatePublisher {
  publish(snapshot: WorkersSnapshot): Promise<void>;
  close(): Promise<void>;
}

class RedisPublisher implements HotStatePublisher {
  private readonly client: Redis;
  constructor(url: string) {
    this.client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    this.client.on('error', () => undefined);
    this.client.connect().catch(() => undefined);
  }
  async publish(snapshot: WorkersSnapshot): Promise<void> {
    await this.client.set(HOT_WORKERS_KEY, JSON.stringify(snapshot), 'EX', HOT_STATE_TTL_SECONDS);
  }
  async close(): Promise<void> {
    this.client.disconnect();
  }
}

/** Upstash's REST API: one POST per command, a JSON array, Bearer token. */
class UpstashPublisher implements HotStatePublisher {
  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}
  async publish(snapshot: WorkersSnapshot): Promise<void> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(['SET', HOT_WORKERS_KEY, JSON.stringify(snapshot), 'EX', HOT_STATE_TTL_SECONDS]),
      signal: AbortSignal.timeout(5_000),
    });
    const body = (await response.json().catch(() => ({}))) as { error?: string };
    if (!response.ok || body.error) throw new Error(`Upstash answered ${response.status}: ${body.error ?? 'no result'}`);
  }
  async close(): Promise<void> {}
}

/** redis://, rediss:// (TCP) or https:// (Upstash REST, needs a token). */
export function createHotStatePublisher(url: string, token: string): HotStatePublisher {
  if (/^rediss?:\/\//i.test(url)) return new RedisPublisher(url);
  if (/^https?:\/\//i.test(url)) {
    if (!token) throw new Error('--state-url: an Upstash REST URL needs --state-token (or UPSTASH_REDIS_REST_TOKEN)');
    return new UpstashPublisher(url.replace(/\/+$/, ''), token);
  }
  throw new Error(`--state-url: use redis://, rediss:// or an Upstash https:// URL`);
}
