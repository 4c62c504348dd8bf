// Flower's metrics, with Flower's names, types, labels and help texts, so
// its dashboards and alerts (flower_worker_online == 0, failure ratio,
// prefetch time) keep working. Differences, all from reading stored state
// instead of counting events in memory: values survive restarts; a worker
// that vanished without worker-offline reads 0 once its heartbeats stop
// (Flower keeps 1); executing tasks read 0 for a worker that is offline;
// the prefetch gauges are counted from the tasks in flight (see below);
// Python's `_created` series are not produced.

import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetricsState } from '../queries/metrics';
import { StoredHistogram } from './histogram';
import { type SeriesScope, Tally } from './series';

export function addFlowerMetrics(registry: Registry, state: MetricsState, scope: SeriesScope, runtimeBuckets: readonly number[]): void {
  const registers = [registry];

  // Every task event, by worker (the sender: a client's name for task-sent), type and task name.
  const events = new Tally<{ task: string; type: string; worker: string }>();
  // Series of the prefetch gauges exist, at 0, for every worker and task that received or started one.
  const prefetched = new Tally<{ task: string; worker: string }>();
  const prefetchTime = new Tally<{ task: string; worker: string }>();
  for (const row of state.counters) {
    if (!scope.keepsWorker(row.hostname)) continue;
    events.add({ task: row.task_name, type: row.type, worker: row.hostname }, row.count);
    if (row.type === 'task-received') prefetched.ensure({ task: row.task_name, worker: row.hostname });
    if (row.type === 'task-started') prefetchTime.ensure({ task: row.task_name, worker: row.hostname });
  }
  const eventsTotal = new Counter({
    name: 'flower_events_total',
    help: 'Number of events',
    labelNames: ['task', 'type', 'worker'],
    registers,
  });
  for (const { labels, value } of events.sorted()) eventsTotal.inc(labels, value);

  const runtime = new StoredHistogram({
    name: 'flower_task_runtime_seconds',
    help: 'Task runtime',
    labelNames: ['task', 'worker'],
    buckets: runtimeBuckets,
    registers,
  });
  for (const row of state.buckets) {
    if (row.metric === 'runtime' && scope.keepsWorker(row.hostname))
      runtime.addBucket({ task: row.task_name, worker: row.hostname }, row.le, row.count);
  }
  for (const row of state.totals) {
    if (row.metric === 'runtime' && scope.keepsWorker(row.hostname)) runtime.addSum({ task: row.task_name, worker: row.hostname }, row.sum);
  }

  // Flower adds 1 on task-received and takes 1 on task-started (tasks without
  // an eta). Counting the RECEIVED tasks without an eta gives the same
  // number, and unlike +1/-1 cannot drift when events are lost, duplicated
  // or arrive out of order.
  for (const row of state.inFlight) {
    if (row.state !== 'RECEIVED' || row.has_eta || !scope.keepsWorker(row.worker)) continue;
    prefetched.add({ task: row.name, worker: row.worker }, row.count);
  }
  const prefetchedGauge = new Gauge({
    name: 'flower_worker_prefetched_tasks',
    help: 'Number of tasks of given type prefetched at a worker',
    labelNames: ['task', 'worker'],
    registers,
  });
  for (const { labels, value } of prefetched.sorted()) prefetchedGauge.set(labels, value);

  // Flower sets started - received on task-started and 0 on task-succeeded or
  // task-failed. From stored state: the latest-started task still executing
  // (STARTED, no eta) of each worker and task, else 0.
  const latestStart = new Map<string, number>();
  for (const task of state.running) {
    if (task.started === null || task.received === null || !scope.keepsWorker(task.worker)) continue;
    const labels = { task: task.name, worker: task.worker };
    const key = JSON.stringify(Object.values(labels));
    if ((latestStart.get(key) ?? -Infinity) >= task.started) continue;
    latestStart.set(key, task.started);
    prefetchTime.set(labels, task.started - task.received);
  }
  const prefetchGauge = new Gauge({
    name: 'flower_task_prefetch_time_seconds',
    help: 'The time the task spent waiting at the celery worker to be executed.',
    labelNames: ['task', 'worker'],
    registers,
  });
  for (const { labels, value } of prefetchTime.sorted()) prefetchGauge.set(labels, value);

  const online = new Gauge({ name: 'flower_worker_online', help: 'Worker online status', labelNames: ['worker'], registers });
  const executing = new Gauge({
    name: 'flower_worker_number_of_currently_executing_tasks',
    help: 'Number of tasks currently executing at a worker',
    labelNames: ['worker'],
    registers,
  });
  for (const worker of scope.workers) {
    online.set({ worker: worker.hostname }, worker.alive ? 1 : 0);
    executing.set({ worker: worker.hostname }, worker.alive ? (worker.active ?? 0) : 0);
  }
}
