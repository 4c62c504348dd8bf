// What the collector has folded since its last flush. Pure in-memory state:
// events go in, rows come out at flush time; no I/O happens here.

import type { CeleryEvent, TaskEvent } from '../../src/shared/celery-events';
import type { NewTaskRow, TaskEventRow } from '../../src/shared/schema';
import { mergeTaskRows } from '../../src/shared/task-merge';
import { foldTaskEvent, timelineRowFromEvent } from './task';
import { type WorkerState, foldWorkerEvent, touchWorker } from './worker';

/** A task event must refresh its worker's heartbeats at most this often (seconds). */
const TASK_HEARTBEAT_EVERY = 1;

export class EventBatch {
  /** Task rows folded from this batch's events, by uuid. */
  readonly tasks = new Map<string, NewTaskRow>();
  /** The task events themselves, in arrival order, without duplicates. */
  timeline: TaskEventRow[] = [];
  /** Non-task events counted by `hostname \0 type`. */
  readonly otherEventCounts = new Map<string, number>();
  readonly dirtyWorkers = new Set<string>();
  private readonly seen = new Set<string>();
  /** Events folded (duplicates included). */
  eventCount = 0;
  duplicateCount = 0;
  /** Largest sender timestamp seen, for lag. */
  newestTimestamp = 0;

  get size(): number {
    return this.timeline.length + this.tasks.size;
  }

  /** Fold one event. `workers` is the collector's long-lived worker registry. */
  add(event: CeleryEvent, workers: Map<string, WorkerState>): void {
    this.eventCount += 1;
    if (event.timestamp > this.newestTimestamp) this.newestTimestamp = event.timestamp;
    if (event.kind === 'task') this.addTask(event, workers);
    else {
      const key = `${event.hostname}\0${event.type}`;
      this.otherEventCounts.set(key, (this.otherEventCounts.get(key) ?? 0) + 1);
      if (event.kind === 'worker') {
        workers.set(event.hostname, foldWorkerEvent(workers.get(event.hostname), event));
        this.dirtyWorkers.add(event.hostname);
      }
    }
  }

  private addTask(event: TaskEvent, workers: Map<string, WorkerState>): void {
    const identity = `${event.uuid}\0${event.type}\0${event.timestamp}\0${event.clock}`;
    if (this.seen.has(identity)) {
      this.duplicateCount += 1;
      return;
    }
    this.seen.add(identity);
    this.tasks.set(event.uuid, foldTaskEvent(this.tasks.get(event.uuid), event));
    this.timeline.push(timelineRowFromEvent(event));

    if (event.type !== 'task-sent' && event.hostname) {
      const worker = workers.get(event.hostname);
      const last = worker?.heartbeats[worker.heartbeats.length - 1] ?? 0;
      if (!worker || worker.status !== 'online' || event.localReceived - last >= TASK_HEARTBEAT_EVERY) {
        workers.set(event.hostname, touchWorker(worker, event.hostname, event.localReceived));
        this.dirtyWorkers.add(event.hostname);
      }
    }
  }

  /** Take back a batch that could not be written, so that nothing in it is lost. */
  absorb(older: EventBatch): void {
    for (const [uuid, row] of older.tasks) {
      const mine = this.tasks.get(uuid);
      this.tasks.set(uuid, mine ? mergeTaskRows(row, mine) : row);
    }
    this.timeline = older.timeline.concat(this.timeline);
    for (const [key, n] of older.otherEventCounts) this.otherEventCounts.set(key, (this.otherEventCounts.get(key) ?? 0) + n);
    for (const host of older.dirtyWorkers) this.dirtyWorkers.add(host);
    for (const identity of older.seen) this.seen.add(identity);
    this.eventCount += older.eventCount;
    this.duplicateCount += older.duplicateCount;
    this.newestTimestamp = Math.max(this.newestTimestamp, older.newestTimestamp);
  }
}
