// From a folded batch to what one flush writes: task rows as arrays in
// TASK_COLUMNS order (the bulk statements' parameter order), timelines as JSON
// text. Counters and histograms are summed here for every event whose task
// name is known (from the batch or the caller's cache); the rest go to the
// store, which looks the names up in the database. The cache also carries
// each task's sent time and eta, so a task-started in a later flush than
// its task-sent still measures the queue wait.

import { STORED_BUCKETS } from '../../src/shared/histograms';
import { isFinalState } from '../../src/shared/task-states';
import type { CollectorStatusTable, WorkerRow } from '../../src/shared/schema';
import type { EventBatch } from '../fold/batch';
import { taskRowValues } from '../fold/merge';
import type { TimelineEntry } from '../fold/task';
import { type WorkerState, workerToRow } from '../fold/worker';
import { type MetricDeltas, MetricTally, type TaskRef } from './counters';
import type { LeaseClaim } from '../lease';
import type { LostSweep } from './lost';

export type { TaskRef } from './counters';

export interface UnresolvedTask {
  uuid: string;
  events: TimelineEntry[];
}

export interface FlushPayload extends MetricDeltas {
  /** Task rows, each an array of values in TASK_COLUMNS order. */
  tasks: unknown[][];
  /** [task id, JSON array of this flush's events of it]. */
  timelines: [string, string][];
  /** Tasks whose name is not known yet: their events are counted by the store. */
  unresolved: UnresolvedTask[];
  workers: WorkerRow[];
  status: CollectorStatusTable | null;
  /** Stored bucket bounds of both histograms (runtime and queue wait). */
  runtimeBounds: number[];
  /** Write only while this claim still holds the lease (renewed first in the flush's transaction). */
  lease?: LeaseClaim;
  /** After the write, mark tasks of offline workers (and long-unreceived ones) LOST (store/lost.ts). */
  lost?: LostSweep;
}

export function buildFlushPayload(
  batch: EventBatch,
  knownRef: (uuid: string) => TaskRef | undefined,
  workers: Map<string, WorkerState>,
  status: CollectorStatusTable | null,
  runtimeBounds: number[] = STORED_BUCKETS,
): { payload: FlushPayload; learned: [string, TaskRef][] } {
  const tally = new MetricTally(runtimeBounds);
  const tasks: unknown[][] = [];
  const timelines: [string, string][] = [];
  const unresolved: UnresolvedTask[] = [];
  const learned: [string, TaskRef][] = [];

  for (const [uuid, pending] of batch.tasks) {
    tasks.push(taskRowValues(pending.row));
    timelines.push([uuid, JSON.stringify(pending.events)]);
    const known = knownRef(uuid);
    const facts = pending.row;
    const name = facts.name ?? known?.name ?? null;
    const queue = facts.queue ?? known?.queue ?? null;
    if (name === null && known === undefined) {
      unresolved.push({ uuid, events: pending.events });
      continue;
    }
    // Sent time and eta as they were before this flush: the events update them in order.
    tally.taskEvents(pending.events, { name, queue, sent: known?.sent ?? null, eta: known?.eta ?? null });
    // A task that ended in this flush rarely has more events to come; the
    // store looks the odd late one up (resolve), so the cache keeps the rest.
    if (known === undefined && facts.state !== undefined && isFinalState(facts.state)) continue;
    const sent = facts.sent ?? null;
    learned.push([
      uuid,
      {
        name,
        queue,
        sent: sent === null ? (known?.sent ?? null) : Math.max(sent, known?.sent ?? sent),
        eta: facts.eta ?? known?.eta ?? null,
      },
    ]);
  }
  if (batch.shed) tally.absorb(batch.shed);
  for (const [key, n] of batch.otherEventCounts) {
    const [hostname = '', type = ''] = key.split('\0');
    tally.count(hostname, '', '', type, '', n);
  }

  const workerRows: WorkerRow[] = [];
  for (const hostname of batch.dirtyWorkers) {
    const worker = workers.get(hostname);
    if (worker) workerRows.push(workerToRow(worker));
  }

  return {
    payload: { tasks, timelines, unresolved, workers: workerRows, status, runtimeBounds, ...tally.deltas() },
    learned,
  };
}
