// What the collector has folded since its last flush. In-memory state only:
// events go in, rows come out at flush time; no I/O happens here.

import type { CeleryEvent, TaskEvent } from '../../src/shared/celery-events';
import type { NewTaskRow } from '../../src/shared/schema';
import { MetricTally, type TaskRef } from '../store/counters';
import { mergeTaskRowInto } from './merge';
import { type TimelineEntry, taskRowFromEvent, timelineEntry } from './task';
import { type WorkerState, foldWorkerEvent, touchWorker } from './worker';

/** A task event must refresh its worker's heartbeats at most this often (seconds). */
const TASK_HEARTBEAT_EVERY = 1;

export interface PendingTask {
  /** Everything this batch's events say about the task (merged with what is stored at write time). */
  row: NewTaskRow;
  /** This batch's events of the task, in arrival order, without duplicates. */
  events: TimelineEntry[];
}

function isDuplicate(events: TimelineEntry[], event: TaskEvent): boolean {
  for (const seen of events) {
    if (seen.clock === event.clock && seen.timestamp === event.timestamp && seen.type === event.type) return true;
  }
  return false;
}

// What a buffered task and each of its events cost in memory, roughly (V8
// objects: 1,250 bytes for a task of four events, measured as the heap's
// growth after a full collection), plus the length of its texts. The
// collector bounds the sum of these (--max-buffer-mb), not a count of events.
const TASK_BYTES = 800;
const EVENT_BYTES = 150;

function textBytes(event: TaskEvent): number {
  return (
    (event.args?.length ?? 0) +
    (event.kwargs?.length ?? 0) +
    (event.result?.length ?? 0) +
    (event.exception?.length ?? 0) * 2 +
    (event.traceback?.length ?? 0)
  );
}

export class EventBatch {
  readonly tasks = new Map<string, PendingTask>();
  /** Non-task events counted by `hostname \0 type`. */
  readonly otherEventCounts = new Map<string, number>();
  readonly dirtyWorkers = new Set<string>();
  /** Events folded (duplicates included). */
  eventCount = 0;
  /** Estimated memory held by this batch's tasks and events (bytes). */
  bytes = 0;
  /**
   * Events shed under overload (the collector's choice): no task row or
   * timeline, but counted in the metrics as if they had been folded.
   */
  shed: MetricTally | undefined;
  duplicateCount = 0;
  /** Largest sender timestamp seen, for lag. */
  newestTimestamp = 0;
  /** Reused for each event's own row before it is merged (no allocation per event). */
  private readonly scratch = {} as NewTaskRow;

  /** Fold one event. `workers` is the collector's long-lived worker registry. */
  add(event: CeleryEvent, workers: Map<string, WorkerState>): void {
    this.eventCount += 1;
    if (event.timestamp > this.newestTimestamp) this.newestTimestamp = event.timestamp;
    if (event.kind === 'task') {
      this.addTask(event, workers);
      return;
    }
    const key = `${event.hostname}\0${event.type}`;
    this.otherEventCounts.set(key, (this.otherEventCounts.get(key) ?? 0) + 1);
    if (event.kind === 'worker') {
      workers.set(event.hostname, foldWorkerEvent(workers.get(event.hostname), event));
      this.dirtyWorkers.add(event.hostname);
    }
  }

  private addTask(event: TaskEvent, workers: Map<string, WorkerState>): void {
    const pending = this.tasks.get(event.uuid);
    if (!pending) {
      this.tasks.set(event.uuid, { row: taskRowFromEvent(event), events: [timelineEntry(event)] });
      this.bytes += TASK_BYTES + textBytes(event);
    } else if (isDuplicate(pending.events, event)) {
      this.duplicateCount += 1;
      return;
    } else {
      mergeTaskRowInto(pending.row, taskRowFromEvent(event, this.scratch));
      pending.events.push(timelineEntry(event));
      this.bytes += EVENT_BYTES + textBytes(event);
    }

    if (event.type !== 'task-sent' && event.hostname) {
      const worker = workers.get(event.hostname);
      const last = worker?.heartbeats[worker.heartbeats.length - 1] ?? 0;
      if (worker?.status !== 'online' || event.localReceived - last >= TASK_HEARTBEAT_EVERY) {
        workers.set(event.hostname, touchWorker(worker, event.hostname, event.localReceived));
        this.dirtyWorkers.add(event.hostname);
      }
    }
  }

  /** Whether this batch already holds events of the task. */
  hasTask(uuid: string): boolean {
    return this.tasks.has(uuid);
  }

  /** Count a task event without keeping it (overload): `ref` is what is known of its task. */
  shedTaskEvent(event: TaskEvent, ref: TaskRef, runtimeBounds: number[]): void {
    this.eventCount += 1;
    (this.shed ??= new MetricTally(runtimeBounds)).taskEvents([timelineEntry(event)], ref);
  }

  /** Take back a batch that could not be written, so that nothing in it is lost. */
  absorb(older: EventBatch): void {
    for (const [uuid, old] of older.tasks) {
      const mine = this.tasks.get(uuid);
      if (!mine) {
        this.tasks.set(uuid, old);
        continue;
      }
      mergeTaskRowInto(old.row, mine.row);
      this.tasks.set(uuid, { row: old.row, events: old.events.concat(mine.events) });
    }
    for (const [key, n] of older.otherEventCounts) this.otherEventCounts.set(key, (this.otherEventCounts.get(key) ?? 0) + n);
    for (const host of older.dirtyWorkers) this.dirtyWorkers.add(host);
    this.eventCount += older.eventCount;
    this.bytes += older.bytes;
    if (older.shed) {
      if (this.shed) this.shed.absorb(older.shed);
      else this.shed = older.shed;
    }
    this.duplicateCount += older.duplicateCount;
    this.newestTimestamp = Math.max(this.newestTimestamp, older.newestTimestamp);
  }
}
