import { describe, expect, it } from 'vitest';
import { expireWorkers, foldWorkerEvent, touchWorker, workerFromRow, workerToRow } from '../../worker-collector/fold/worker';
import { isWorkerAlive } from '../../src/shared/workers';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { workerEvent } from '../fixtures/events';

/** The web app's alive rule on the collector's folded state, as it is stored. */
const isAlive = (worker: WorkerState, now: number) => isWorkerAlive(workerToRow(worker), now);

describe('folding worker events', () => {
  it('comes online with its facts and keeps the last four heartbeats', () => {
    let worker = foldWorkerEvent(undefined, workerEvent('worker-online', 'w1@h', 100));
    for (let t = 102; t <= 112; t += 2) worker = foldWorkerEvent(worker, workerEvent('worker-heartbeat', 'w1@h', t, { active: 3 }));
    expect(worker).toMatchObject({ status: 'online', freq: 2, active: 3, sw_ver: '5.2.6', first_seen: 100 });
    expect(worker.heartbeats).toEqual([106, 108, 110, 112]);
    expect(isAlive(worker, 115)).toBe(true);
    expect(isAlive(worker, 116)).toBe(false);
  });

  it('goes offline on worker-offline and clears its heartbeats', () => {
    const online = foldWorkerEvent(undefined, workerEvent('worker-online', 'w1@h', 100));
    const offline = foldWorkerEvent(online, workerEvent('worker-offline', 'w1@h', 101));
    expect(offline).toMatchObject({ status: 'offline', heartbeats: [], offline_at: 101 });
    expect(isAlive(offline, 101)).toBe(false);
  });

  it('expires workers whose heartbeats stopped (twice the interval)', () => {
    const worker = foldWorkerEvent(undefined, workerEvent('worker-heartbeat', 'w1@h', 100, { freq: 5 }));
    expect(expireWorkers([worker], 109.9)).toEqual([]);
    const [expired] = expireWorkers([worker], 110);
    expect(expired).toMatchObject({ hostname: 'w1@h', status: 'offline', offline_at: 110 });
  });

  it('treats a task event as a heartbeat, creating the worker if it was never seen', () => {
    const worker = touchWorker(undefined, 'w9@h', 50);
    expect(worker).toMatchObject({ hostname: 'w9@h', status: 'online', heartbeats: [50], freq: null });
    // Celery's default interval (60 s) applies until the worker says its own.
    expect(isAlive(worker, 169)).toBe(true);
    expect(isAlive(worker, 171)).toBe(false);
  });

  it('round-trips through its database row', () => {
    const worker = foldWorkerEvent(undefined, workerEvent('worker-online', 'w1@h', 100));
    expect(workerFromRow(workerToRow(worker))).toEqual(worker);
  });
});
