// The worker record's rules, written once in src/shared/workers.ts for the
// dashboard, the API, the metrics and the hot state: alive, purged, and
// numbers read back from a database that answers them as strings.

import { describe, expect, it } from 'vitest';
import type { WorkerRow } from '../../src/shared/schema';
import {
  isPurged,
  isWorkerAlive,
  judgeWorkers,
  storedNumber,
  storedNumberList,
  type WorkerLiveness,
  workerRecordFromRow,
} from '../../src/shared/workers';

const T = 1_900_000_000;

function worker(overrides: Partial<WorkerLiveness> = {}): WorkerLiveness {
  return { hostname: 'w1@host', status: 'online', freq: 2, last_heartbeat: T, offline_at: null, first_seen: T - 600, ...overrides };
}

describe('alive', () => {
  it('while online and heard from within twice the heartbeat interval (60 s when the worker never said)', () => {
    expect(isWorkerAlive(worker(), T + 3.9)).toBe(true);
    expect(isWorkerAlive(worker(), T + 4)).toBe(false);
    expect(isWorkerAlive(worker({ freq: null }), T + 119)).toBe(true);
    expect(isWorkerAlive(worker({ freq: null }), T + 120)).toBe(false);
    expect(isWorkerAlive(worker({ status: 'offline' }), T)).toBe(false);
    expect(isWorkerAlive(worker({ last_heartbeat: null }), T)).toBe(false);
  });

  it('as of a hot-state snapshot: never later than the snapshot, so its old heartbeat times still count', () => {
    expect(isWorkerAlive(worker({ alive_as_of: T + 1 }), T + 30)).toBe(true);
    expect(isWorkerAlive(worker({ alive_as_of: T + 5 }), T + 30)).toBe(false);
    expect(isWorkerAlive(worker({ alive_as_of: T + 30 }), T + 1)).toBe(true);
  });
});

describe('purged', () => {
  it('only when not alive, with a purge time, and silent for longer than it (since the heartbeat, else going offline, else first seen)', () => {
    expect(isPurged(worker(), true, T + 1_000, 60)).toBe(false);
    expect(isPurged(worker(), false, T + 1_000, 0)).toBe(false);
    expect(isPurged(worker(), false, T + 60, 60)).toBe(false);
    expect(isPurged(worker(), false, T + 61, 60)).toBe(true);
    expect(isPurged(worker({ last_heartbeat: null, offline_at: T + 100 }), false, T + 161, 60)).toBe(true);
    expect(isPurged(worker({ last_heartbeat: null, offline_at: T + 100 }), false, T + 160, 60)).toBe(false);
    expect(isPurged(worker({ last_heartbeat: null }), false, T - 539, 60)).toBe(true);
  });

  it('leaves the judged list, which keeps the order it was given', () => {
    const workers = [
      worker({ hostname: 'b' }),
      worker({ hostname: 'a', status: 'offline', last_heartbeat: T - 1_000 }),
      worker({ hostname: 'c', status: 'offline' }),
    ];
    expect(judgeWorkers(workers, T + 1, 60).map((w) => [w.hostname, w.alive])).toEqual([
      ['b', true],
      ['c', false],
    ]);
    expect(judgeWorkers(workers, T + 1).map((w) => w.hostname)).toEqual(['b', 'a', 'c']);
  });
});

describe('stored numbers', () => {
  it('are read from strings (databases over HTTP send BIGINT and DOUBLE so), null staying null', () => {
    expect(storedNumber('42')).toBe(42);
    expect(storedNumber('1.5')).toBe(1.5);
    expect(storedNumber(null)).toBeNull();
    expect(storedNumber(undefined)).toBeNull();
    expect(storedNumberList('[0.5, "1.5"]')).toEqual([0.5, 1.5]);
    expect(storedNumberList('{"a": 1}')).toBeNull();
    expect(storedNumberList('not json')).toBeNull();
    expect(storedNumberList(null)).toBeNull();
  });

  it('make a record of a row whose numbers came back as text', () => {
    const row = {
      hostname: 'w1@host',
      status: 'online',
      pid: '10',
      freq: '2.0',
      clock: '7',
      active: null,
      processed: '3',
      loadavg: '[0.1,0.2,0.3]',
      sw_ident: 'py-celery',
      sw_ver: '5.4.0',
      sw_sys: 'Linux',
      utcoffset: '0',
      heartbeats: `[${T - 2},${T}]`,
      last_heartbeat: String(T),
      first_seen: String(T - 600),
      offline_at: null,
    } as unknown as WorkerRow;
    expect(workerRecordFromRow(row, { 'worker-heartbeat': 2 })).toEqual({
      hostname: 'w1@host',
      status: 'online',
      pid: 10,
      freq: 2,
      clock: 7,
      active: null,
      processed: 3,
      loadavg: [0.1, 0.2, 0.3],
      sw_ident: 'py-celery',
      sw_ver: '5.4.0',
      sw_sys: 'Linux',
      utcoffset: 0,
      heartbeats: [T - 2, T],
      last_heartbeat: T,
      first_seen: T - 600,
      offline_at: null,
      events: { 'worker-heartbeat': 2 },
    });
  });
});
