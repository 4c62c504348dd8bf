// How often the collector publishes the hot state (worker-collector/hot-state.ts):
// changes the dashboard shows within a second, heartbeats alone every
// HOT_STATE_REFRESH_SECONDS, which readers' staleness limit leaves room for.

import { describe, expect, it } from 'vitest';
import { isWorkerAlive, type WorkerRecord } from '../../src/shared/workers';
import {
  HOT_STATE_MAX_AGE_SECONDS,
  HOT_STATE_MIN_INTERVAL_SECONDS,
  HOT_STATE_REFRESH_SECONDS,
  readWorkersSnapshot,
} from '../../src/shared/hot-state';
import { meaningfulFingerprint, pacingDecision } from '../../worker-collector/hot-state';

const T = 1_900_000_000;

function worker(overrides: Partial<WorkerRecord> = {}): WorkerRecord {
  return {
    hostname: 'w1@host',
    status: 'online',
    pid: 10,
    freq: 2,
    clock: 5,
    active: 0,
    processed: 3,
    loadavg: [0.1, 0.2, 0.3],
    sw_ident: 'py-celery',
    sw_ver: '5.2.6',
    sw_sys: 'Linux',
    utcoffset: 0,
    heartbeats: [T - 2, T],
    last_heartbeat: T,
    first_seen: T - 60,
    offline_at: null,
    events: { 'worker-heartbeat': 10, 'task-succeeded': 3 },
    ...overrides,
  };
}

describe('the meaningful fingerprint', () => {
  it('ignores heartbeat times, load averages, the clock and the heartbeat count', () => {
    const before = meaningfulFingerprint([worker()]);
    const heartbeat = worker({
      heartbeats: [T, T + 2],
      last_heartbeat: T + 2,
      loadavg: [0.5, 0.4, 0.3],
      clock: 9,
      events: { 'worker-heartbeat': 11, 'task-succeeded': 3 },
    });
    expect(meaningfulFingerprint([heartbeat])).toBe(before);
  });

  it.each<[string, Partial<WorkerRecord>]>([
    ['status', { status: 'offline', offline_at: T }],
    ['active tasks', { active: 1 }],
    ['processed tasks', { processed: 4 }],
    ['task events', { events: { 'worker-heartbeat': 10, 'task-succeeded': 4 } }],
    ['a restart', { pid: 11 }],
  ])('changes with %s', (_what, change) => {
    expect(meaningfulFingerprint([worker(change)])).not.toBe(meaningfulFingerprint([worker()]));
  });

  it('changes when a worker appears', () => {
    expect(meaningfulFingerprint([worker(), worker({ hostname: 'w2@host' })])).not.toBe(meaningfulFingerprint([worker()]));
  });
});

describe('the pacing', () => {
  const ms = T * 1000;
  it('publishes the first snapshot at once', () => {
    expect(pacingDecision(null, null, 'a', ms)).toEqual({ publish: 'now' });
  });

  it('publishes a meaningful change at once, or as soon as a second has passed since the last publish', () => {
    expect(pacingDecision(ms, 'a', 'b', ms + HOT_STATE_MIN_INTERVAL_SECONDS * 1000)).toEqual({ publish: 'now' });
    expect(pacingDecision(ms, 'a', 'b', ms + 300)).toEqual({ publish: 'later', at: ms + HOT_STATE_MIN_INTERVAL_SECONDS * 1000 });
  });

  it('publishes heartbeat-only (or no) changes only every refresh interval', () => {
    expect(pacingDecision(ms, 'a', 'a', ms + 2_000)).toEqual({ publish: 'no' });
    expect(pacingDecision(ms, 'a', 'a', ms + HOT_STATE_REFRESH_SECONDS * 1000 - 1)).toEqual({ publish: 'no' });
    expect(pacingDecision(ms, 'a', 'a', ms + HOT_STATE_REFRESH_SECONDS * 1000)).toEqual({ publish: 'now' });
  });

  it('retries a failed publish (its fingerprint never recorded) no faster than once a second', () => {
    expect(pacingDecision(ms, null, 'a', ms + 500)).toEqual({ publish: 'later', at: ms + 1_000 });
  });

  it('refreshes well within the age at which readers give up on a snapshot', () => {
    expect(HOT_STATE_REFRESH_SECONDS * 2).toBeLessThan(HOT_STATE_MAX_AGE_SECONDS);
    // An idle cluster: one publish per refresh interval, far under half a command a second.
    expect(1 / HOT_STATE_REFRESH_SECONDS).toBeLessThanOrEqual(0.1);
  });
});

describe('a snapshot read back', () => {
  it('judges an online worker alive as of the snapshot, its heartbeat times being up to a refresh interval old', () => {
    const published = worker({ last_heartbeat: T, freq: 2 });
    const read = readWorkersSnapshot(JSON.stringify({ updated_at: T + 1, workers: [published] }), T + HOT_STATE_REFRESH_SECONDS);
    expect(read).toEqual([{ ...published, alive_as_of: T + 1 }]);
    expect(isWorkerAlive(read![0]!, T + HOT_STATE_REFRESH_SECONDS)).toBe(true);
    // The same record straight from the database is judged now: its heartbeat expired.
    expect(isWorkerAlive(published, T + HOT_STATE_REFRESH_SECONDS)).toBe(false);
  });

  it('still judges a worker whose heartbeat had expired when the snapshot was taken as not alive', () => {
    const published = worker({ last_heartbeat: T - 10, freq: 2 });
    const read = readWorkersSnapshot(JSON.stringify({ updated_at: T, workers: [published] }), T + 1);
    expect(isWorkerAlive(read![0]!, T + 1)).toBe(false);
  });

  it('leaves offline workers as they are', () => {
    const offline = worker({ status: 'offline', offline_at: T });
    expect(readWorkersSnapshot(JSON.stringify({ updated_at: T, workers: [offline] }), T + 1)).toEqual([offline]);
  });
});
