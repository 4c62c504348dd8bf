// From a folded batch to the rows one flush writes. Pure: the task names and
// queues of tasks whose naming event came in an earlier flush are passed in.

import { STORED_BUCKETS, bucketFor } from '../../src/shared/histograms';
import {
  type CollectorStatusTable,
  type EventCountersTable,
  type HistogramBucketsTable,
  type HistogramTotalsTable,
  KEY,
  type NewTaskRow,
  type TaskEventRow,
  type WorkerRow,
} from '../../src/shared/schema';
import type { EventBatch } from '../fold/batch';
import { exceptionClass } from '../fold/task';
import { type WorkerState, workerToRow } from '../fold/worker';

export interface TaskRef {
  name: string | null;
  queue: string | null;
}

export interface FlushRows {
  tasks: NewTaskRow[];
  timeline: TaskEventRow[];
  workers: WorkerRow[];
  counters: EventCountersTable[];
  histogramBuckets: HistogramBucketsTable[];
  histogramTotals: HistogramTotalsTable[];
  status: CollectorStatusTable | undefined;
}

function cut(text: string, max: number): string {
  return text.length > max ? text.slice(0, max) : text;
}

class Tally<T extends object> {
  private readonly rows = new Map<string, T>();
  add(key: string, make: () => T, bump: (row: T) => void): void {
    let row = this.rows.get(key);
    if (!row) {
      row = make();
      this.rows.set(key, row);
    }
    bump(row);
  }
  values(): T[] {
    return [...this.rows.values()];
  }
}

export function buildFlushRows(
  batch: EventBatch,
  refs: Map<string, TaskRef>,
  workers: Map<string, WorkerState>,
  status: CollectorStatusTable | undefined,
  runtimeBounds: number[] = STORED_BUCKETS,
): FlushRows {
  const counters = new Tally<EventCountersTable>();
  const buckets = new Tally<HistogramBucketsTable>();
  const totals = new Tally<HistogramTotalsTable>();

  const count = (hostname: string, taskName: string, queue: string, type: string, exception: string, n: number) => {
    const row = {
      hostname: cut(hostname, KEY.host),
      task_name: cut(taskName, KEY.name),
      queue: cut(queue, KEY.queue),
      type: cut(type, KEY.type),
      exception: cut(exception, KEY.exception),
    };
    counters.add(
      `${row.hostname}\0${row.task_name}\0${row.queue}\0${row.type}\0${row.exception}`,
      () => ({ ...row, count: 0 }),
      (r) => {
        r.count += n;
      },
    );
  };

  const observe = (metric: string, hostname: string, taskName: string, queue: string, value: number, bounds: number[]) => {
    const labels = { metric, hostname: cut(hostname, KEY.host), task_name: cut(taskName, KEY.name), queue: cut(queue, KEY.queue) };
    const series = `${labels.metric}\0${labels.hostname}\0${labels.task_name}\0${labels.queue}`;
    const le = bucketFor(value, bounds);
    buckets.add(`${series}\0${le}`, () => ({ ...labels, le, count: 0 }), (r) => {
      r.count += 1;
    });
    totals.add(series, () => ({ ...labels, sum: 0, count: 0 }), (r) => {
      r.sum += value;
      r.count += 1;
    });
  };

  for (const event of batch.timeline) {
    const ref = refs.get(event.task_id);
    const name = ref?.name ?? '';
    const queue = ref?.queue ?? '';
    let exception = '';
    let runtime: number | undefined;
    if (event.data && (event.type === 'task-failed' || event.type === 'task-succeeded')) {
      const data = JSON.parse(event.data) as { exception?: string; runtime?: number };
      if (event.type === 'task-failed') exception = exceptionClass(data.exception);
      if (typeof data.runtime === 'number') runtime = data.runtime;
    }
    count(event.hostname, name, queue, event.type, exception, 1);
    if (runtime !== undefined) observe('runtime', event.hostname, name, queue, runtime, runtimeBounds);
  }
  for (const [key, n] of batch.otherEventCounts) {
    const [hostname = '', type = ''] = key.split('\0');
    count(hostname, '', '', type, '', n);
  }

  const workerRows: WorkerRow[] = [];
  for (const hostname of batch.dirtyWorkers) {
    const worker = workers.get(hostname);
    if (worker) workerRows.push(workerToRow(worker));
  }

  return {
    tasks: [...batch.tasks.values()],
    timeline: batch.timeline,
    workers: workerRows,
    counters: counters.values(),
    histogramBuckets: buckets.values(),
    histogramTotals: totals.values(),
    status,
  };
}
