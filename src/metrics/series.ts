// Which label sets a scrape shows, and how label values are spelled.
//
// Bounded cardinality: with `purgeOfflineWorkers` (Flower's
// purge_offline_workers) above 0, a worker offline for longer than that
// leaves every series that names it, as on the workers page (the rule is
// isPurged() in src/shared/workers.ts). Flower removes, on each scrape,
// the series of every name in its counters that is not a live or recently
// offline worker, which includes the clients' `gen<pid>@host` names on
// task-sent; the Flower-named metrics here do the same. celery-exporter's
// metrics name hosts, not workers (see exporterHostname), and lose a host
// once all its workers are purged.

import type { WorkerFacts } from '../queries/metrics';
import { isPurged, isWorkerAlive, type Judged } from '../shared/workers';

/** celery-exporter's default queue name for tasks whose queue no event said. */
export const DEFAULT_QUEUE_NAME = 'celery';

/**
 * celery-exporter's get_hostname(): the host part of a Celery node name
 * (`worker1@web-3` -> `web-3`), or the whole name when it has no `@`, so
 * that per-process names (`gen4242@web-3`) do not multiply series.
 */
export function exporterHostname(nodeName: string): string {
  const at = nodeName.indexOf('@');
  return at < 0 ? nodeName : nodeName.slice(at + 1);
}

/** celery-exporter's queue_name: the task's queue from task-sent, else 'celery'. */
export function exporterQueueName(queue: string): string {
  return queue === '' ? DEFAULT_QUEUE_NAME : queue;
}

/** celery-exporter labels a failure it cannot name 'UnknownException'. */
export function exporterException(exception: string): string {
  return exception === '' ? 'UnknownException' : exception;
}

/** A worker whose series a scrape shows, judged at the scrape's time. */
export type WorkerView = Judged<WorkerFacts>;

export class SeriesScope {
  /** Workers whose series stay, by node name, sorted. */
  readonly workers: WorkerView[];
  private readonly keptNames: Set<string>;
  private readonly purgedHosts: Set<string>;

  constructor(
    workers: WorkerFacts[],
    now: number,
    private readonly purgeAfter: number,
  ) {
    const kept: WorkerView[] = [];
    const hosts = new Map<string, boolean>();
    for (const worker of workers) {
      const alive = isWorkerAlive(worker, now);
      const purged = isPurged(worker, alive, now, purgeAfter);
      const host = exporterHostname(worker.hostname);
      hosts.set(host, (hosts.get(host) ?? false) || !purged);
      if (!purged) kept.push({ ...worker, alive });
    }
    this.workers = kept.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
    this.keptNames = new Set(kept.map((w) => w.hostname));
    this.purgedHosts = new Set([...hosts].filter(([, anyKept]) => !anyKept).map(([host]) => host));
  }

  /** Whether series labelled with this node name (Flower's `worker`) stay. */
  keepsWorker(nodeName: string): boolean {
    return this.purgeAfter <= 0 || this.keptNames.has(nodeName);
  }

  /** Whether series labelled with this short host name (celery-exporter's `hostname`) stay. */
  keepsHost(host: string): boolean {
    return !this.purgedHosts.has(host);
  }
}

/** Sum values under a key built from label values; iterate sorted for a stable exposition. */
export class Tally<L extends Record<string, string>> {
  private readonly entries = new Map<string, { labels: L; value: number }>();

  add(labels: L, value: number): void {
    const key = JSON.stringify(Object.values(labels));
    const entry = this.entries.get(key);
    if (entry) entry.value += value;
    else this.entries.set(key, { labels, value });
  }

  /** Make the series exist (at 0) without changing a value. */
  ensure(labels: L): void {
    this.add(labels, 0);
  }

  set(labels: L, value: number): void {
    this.entries.set(JSON.stringify(Object.values(labels)), { labels, value });
  }

  has(labels: L): boolean {
    return this.entries.has(JSON.stringify(Object.values(labels)));
  }

  sorted(): { labels: L; value: number }[] {
    return [...this.entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
  }
}
