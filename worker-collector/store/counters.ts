// Event counters and histogram observations, summed in memory per flush and
// added to the stored rows by the upsert. Two histograms are observed:
// 'runtime' (task-succeeded's runtime) and 'queue_wait' (celery-exporter's
// celery_task_queue_wait_time: task-started's time minus the later of the
// task's sent time and its eta, clamped at 0, so countdowns and retry
// back-offs are not counted as waiting).

import { bucketFor } from '../../src/shared/histograms';
import { cutText } from '../../src/shared/text';
import { type EventCountersTable, type HistogramBucketsTable, type HistogramTotalsTable, KEY } from '../../src/shared/schema';
import { exceptionClass } from '../fold/task';
import type { TimelineEntry } from '../fold/task';

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

export interface MetricDeltas {
  counters: EventCountersTable[];
  histogramBuckets: HistogramBucketsTable[];
  histogramTotals: HistogramTotalsTable[];
}

export class MetricTally {
  private readonly counters = new Map<string, EventCountersTable>();
  private readonly buckets = new Map<string, HistogramBucketsTable>();
  private readonly totals = new Map<string, HistogramTotalsTable>();

  /** `bounds`: the stored bucket bounds (STORED_BUCKETS unless a test says otherwise). */
  constructor(private readonly bounds: number[]) {}

  count(hostname: string, taskName: string, queue: string, type: string, exception: string, n = 1): void {
    // Keyed by the values as they come (cut only when a series is new): this runs for every event.
    const key = `${hostname}\0${taskName}\0${queue}\0${type}\0${exception}`;
    const existing = this.counters.get(key);
    if (existing) {
      existing.count += n;
      return;
    }
    this.counters.set(key, {
      hostname: cut(hostname, KEY.host),
      task_name: cut(taskName, KEY.name),
      queue: cut(queue, KEY.queue),
      type: cut(type, KEY.type),
      exception: cut(exception, KEY.exception),
      count: n,
    });
  }

  observe(metric: string, hostname: string, taskName: string, queue: string, value: number, bounds: number[]): void {
    const series = `${metric}\0${hostname}\0${taskName}\0${queue}`;
    const le = bucketFor(value, bounds);
    const bucket = this.buckets.get(`${series}\0${le}`);
    if (bucket) bucket.count += 1;
    else this.buckets.set(`${series}\0${le}`, { ...this.labels(metric, hostname, taskName, queue), le, count: 1 });
    const total = this.totals.get(series);
    if (total) {
      total.sum += value;
      total.count += 1;
    } else this.totals.set(series, { ...this.labels(metric, hostname, taskName, queue), sum: value, count: 1 });
  }

  private labels(metric: string, hostname: string, taskName: string, queue: string) {
    return { metric, hostname: cut(hostname, KEY.host), task_name: cut(taskName, KEY.name), queue: cut(queue, KEY.queue) };
  }

  /** Add another tally's counts to this one's. */
  absorb(other: MetricTally): void {
    for (const [key, row] of other.counters) {
      const mine = this.counters.get(key);
      if (mine) mine.count += row.count;
      else this.counters.set(key, { ...row });
    }
    for (const [key, row] of other.buckets) {
      const mine = this.buckets.get(key);
      if (mine) mine.count += row.count;
      else this.buckets.set(key, { ...row });
    }
    for (const [key, row] of other.totals) {
      const mine = this.totals.get(key);
      if (mine) {
        mine.sum += row.sum;
        mine.count += row.count;
      } else this.totals.set(key, { ...row });
    }
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
    for (const entry of events) {
      const exception = entry.type === 'task-failed' ? exceptionClass(entry.data?.exception) : '';
      this.count(entry.hostname, name, queue, entry.type, exception);
      if (entry.type === 'task-sent') {
        sent = sent === null ? entry.timestamp : Math.max(sent, entry.timestamp);
        eta = entry.data?.eta ?? null;
      } else if (entry.type === 'task-received') {
        eta = entry.data?.eta ?? null;
      } else if (entry.type === 'task-started' && sent !== null) {
        const etaAt = etaSeconds(eta);
        const baseline = etaAt === null ? sent : Math.max(sent, etaAt);
        this.observe('queue_wait', entry.hostname, name, queue, Math.max(0, entry.timestamp - baseline), this.bounds);
      }
      const runtime = entry.data?.runtime;
      if (entry.type === 'task-succeeded' && typeof runtime === 'number') {
        this.observe('runtime', entry.hostname, name, queue, runtime, this.bounds);
      }
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
