// LOST against every state, in the in-memory merge (the SQL merge is held to
// the same rules by test/db/lost.test.ts): the marking keeps the replaced
// state's key, so a later event of any state wins and clears the reason, an
// older or duplicate one does not, a final one always wins, and a client's
// task-sent never undoes a worker's LOST.

import { describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/shared/celery-events';
import type { NewTaskRow } from '../../src/shared/schema';
import { LOST, TASK_STATES } from '../../src/shared/task-states';
import { formatDuration, LostTracker, lostSweep, neverReceivedReason, offlineReason } from '../../worker-collector/fold/lost';
import { expireWorkers, foldWorkerEvent, newWorker, type WorkerState } from '../../worker-collector/fold/worker';
import { failed, received, retried, revoked, sent, started, succeeded, workerEvent } from '../fixtures/events';
import { foldTaskEvent, mergeTaskRows } from '../support/fold';
import { taskRowFromEvent } from '../../worker-collector/fold/task';

const story = { uuid: 'lost-1', name: 'tasks.slow', worker: 'w1@host' };
const T = 1_800_000_000;

/** What the store's UPDATE does to a row: state and reason, the key untouched. */
function markedLost(row: NewTaskRow, reason = 'worker w1@host went offline'): NewTaskRow {
  return { ...row, state: LOST, state_reason: reason };
}

const rejected = (at: number): TaskEvent => ({ ...started(story, at), type: 'task-rejected' });
const custom = (at: number): TaskEvent => ({ ...started(story, at), type: 'task-progress' });

/** Every event a task can get, by the state it claims. */
const EVENTS: [string, (at: number) => TaskEvent][] = [
  ['PENDING', (at) => sent(story, at)],
  ['RECEIVED', (at) => received(story, at)],
  ['STARTED', (at) => started(story, at)],
  ['RETRY', (at) => retried(story, at)],
  ['REJECTED', rejected],
  ['PROGRESS', custom],
  ['SUCCESS', (at) => succeeded(story, at)],
  ['FAILURE', (at) => failed(story, at)],
  ['REVOKED', (at) => revoked(story, at)],
];
const FINAL = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

function lostFromStarted(): NewTaskRow {
  let row = foldTaskEvent(undefined, sent(story, T - 2));
  row = foldTaskEvent(row, received(story, T - 1));
  row = foldTaskEvent(row, started(story, T));
  expect(row.state).toBe('STARTED');
  return markedLost(row);
}

describe('LOST in the merge', () => {
  it('is a task state the filters offer', () => {
    expect(TASK_STATES).toContain(LOST);
  });

  it.each(EVENTS)('a later %s event wins over LOST and clears the reason', (state, event) => {
    const merged = mergeTaskRows(lostFromStarted(), taskRowFromEvent(event(T + 5)));
    if (state === 'PENDING') {
      // A client's task-sent ranks below every worker state, whenever it came.
      expect(merged.state).toBe(LOST);
      expect(merged.state_reason).toBe('worker w1@host went offline');
    } else {
      expect(merged.state).toBe(state);
      expect(merged.state_reason).toBeNull();
    }
  });

  it.each(EVENTS)('an older %s event leaves LOST unless it is final', (state, event) => {
    const merged = mergeTaskRows(lostFromStarted(), taskRowFromEvent(event(T - 5)));
    expect(merged.state).toBe(FINAL.has(state) ? state : LOST);
    expect(merged.state_reason).toBe(FINAL.has(state) ? null : 'worker w1@host went offline');
  });

  it('a duplicate of the event LOST replaced leaves it (equal keys keep the stored side)', () => {
    const merged = mergeTaskRows(lostFromStarted(), taskRowFromEvent(started(story, T)));
    expect(merged.state).toBe(LOST);
    // ...while the times it carries still merge.
    expect(merged.started).toBe(T);
  });

  it('converges to the same row whichever order the later events and the marking come in', () => {
    const lost = lostFromStarted();
    const late = [received(story, T + 1), started(story, T + 2), succeeded(story, T + 3)];
    let forward = lost;
    for (const e of late) forward = mergeTaskRows(forward, taskRowFromEvent(e));
    let backward = lost;
    for (const e of [...late].reverse()) backward = mergeTaskRows(backward, taskRowFromEvent(e));
    expect(forward.state).toBe('SUCCESS');
    expect(backward).toEqual(forward);
  });

  it('a sent task marked LOST comes back with its first worker event', () => {
    const lost = markedLost(foldTaskEvent(undefined, sent(story, T)), 'sent at ..., never received within 1h');
    expect(mergeTaskRows(lost, taskRowFromEvent(sent(story, T))).state).toBe(LOST);
    const back = mergeTaskRows(lost, taskRowFromEvent(received(story, T + 3600)));
    expect(back.state).toBe('RECEIVED');
    expect(back.state_reason).toBeNull();
  });
});

describe('what a sweep judges', () => {
  const online = (hostname: string): WorkerState => ({ ...newWorker(hostname, T), status: 'online', heartbeats: [T] });

  it('names each offline worker with when and how it went, and nothing when there is nothing to judge', () => {
    const expired: WorkerState = { ...online('dead@host'), status: 'offline', offline_at: T + 4 };
    const said: WorkerState = { ...online('bye@host'), status: 'offline', heartbeats: [], offline_at: T + 9 };
    expect(lostSweep([online('up@host')], 0, T + 10)).toBeNull();
    expect(lostSweep([online('up@host'), expired, said], 3600, T + 10)).toEqual({
      offline: [
        { hostname: 'dead@host', at: T + 4, how: 'heartbeat' },
        { hostname: 'bye@host', at: T + 9, how: 'event' },
      ],
      revived: [],
      lostAfter: 3600,
      now: T + 10,
    });
    // Only the --lost-after rule: still a sweep.
    expect(lostSweep([online('up@host')], 60, T)).toEqual({ offline: [], revived: [], lostAfter: 60, now: T });
  });

  it('words its reasons with the worker, the time and the cause', () => {
    expect(offlineReason({ hostname: 'w1@host', at: Date.UTC(2026, 11, 2, 7, 10, 3) / 1000, how: 'heartbeat' })).toBe(
      'worker w1@host went offline at 2026-12-02 07:10:03 UTC (heartbeats stopped)',
    );
    expect(offlineReason({ hostname: 'w1@host', at: Date.UTC(2026, 11, 2, 7, 10, 3) / 1000, how: 'event' })).toMatch(
      /\(worker-offline event\)$/,
    );
    expect(neverReceivedReason(Date.UTC(2026, 11, 2, 6, 0, 0) / 1000, 3600)).toBe(
      'sent at 2026-12-02 06:00:00 UTC, never received within 1h',
    );
    expect([formatDuration(86_400), formatDuration(90), formatDuration(120), formatDuration(1.5)]).toEqual(['1d', '90s', '2m', '1500ms']);
  });
});

describe('workers that come back', () => {
  const HOST = 'w1@host';
  const beat = (at: number, pid = 100) => workerEvent('worker-heartbeat', HOST, at, { pid, freq: 2 });

  /** A registry and tracker where HOST sent heartbeats, then stopped; swept once after its expiry. */
  function expiredWorker() {
    const tracker = new LostTracker(3600);
    const workers = new Map<string, WorkerState>();
    const fold = (event: ReturnType<typeof beat>) => {
      tracker.event(event);
      workers.set(HOST, foldWorkerEvent(workers.get(HOST), event));
    };
    fold(beat(T));
    fold(beat(T + 2));
    for (const w of expireWorkers(workers.values(), T + 7)) {
      workers.set(w.hostname, w);
      tracker.workerExpired(w);
    }
    const first = tracker.sweep(workers, (T + 7) * 1000)!;
    expect(first.offline).toEqual([{ hostname: HOST, at: T + 7, how: 'heartbeat' }]);
    expect(first.revived).toEqual([]);
    return { tracker, workers, fold };
  }
  const reason = offlineReason({ hostname: HOST, at: T + 7, how: 'heartbeat' });

  it('the same process heard again gets its tasks back, once', () => {
    const { tracker, workers, fold } = expiredWorker();
    fold(beat(T + 20));
    const sweep = tracker.sweep(workers, (T + 20) * 1000)!;
    expect(sweep.revived).toEqual([{ hostname: HOST, reason }]);
    expect(sweep.offline).toEqual([]);
    expect(tracker.sweep(workers, (T + 40) * 1000)?.revived ?? []).toEqual([]);
  });

  it('a restarted worker (worker-online first, or another pid) does not', () => {
    const restarted = expiredWorker();
    restarted.fold({ ...beat(T + 20), type: 'worker-online' });
    restarted.fold(beat(T + 22));
    expect(restarted.tracker.sweep(restarted.workers, (T + 22) * 1000)?.revived ?? []).toEqual([]);

    const other = expiredWorker();
    other.fold(beat(T + 20, 200));
    expect(other.tracker.sweep(other.workers, (T + 20) * 1000)?.revived ?? []).toEqual([]);
  });

  it('sweeps when something changed, else every 15 s', () => {
    const { tracker, workers } = expiredWorker();
    expect(tracker.sweep(workers, (T + 8) * 1000)).toBeNull();
    expect(tracker.sweep(workers, (T + 22) * 1000)).not.toBeNull();
    tracker.event(workerEvent('worker-offline', 'other@host', T + 23));
    expect(tracker.sweep(workers, (T + 23) * 1000)).not.toBeNull();
  });
});
