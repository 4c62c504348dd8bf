// The collector's hot state reaches Redis, and readers accept only fresh, well-formed snapshots.

import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { HOT_STATE_MAX_AGE_SECONDS, HOT_WORKERS_KEY, readWorkersSnapshot } from '../../src/shared/hot-state';
import { createHotStatePublisher } from '../../worker-collector/hot-state';

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
      hostname: 'w1@host', status: 'online', pid: 1, freq: 2, clock: 3, active: 1, processed: 9, loadavg: [0.1, 0.2, 0.3],
      sw_ident: 'py-celery', sw_ver: '5.2.6', sw_sys: 'Linux', utcoffset: 0, heartbeats: [now], last_heartbeat: now,
      first_seen: now - 60, offline_at: null, events: { 'task-received': 9 },
    };
    // The client connects lazily: the first publish may race the connection.
    await expect.poll(async () => {
      await publisher.publish({ updated_at: now, workers: [worker] }).catch(() => undefined);
      return reader.get(HOT_WORKERS_KEY);
    }, { timeout: 5_000 }).not.toBeNull();
    expect(await reader.ttl(HOT_WORKERS_KEY)).toBeGreaterThan(0);
    expect(readWorkersSnapshot(await reader.get(HOT_WORKERS_KEY), now + 1)).toEqual([worker]);
    await publisher.close();
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
