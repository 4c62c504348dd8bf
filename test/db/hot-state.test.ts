// The collector's hot state reaches Redis, and readers accept only fresh, well-formed snapshots.

import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  HOT_STATE_MAX_AGE_SECONDS,
  HOT_STATE_MIN_INTERVAL_SECONDS,
  HOT_WORKERS_KEY,
  readWorkersSnapshot,
  type WorkersSnapshot,
} from '../../src/shared/hot-state';
import { createHotStatePublisher, type HotStatePublisher, PacedHotState } from '../../worker-collector/hot-state';

const REDIS = 'redis://127.0.0.1:6379/14';

describe('hot state', () => {
  const reader = new Redis(REDIS);
  afterAll(async () => {
    await reader.del(HOT_WORKERS_KEY);
    reader.disconnect();
  });

  it('is published to Redis with an expiry and read back', async () => {
    const publisher = createHotStatePublisher(REDIS, '');
    const now = Date.now() / 1000;
    const worker = {
      hostname: 'w1@host',
      status: 'online',
      pid: 1,
      freq: 2,
      clock: 3,
      active: 1,
      processed: 9,
      loadavg: [0.1, 0.2, 0.3],
      sw_ident: 'py-celery',
      sw_ver: '5.2.6',
      sw_sys: 'Linux',
      utcoffset: 0,
      heartbeats: [now],
      last_heartbeat: now,
      first_seen: now - 60,
      offline_at: null,
      events: { 'task-received': 9 },
    };
    // The client connects lazily: the first publish may race the connection.
    await expect
      .poll(
        async () => {
          await publisher.publish({ updated_at: now, workers: [worker] }).catch(() => undefined);
          return reader.get(HOT_WORKERS_KEY);
        },
        { timeout: 5_000 },
      )
      .not.toBeNull();
    expect(await reader.ttl(HOT_WORKERS_KEY)).toBeGreaterThan(0);
    // Online workers come back judged alive as of the snapshot's time (see readWorkersSnapshot).
    expect(readWorkersSnapshot(await reader.get(HOT_WORKERS_KEY), now + 1)).toEqual([{ ...worker, alive_as_of: now }]);
    await publisher.close();
  });

  it('is paced: a change at once, the next change a second later, heartbeat-only changes not before the refresh interval', async () => {
    const real = createHotStatePublisher(REDIS, '');
    // The real publisher, counted on its way.
    const sent: WorkersSnapshot[] = [];
    let done = 0;
    const counted: HotStatePublisher = {
      publish: (s) => {
        sent.push(s);
        return real.publish(s).finally(() => done++);
      },
      close: () => real.close(),
    };
    const errors: unknown[] = [];
    // Its clock read through Date at each call, so that the fake timers below move it too.
    const paced = new PacedHotState(
      counted,
      (error) => errors.push(error),
      () => Date.now(),
    );
    const t = Date.now() / 1000;
    const record = (processed: number, lastHeartbeat: number) => ({
      hostname: 'paced@host',
      status: 'online',
      pid: 1,
      freq: 2,
      clock: 1,
      active: 0,
      processed,
      loadavg: null,
      sw_ident: null,
      sw_ver: null,
      sw_sys: null,
      utcoffset: null,
      heartbeats: [lastHeartbeat],
      last_heartbeat: lastHeartbeat,
      first_seen: t,
      offline_at: null,
      events: {},
    });
    try {
      // Redis connects lazily: wait for the first snapshot to land.
      await expect
        .poll(
          async () => {
            paced.offer(() => ({ updated_at: Date.now() / 1000, workers: [record(1, t)] }));
            return reader.get(HOT_WORKERS_KEY).then((text) => text?.includes('paced@host') ?? false);
          },
          { timeout: 5_000, interval: 1_100 },
        )
        .toBe(true);
      const landed = sent.length;
      // Publishes before the connection was up failed (and were retried); none may fail from here on.
      errors.length = 0;
      // Heartbeats only: nothing goes out.
      for (let i = 1; i <= 5; i++) paced.offer(() => ({ updated_at: Date.now() / 1000, workers: [record(1, t + i)] }));
      // A task processed: held back to a second after the last publish, then sent with the newest state.
      paced.offer(() => ({ updated_at: Date.now() / 1000, workers: [record(2, t + 6)] }));
      expect(sent.length).toBe(landed);
      await expect.poll(() => sent.length, { timeout: 3_000 }).toBe(landed + 1);
      expect(sent.at(-1)!.workers[0]!.processed).toBe(2);
      expect(JSON.parse((await reader.get(HOT_WORKERS_KEY))!).workers[0].processed).toBe(2);
      await expect.poll(() => done, { timeout: 3_000 }).toBe(sent.length);
      // A heartbeat-only change: nothing goes out within the second a change would wait (timers faked
      // from here: they fire at once; Redis is not asked anything meanwhile).
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      try {
        paced.offer(() => ({ updated_at: Date.now() / 1000, workers: [record(2, t + 8)] }));
        vi.advanceTimersByTime(HOT_STATE_MIN_INTERVAL_SECONDS * 1000 + 200);
      } finally {
        vi.useRealTimers();
      }
      expect(sent.length).toBe(landed + 1);
      expect(errors).toEqual([]);
    } finally {
      await paced.close();
    }
  });

  it('ignores stale or malformed snapshots', () => {
    const now = 1_900_000_000;
    expect(readWorkersSnapshot(JSON.stringify({ updated_at: now - HOT_STATE_MAX_AGE_SECONDS - 1, workers: [] }), now)).toBeNull();
    expect(readWorkersSnapshot('{"updated_at": "soon", "workers": []}', now)).toBeNull();
    expect(readWorkersSnapshot('not json', now)).toBeNull();
    expect(readWorkersSnapshot(null, now)).toBeNull();
    expect(readWorkersSnapshot(JSON.stringify({ updated_at: now, workers: [] }), now)).toEqual([]);
  });

  it('refuses an Upstash URL without a token, and other schemes', () => {
    expect(() => createHotStatePublisher('https://eu1.upstash.io', '')).toThrow('needs --state-token');
    expect(() => createHotStatePublisher('memcached://x', '')).toThrow('use redis://');
  });
});
