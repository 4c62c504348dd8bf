// Event counters and histogram observations, summed in memory per flush and
// added to the stored rows by the upsert.

import { bucketFor } from '../../src/shared/histograms';
import { type EventCountersTable, type HistogramBucketsTable, type HistogramTotalsTable, KEY } from '../../src/shared/schema';
import { exceptionClass } from '../fold/task';
import type { TimelineEntry } from '../fold/task';

function cut(text: string, max: number): string {
  return text.length > max ? text.slice(0, max) : text;
}

export interface MetricDeltas {
  counters: EventCountersTable[];
  histogramBuckets: HistogramBucketsTable[];
  histogramTotals: HistogramTotalsTable[];
}

export class MetricTally {
  private readonly counters = new Map<string, EventCountersTable>();
  private readonly buckets = new Map<string, HistogramBucketsTable>();
  private readonly totals = new Map<string, HistogramTotalsTable>();

  constructor(private readonly runtimeBounds: number[]) {}

  count(hostname: string, taskName: string, queue: string, type: string, exception: string, n = 1): void {
    const row = {
      hostname: cut(hostname, KEY.host),
      task_name: cut(taskName, KEY.name),
      queue: cut(queue, KEY.queue),
      type: cut(type, KEY.type),
      exception: cut(exception, KEY.exception),
    };
    const key = `${row.hostname}\0${row.task_name}\0${row.queue}\0${row.type}\0${row.exception}`;
    const existing = this.counters.get(key);
    if (existing) existing.count += n;
    else this.counters.set(key, { ...row, count: n });
  }

  observe(metric: string, hostname: string, taskName: string, queue: string, value: number, bounds: number[]): void {
    const labels = { metric, hostname: cut(hostname, KEY.host), task_name: cut(taskName, KEY.name), queue: cut(queue, KEY.queue) };
    const series = `${labels.metric}\0${labels.hostname}\0${labels.task_name}\0${labels.queue}`;
    const le = bucketFor(value, bounds);
    const bucket = this.buckets.get(`${series}\0${le}`);
    if (bucket) bucket.count += 1;
    else this.buckets.set(`${series}\0${le}`, { ...labels, le, count: 1 });
    const total = this.totals.get(series);
    if (total) {
      total.sum += value;
      total.count += 1;
    } else this.totals.set(series, { ...labels, sum: value, count: 1 });
  }

  /** Count one task event of a task with this name and queue ('' when unknown). */
  taskEvent(entry: TimelineEntry, name: string, queue: string): void {
    const exception = entry.type === 'task-failed' ? exceptionClass(entry.data?.exception) : '';
    this.count(entry.hostname, name, queue, entry.type, exception);
    const runtime = entry.data?.runtime;
    if (entry.type === 'task-succeeded' && typeof runtime === 'number') {
      this.observe('runtime', entry.hostname, name, queue, runtime, this.runtimeBounds);
    }
  }

  deltas(): MetricDeltas {
    return {
      counters: [...this.counters.values()],
      histogramBuckets: [...this.buckets.values()],
      histogramTotals: [...this.totals.values()],
    };
  }
}
