// Event counters and histogram observations, summed in memory per flush and
// added to the stored rows by the upsert. Two histograms are observed:
// 'runtime' (task-succeeded's runtime) and 'queue_wait' (celery-exporter's
// celery_task_queue_wait_time: task-started's time minus the later of the
// task's sent time and its eta, clamped at 0, so countdowns and retry
// back-offs are not counted as waiting).

import { formatLe } from '../../src/shared/histograms';
import { cutText } from '../../src/shared/text';
import { type EventCountersTable, type HistogramBucketsTable, type HistogramTotalsTable, KEY } from '../../src/shared/schema';
import { exceptionClass } from '../fold/task';
import type { TimelineEntry } from '../fold/task';
import { type StatsDeltas, StatsTally } from './stats';

/** What a task's events are counted under, and the times its queue wait is measured from. */
export interface TaskRef {
  name: string | null;
  queue: string | null;
  /** Latest task-sent time (null without task_send_sent_event). */
  sent: number | null;
  /** ISO 8601 eta of the latest delivery, or null. */
  eta: string | null;
}

// Label values are cut to their key columns without splitting a surrogate pair.
const cut = cutText;

export interface MetricDeltas extends StatsDeltas {
  counters: EventCountersTable[];
  histogramBuckets: HistogramBucketsTable[];
  histogramTotals: HistogramTotalsTable[];
}

/** A (hostname, task name, queue) series' counts by event type and exception, and its histograms. */
interface Series {
  hostname: string;
  taskName: string;
  queue: string;
  /** `type` (or `type\0exception` for failures) -> count. */
  counts: Map<string, number>;
  histograms: Map<string, { sum: number; count: number; buckets: number[] }>;
}

// This runs for every event the collector takes (tens of thousands a
// second): events are grouped by series without building a key string per
// event, and bucket labels are formatted once per bound.
export class MetricTally {
  private readonly series = new Map<string, Series>();
  private readonly labels: string[];
  /** The same task events by task name and minute (stats.ts). */
  private readonly stats = new StatsTally();

  /** `bounds`: the stored bucket bounds (STORED_BUCKETS unless a test says otherwise). */
  constructor(private readonly bounds: number[]) {
    this.labels = [...bounds.map(formatLe), '+Inf'];
  }

  private seriesFor(hostname: string, taskName: string, queue: string): Series {
    const key = `${hostname}\0${taskName}\0${queue}`;
    let found = this.series.get(key);
    if (!found) {
      found = { hostname, taskName, queue, counts: new Map(), histograms: new Map() };
      this.series.set(key, found);
    }
    return found;
  }

  private countIn(series: Series, type: string, exception: string, n: number): void {
    const key = exception === '' ? type : `${type}\0${exception}`;
    series.counts.set(key, (series.counts.get(key) ?? 0) + n);
  }

  private observeIn(series: Series, metric: string, value: number): void {
    let histogram = series.histograms.get(metric);
    if (!histogram) {
      histogram = { sum: 0, count: 0, buckets: new Array<number>(this.labels.length).fill(0) };
      series.histograms.set(metric, histogram);
    }
    let index = 0;
    while (index < this.bounds.length && value > this.bounds[index]!) index += 1;
    histogram.buckets[index]! += 1;
    histogram.sum += value;
    histogram.count += 1;
  }

  count(hostname: string, taskName: string, queue: string, type: string, exception: string, n = 1): void {
    this.countIn(this.seriesFor(hostname, taskName, queue), type, exception, n);
  }

  /** One observation of `metric` (the tally's own bounds). */
  observe(metric: string, hostname: string, taskName: string, queue: string, value: number): void {
    this.observeIn(this.seriesFor(hostname, taskName, queue), metric, value);
  }

  /**
   * Count one task's events of this flush, in arrival order. `ref` is what
   * was known of the task before them (cache or database); sent times and
   * etas carried by the events themselves update it as they go, so a task
   * whose whole retry cycle lands in one flush is measured per delivery.
   */
  taskEvents(events: TimelineEntry[], ref: TaskRef): void {
    const name = ref.name ?? '';
    const queue = ref.queue ?? '';
    let sent = ref.sent;
    let eta = ref.eta;
    let series: Series | undefined;
    for (const entry of events) {
      if (series?.hostname !== entry.hostname) series = this.seriesFor(entry.hostname, name, queue);
      const exception = entry.type === 'task-failed' ? exceptionClass(entry.data?.exception) : '';
      this.countIn(series, entry.type, exception, 1);
      this.stats.event(name, entry.type, entry.timestamp, exception);
      if (entry.type === 'task-sent') {
        sent = sent === null ? entry.timestamp : Math.max(sent, entry.timestamp);
        eta = entry.data?.eta ?? null;
      } else if (entry.type === 'task-received') {
        eta = entry.data?.eta ?? null;
      } else if (entry.type === 'task-started' && sent !== null) {
        const etaAt = etaSeconds(eta);
        const baseline = etaAt === null ? sent : Math.max(sent, etaAt);
        const wait = Math.max(0, entry.timestamp - baseline);
        this.observeIn(series, 'queue_wait', wait);
        this.stats.observe('queue_wait', name, entry.timestamp, wait);
      }
      const runtime = entry.data?.runtime;
      if (entry.type === 'task-succeeded' && typeof runtime === 'number') {
        this.observeIn(series, 'runtime', runtime);
        this.stats.observe('runtime', name, entry.timestamp, runtime);
      }
    }
  }

  /** Add another tally's counts to this one's (both with the same bounds). */
  absorb(other: MetricTally): void {
    this.stats.absorb(other.stats);
    for (const theirs of other.series.values()) {
      const mine = this.seriesFor(theirs.hostname, theirs.taskName, theirs.queue);
      for (const [key, n] of theirs.counts) mine.counts.set(key, (mine.counts.get(key) ?? 0) + n);
      for (const [metric, histogram] of theirs.histograms) {
        const target = mine.histograms.get(metric);
        if (!target) {
          mine.histograms.set(metric, { sum: histogram.sum, count: histogram.count, buckets: [...histogram.buckets] });
          continue;
        }
        target.sum += histogram.sum;
        target.count += histogram.count;
        for (let i = 0; i < histogram.buckets.length; i++) target.buckets[i]! += histogram.buckets[i]!;
      }
    }
  }

  /** Rows for the store, with label values cut to their key columns. */
  deltas(): MetricDeltas {
    const counters = new Map<string, EventCountersTable>();
    const buckets: HistogramBucketsTable[] = [];
    const totals: HistogramTotalsTable[] = [];
    for (const series of this.series.values()) {
      const labels = {
        hostname: cut(series.hostname, KEY.host),
        task_name: cut(series.taskName, KEY.name),
        queue: cut(series.queue, KEY.queue),
      };
      for (const [key, n] of series.counts) {
        const [type = '', exception = ''] = key.split('\0');
        const row = { ...labels, type: cut(type, KEY.type), exception: cut(exception, KEY.exception), count: n };
        // Values that differ only past their column's length become one row.
        const id = `${row.hostname}\0${row.task_name}\0${row.queue}\0${row.type}\0${row.exception}`;
        const existing = counters.get(id);
        if (existing) existing.count += n;
        else counters.set(id, row);
      }
      for (const [metric, histogram] of series.histograms) {
        histogram.buckets.forEach((n, i) => {
          if (n > 0) buckets.push({ metric, ...labels, le: this.labels[i]!, count: n });
        });
        totals.push({ metric, ...labels, sum: histogram.sum, count: histogram.count });
      }
    }
    return { counters: [...counters.values()], histogramBuckets: buckets, histogramTotals: totals, ...this.stats.deltas() };
  }
}

/**
 * An eta as Celery sends it (`2026-11-24T10:00:00.123456+00:00`) in seconds
 * since the epoch; one without a zone is taken as UTC (Celery's enable_utc
 * default). Null when absent or unreadable.
 */
export function etaSeconds(eta: string | null | undefined): number | null {
  if (!eta) return null;
  const text = /(?:Z|[+-]\d{2}:?\d{2})$/i.test(eta.trim()) ? eta.trim() : `${eta.trim()}Z`;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms / 1000 : null;
}
