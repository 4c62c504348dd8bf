// A cluster's worth of stored state for the /metrics tests, written through
// the real store (fold, payload, writer) as the collector writes it. Every
// expected number in the tests follows from the events below.

import type { TaskEvent } from '../../src/shared/celery-events';
import type { CollectorStatusTable } from '../../src/shared/schema';
import { createLogger } from '../../src/shared/log';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { buildFlushPayload } from '../../worker-collector/store/payload';
import { StoreWriter } from '../../worker-collector/store/writer';
import { failed, received, retried, revoked, sent, started, succeeded, type TaskStory, workerEvent } from '../fixtures/events';

/** The scrape time the tests pass to the app. */
export const NOW = 1_900_000_000;

export const ALPHA = 'alpha@web-1';
export const BETA = 'beta@web-1';
/** Went offline 600 s before NOW. */
export const GAMMA = 'gamma@web-2';
/** Online, but its last heartbeat (100 s before NOW) has expired. */
export const DELTA = 'delta@web-3';
export const CLIENT = 'gen42@app-1';

let serial = 0;
const story = (name: string, worker: string): TaskStory => ({ uuid: `m-${name}-${++serial}`, name, worker, client: CLIENT });
const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace('Z', '+00:00');

/** sent -> received (+0.1) -> started (+0.2) -> succeeded with `runtime`. */
function ran(name: string, worker: string, at: number, runtime: number): TaskEvent[] {
  const s = story(name, worker);
  return [sent(s, at), received(s, at + 0.1), started(s, at + 0.2), succeeded(s, at + 0.2 + runtime, '1', runtime)];
}

function failing(worker: string, at: number, exception: string): TaskEvent[] {
  const s = story('tasks.fail', worker);
  return [sent(s, at), received(s, at + 0.1), started(s, at + 0.2), failed(s, at + 0.3, exception)];
}

export function clusterEvents(): { tasks: TaskEvent[]; workers: { type: string; hostname: string; at: number; active?: number }[] } {
  const t = NOW - 1000;
  const tasks: TaskEvent[] = [];
  // tasks.add on alpha: runtimes in four buckets, queue waits of 0.2 s.
  tasks.push(
    ...ran('tasks.add', ALPHA, t, 0.003),
    ...ran('tasks.add', ALPHA, t + 1, 0.02),
    ...ran('tasks.add', ALPHA, t + 2, 0.3),
    ...ran('tasks.add', ALPHA, t + 3, 12),
  );
  // tasks.add with an eta 5 s after sending, started 6 s after: it waited 1 s in the queue.
  const eta = story('tasks.add', ALPHA);
  tasks.push(
    { ...sent(eta, t + 10), eta: iso(t + 15) },
    { ...received(eta, t + 10.1), eta: iso(t + 15) },
    started(eta, t + 16),
    succeeded(eta, t + 16.5, '1', 0.5),
  );
  // The worker's clock behind the client's: started before sent, a wait of 0.
  const skew = story('tasks.skew', ALPHA);
  tasks.push(
    { ...sent(skew, t + 20), localReceived: t + 19.4 },
    received(skew, t + 19.5),
    started(skew, t + 19.6),
    succeeded(skew, t + 19.7, '1', 0.1),
  );
  // Failures on beta.
  tasks.push(
    ...failing(BETA, t + 30, "ValueError('a')"),
    ...failing(BETA, t + 31, "ValueError('b')"),
    ...failing(BETA, t + 32, "KeyError('k')"),
  );
  tasks.push(...failing(BETA, t + 33, '<unprintable object>'));
  // A task sent to another queue.
  const routed = story('tasks.add', BETA);
  tasks.push(
    { ...sent(routed, t + 40), queue: 'priority', routing_key: 'priority' },
    received(routed, t + 40.1),
    started(routed, t + 40.2),
    succeeded(routed, t + 40.3, '1', 0.04),
  );
  // Retried then succeeded; retried and waiting (state RETRY).
  const flaky = story('tasks.retry', ALPHA);
  tasks.push(
    sent(flaky, t + 50),
    received(flaky, t + 50.1),
    started(flaky, t + 50.2),
    retried(flaky, t + 50.3),
    received(flaky, t + 51, 1),
    started(flaky, t + 51.1),
    succeeded(flaky, t + 51.2, "'ok'", 0.1),
  );
  const waiting = story('tasks.retry2', ALPHA);
  tasks.push(sent(waiting, t + 60), received(waiting, t + 60.1), started(waiting, t + 60.2), retried(waiting, t + 60.3));
  // Revoked and rejected.
  const gone = story('tasks.add', BETA);
  tasks.push(sent(gone, t + 70), received(gone, t + 70.1), revoked(gone, t + 70.2));
  const refused = story('tasks.add', BETA);
  tasks.push(sent(refused, t + 71), received(refused, t + 71.1), {
    ...revoked(refused, t + 71.2),
    type: 'task-rejected',
    terminated: null,
    signum: null,
    expired: null,
    requeue: false,
  });
  // gamma ran one task before going offline.
  tasks.push(...ran('tasks.add', GAMMA, NOW - 700, 0.05));
  // In flight: two PENDING, three RECEIVED on alpha (one with an eta), two STARTED on beta.
  for (let i = 0; i < 2; i++) tasks.push(sent(story('tasks.add', ALPHA), NOW - 50 + i));
  for (let i = 0; i < 2; i++) tasks.push(received(story('tasks.slow', ALPHA), NOW - 40 + i));
  tasks.push({ ...received(story('tasks.slow', ALPHA), NOW - 30), eta: iso(NOW + 3600) });
  const early = story('tasks.slow', BETA);
  tasks.push(received(early, NOW - 20), started(early, NOW - 17));
  const late = story('tasks.slow', BETA);
  tasks.push(received(late, NOW - 10), started(late, NOW - 9));
  return {
    tasks,
    workers: [
      { type: 'worker-online', hostname: GAMMA, at: NOW - 800 },
      { type: 'worker-offline', hostname: GAMMA, at: NOW - 600 },
      { type: 'worker-online', hostname: DELTA, at: NOW - 110 },
      { type: 'worker-heartbeat', hostname: DELTA, at: NOW - 100, active: 4 },
      { type: 'worker-online', hostname: ALPHA, at: NOW - 1100 },
      { type: 'worker-heartbeat', hostname: ALPHA, at: NOW - 1, active: 3 },
      { type: 'worker-online', hostname: BETA, at: NOW - 1100 },
      { type: 'worker-heartbeat', hostname: BETA, at: NOW - 1, active: 2 },
    ],
  };
}

export const STATUS: CollectorStatusTable = {
  id: 'collector@test',
  started_at: NOW - 2000,
  updated_at: NOW - 2,
  broker_url: 'redis://localhost:6379/0',
  broker_connected: 1,
  last_event_at: NOW - 3,
  events_total: 12345,
  dropped: JSON.stringify({ 'buffer-full': 5, 'unsupported-serializer': 2 }),
  lag_seconds: 0.25,
  flush_seconds: 0.012,
};

/** Fold and write events in one flush, as the collector does (with its status row when given). */
export async function flush(
  database: OpenDatabase,
  tasks: TaskEvent[],
  workerEvents: { type: string; hostname: string; at: number; active?: number }[] = [],
  status: CollectorStatusTable | null = null,
  workers = new Map<string, WorkerState>(),
): Promise<void> {
  // Events in the order they arrive.
  const events = [
    ...tasks.map((e) => ({ at: e.localReceived, add: (b: EventBatch) => b.add(e, workers) })),
    ...workerEvents.map((w) => ({
      at: w.at,
      add: (b: EventBatch) => b.add(workerEvent(w.type, w.hostname, w.at, { freq: 2, active: w.active ?? 0 }), workers),
    })),
  ].sort((a, b) => a.at - b.at);
  const batch = new EventBatch();
  for (const event of events) event.add(batch);
  const { payload } = buildFlushPayload(batch, () => undefined, workers, status);
  await new StoreWriter(database, createLogger('test', 'error')).write(payload);
}

export async function seedCluster(database: OpenDatabase): Promise<void> {
  const { tasks, workers } = clusterEvents();
  await flush(database, tasks, workers, STATUS);
  await database.db
    .insertInto('queues')
    .values([
      { name: 'celery', messages: 7, ready: null, unacked: null, consumers: null, measured_at: NOW - 4 },
      { name: 'priority', messages: 0, ready: 0, unacked: 0, consumers: 2, measured_at: NOW - 4 },
    ])
    .execute();
}
