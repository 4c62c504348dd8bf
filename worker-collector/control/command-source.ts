// Where the collector takes commands from and leaves replies: the Redis list
// `stalk:commands`, over TCP (redis://, rediss:// — Upstash speaks the Redis
// protocol over TLS too) or over Upstash's REST API (https://).
//
// Both block on the list (BRPOP) for up to BLOCK_SECONDS, so an idle
// collector sends about one command per BLOCK_SECONDS instead of polling.
// Stopping never waits for the block to end: the TCP connection is dropped
// (Redis forgets the blocked client) or the HTTP request aborted.
// Each reply goes onto its own list (LPUSH + EXPIRE in one transaction) for
// the Worker's BLPOP.

import { Redis } from 'ioredis';
import { COMMAND_QUEUE_KEY, REPLY_KEY_PREFIX, REPLY_TTL_SECONDS } from '../../src/shared/control';
import { BLOCKING_MARGIN_MS, upstashRest, type UpstashRest } from '../../src/shared/upstash-rest';
import { createBackoff } from '../transport/backoff';

/** How long one pop blocks: the idle cost is one command per this many seconds. */
export const BLOCK_SECONDS = 25;

export interface CommandSource {
  /** The next raw request, or null when none came within BLOCK_SECONDS (or the source closed). */
  next(): Promise<string | null>;
  /** Push `text` onto the reply list of command `id`, which expires after REPLY_TTL_SECONDS. */
  reply(id: string, text: string): Promise<void>;
  /** Stop at once, abandoning a pop in progress. */
  close(): Promise<void>;
}

class RedisSource implements CommandSource {
  /** Blocked in BRPOP most of the time, so replies need a connection of their own. */
  private readonly reader: Redis;
  private readonly writer: Redis;
  private closed = false;
  constructor(url: string) {
    const options = { maxRetriesPerRequest: null, retryStrategy: () => createBackoff().next() };
    // A pop that outlives its block by far means a dead connection nobody told us about.
    this.reader = new Redis(url, { ...options, commandTimeout: BLOCK_SECONDS * 1000 + BLOCKING_MARGIN_MS });
    this.writer = new Redis(url, options);
    this.reader.on('error', () => undefined);
    this.writer.on('error', () => undefined);
  }
  async next(): Promise<string | null> {
    try {
      const popped = await this.reader.brpop(COMMAND_QUEUE_KEY, BLOCK_SECONDS);
      return popped ? popped[1] : null;
    } catch (error) {
      if (this.closed) return null;
      throw error;
    }
  }
  async reply(id: string, text: string): Promise<void> {
    const key = `${REPLY_KEY_PREFIX}${id}`;
    const results = await this.writer.multi().lpush(key, text).expire(key, REPLY_TTL_SECONDS).exec();
    const failed = results?.find(([error]) => error)?.[0];
    if (!results || failed) throw failed ?? new Error('the reply transaction was discarded');
  }
  async close(): Promise<void> {
    this.closed = true;
    this.reader.disconnect();
    this.writer.disconnect();
  }
}

class UpstashSource implements CommandSource {
  private readonly rest: UpstashRest;
  private readonly stopping = new AbortController();
  constructor(url: string, token: string) {
    this.rest = upstashRest(url, token);
  }
  async next(): Promise<string | null> {
    try {
      const popped = await this.rest.command(['BRPOP', COMMAND_QUEUE_KEY, BLOCK_SECONDS], {
        timeoutMs: BLOCK_SECONDS * 1000 + BLOCKING_MARGIN_MS,
        signal: this.stopping.signal,
      });
      return Array.isArray(popped) && typeof popped[1] === 'string' ? popped[1] : null;
    } catch (error) {
      if (this.stopping.signal.aborted) return null;
      throw error;
    }
  }
  async reply(id: string, text: string): Promise<void> {
    const key = `${REPLY_KEY_PREFIX}${id}`;
    await this.rest.transaction([
      ['LPUSH', key, text],
      ['EXPIRE', key, REPLY_TTL_SECONDS],
    ]);
  }
  async close(): Promise<void> {
    this.stopping.abort(new Error('the collector is stopping'));
  }
}

/** redis://, rediss:// (TCP) or https:// (Upstash REST, needs the token). */
export function createCommandSource(url: string, token: string): CommandSource {
  return /^https?:\/\//i.test(url) ? new UpstashSource(url, token) : new RedisSource(url);
}
