// Publishing the hot state: in memory for the local all-in-one mode, and to
// Redis (TCP) or Upstash (REST) for the Worker at the edge, paced so that
// an idle cluster costs little: a change the dashboard shows (a worker
// online or offline, tasks counted) goes out within a second, while
// heartbeats alone (times, load averages) are republished every
// HOT_STATE_REFRESH_SECONDS, which also keeps the snapshot from going stale.

import { Redis } from 'ioredis';
import {
  HOT_STATE_MIN_INTERVAL_SECONDS,
  HOT_STATE_REFRESH_SECONDS,
  HOT_STATE_TTL_SECONDS,
  HOT_WORKERS_KEY,
  type WorkersSnapshot,
} from '../src/shared/hot-state';
import { upstashRest, type UpstashRest } from '../src/shared/upstash-rest';

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

/** Upstash's REST API: one POST per command. */
class UpstashPublisher implements HotStatePublisher {
  private readonly rest: UpstashRest;
  constructor(url: string, token: string) {
    this.rest = upstashRest(url, token);
  }
  async publish(snapshot: WorkersSnapshot): Promise<void> {
    await this.rest.command(['SET', HOT_WORKERS_KEY, JSON.stringify(snapshot), 'EX', HOT_STATE_TTL_SECONDS], { timeoutMs: 5_000 });
  }
  async close(): Promise<void> {}
}

/** redis://, rediss:// (TCP) or https:// (Upstash REST, needs a token). */
export function createHotStatePublisher(url: string, token: string): HotStatePublisher {
  if (/^rediss?:\/\//i.test(url)) return new RedisPublisher(url);
  if (/^https?:\/\//i.test(url)) {
    if (!token) throw new Error('--state-url: an Upstash REST URL needs --state-token (or UPSTASH_REDIS_REST_TOKEN)');
    return new UpstashPublisher(url, token);
  }
  throw new Error(`--state-url: use redis://, rediss:// or an Upstash https:// URL`);
}

/**
 * What a reader would see change, heartbeats aside: everything but the
 * heartbeat times, load averages, the Lamport clock and the heartbeat count.
 */
export function meaningfulFingerprint(workers: WorkersSnapshot['workers']): string {
  return JSON.stringify(
    workers.map((w) => {
      const { 'worker-heartbeat': _heartbeats, ...events } = w.events;
      return [
        w.hostname,
        w.status,
        w.pid,
        w.freq,
        w.active,
        w.processed,
        w.sw_ident,
        w.sw_ver,
        w.sw_sys,
        w.utcoffset,
        w.first_seen,
        w.offline_at,
        events,
      ];
    }),
  );
}

export type PacingDecision = { publish: 'now' } | { publish: 'later'; at: number } | { publish: 'no' };

/**
 * When to publish (times in ms): a meaningful change once
 * HOT_STATE_MIN_INTERVAL_SECONDS have passed since the last publish (later
 * otherwise), anything else once HOT_STATE_REFRESH_SECONDS have.
 */
export function pacingDecision(lastAt: number | null, lastFingerprint: string | null, fingerprint: string, now: number): PacingDecision {
  if (lastAt === null) return { publish: 'now' };
  const since = now - lastAt;
  if (fingerprint !== lastFingerprint) {
    const at = lastAt + HOT_STATE_MIN_INTERVAL_SECONDS * 1000;
    return since >= HOT_STATE_MIN_INTERVAL_SECONDS * 1000 ? { publish: 'now' } : { publish: 'later', at };
  }
  return since >= HOT_STATE_REFRESH_SECONDS * 1000 ? { publish: 'now' } : { publish: 'no' };
}

/**
 * A publisher behind pacingDecision. One publish at a time, so snapshots
 * never overtake each other on the way; a change held back is published
 * when its time comes, from the newest state, and a timer republishes
 * HOT_STATE_REFRESH_SECONDS after the last publish whatever the flushes do.
 */
export class PacedHotState {
  private lastAt: number | null = null;
  /** Of the last snapshot that reached Redis (a failed publish is retried on the next offer). */
  private lastFingerprint: string | null = null;
  private latest: (() => WorkersSnapshot) | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = 0;
  private inFlight = false;
  private offeredWhileInFlight = false;
  private closed = false;

  constructor(
    private readonly publisher: HotStatePublisher,
    private readonly onError: (error: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** The current state, as a function so that a snapshot is only built when it may be needed. */
  offer(build: () => WorkersSnapshot): void {
    if (this.closed) return;
    this.latest = build;
    if (this.inFlight) {
      this.offeredWhileInFlight = true;
      return;
    }
    const snapshot = build();
    const fingerprint = meaningfulFingerprint(snapshot.workers);
    const now = this.now();
    const decision = pacingDecision(this.lastAt, this.lastFingerprint, fingerprint, now);
    if (decision.publish === 'now') void this.publish(snapshot, fingerprint, now);
    else if (decision.publish === 'later') this.offerAt(decision.at);
  }

  /** Offer the newest state again at `at` (ms), unless an earlier offer is due already. */
  private offerAt(at: number): void {
    if (this.closed || (this.timer && this.timerAt <= at)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.latest) this.offer(this.latest);
      },
      Math.max(0, at - this.now()),
    );
    this.timer.unref?.();
  }

  private async publish(snapshot: WorkersSnapshot, fingerprint: string, now: number): Promise<void> {
    this.inFlight = true;
    this.lastAt = now;
    try {
      await this.publisher.publish(snapshot);
      this.lastFingerprint = fingerprint;
    } catch (error) {
      this.onError(error);
    } finally {
      this.inFlight = false;
    }
    this.offerAt(now + HOT_STATE_REFRESH_SECONDS * 1000);
    if (this.offeredWhileInFlight && this.latest) {
      this.offeredWhileInFlight = false;
      this.offer(this.latest);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.publisher.close();
  }
}
