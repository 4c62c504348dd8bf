// danihodovic/celery-exporter's metrics, with its names, types, labels and
// help texts, so its Grafana dashboards and alerts work against Stalk:
// hostnames shortened to the host (get_hostname), 'celery' for a task whose
// queue no event said, counters of one label set all present (at 0) once any
// of its task events was seen (task-sent only where a task-sent was, as the
// exporter avoids instantiating it for every client), failures labelled with
// the exception's class name. Workers of one host share a `hostname` label:
// the host is up when any of them is alive, and its active tasks are theirs
// summed (the exporter lets the last heartbeat win).

import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetricsState } from '../queries/metrics';
import { QUEUE_WAIT_BUCKETS } from '../shared/histograms';
import { StoredHistogram } from './histogram';
import { exporterException, exporterHostname, exporterQueueName, type SeriesScope, Tally } from './series';

type TaskLabels = { name: string; hostname: string; queue_name: string };
type FailedLabels = { name: string; hostname: string; exception: string; queue_name: string };

const TASK_COUNTERS = {
  'task-sent': ['celery_task_sent_total', 'Sent when a task message is published.'],
  'task-received': ['celery_task_received_total', 'Sent when the worker receives a task.'],
  'task-started': ['celery_task_started_total', 'Sent just before the worker executes the task.'],
  'task-succeeded': ['celery_task_succeeded_total', 'Sent if the task executed successfully.'],
  'task-failed': ['celery_task_failed_total', 'Sent if the execution of the task failed.'],
  'task-rejected': [
    'celery_task_rejected_total',
    'The task was rejected by the worker, possibly to be re-queued or moved to a dead letter queue.',
  ],
  'task-revoked': ['celery_task_revoked_total', 'Sent if the task has been revoked.'],
  'task-retried': ['celery_task_retried_total', 'Sent if the task failed, but will be retried in the future.'],
} as const;

type CountedType = keyof typeof TASK_COUNTERS;
const isCounted = (type: string): type is CountedType => Object.hasOwn(TASK_COUNTERS, type);

export function addCeleryExporterMetrics(
  registry: Registry,
  state: MetricsState,
  scope: SeriesScope,
  runtimeBuckets: readonly number[],
): void {
  const registers = [registry];
  const tallies = new Map<CountedType, Tally<TaskLabels>>();
  const failed = new Tally<FailedLabels>();
  const seen = new Tally<TaskLabels>();
  for (const type of Object.keys(TASK_COUNTERS) as CountedType[]) if (type !== 'task-failed') tallies.set(type, new Tally());

  const labelsOf = (hostname: string, taskName: string, queue: string): TaskLabels => ({
    name: taskName,
    hostname: exporterHostname(hostname),
    queue_name: exporterQueueName(queue),
  });

  for (const row of state.counters) {
    if (!isCounted(row.type)) continue;
    const labels = labelsOf(row.hostname, row.task_name, row.queue);
    if (!scope.keepsHost(labels.hostname)) continue;
    seen.ensure(labels);
    if (row.type === 'task-failed') {
      failed.add(
        { name: labels.name, hostname: labels.hostname, exception: exporterException(row.exception), queue_name: labels.queue_name },
        row.count,
      );
    } else tallies.get(row.type)!.add(labels, row.count);
  }
  for (const { labels } of seen.sorted()) {
    for (const [type, tally] of tallies) if (type !== 'task-sent') tally.ensure(labels);
    failed.ensure({ name: labels.name, hostname: labels.hostname, exception: '', queue_name: labels.queue_name });
  }

  for (const [type, [name, help]] of Object.entries(TASK_COUNTERS) as [CountedType, readonly [string, string]][]) {
    if (type === 'task-failed') {
      const counter = new Counter({ name, help, labelNames: ['name', 'hostname', 'exception', 'queue_name'], registers });
      for (const { labels, value } of failed.sorted()) counter.inc(labels, value);
    } else {
      const counter = new Counter({ name, help, labelNames: ['name', 'hostname', 'queue_name'], registers });
      for (const { labels, value } of tallies.get(type)!.sorted()) counter.inc(labels, value);
    }
  }

  const histograms = {
    runtime: new StoredHistogram({
      name: 'celery_task_runtime',
      help: 'Histogram of task runtime measurements.',
      labelNames: ['name', 'hostname', 'queue_name'],
      buckets: runtimeBuckets,
      registers,
    }),
    queue_wait: new StoredHistogram({
      name: 'celery_task_queue_wait_time',
      help: 'Histogram of the time tasks spend waiting in the queue before being executed, excluding deliberate ETA/countdown delay.',
      labelNames: ['name', 'hostname', 'queue_name'],
      buckets: QUEUE_WAIT_BUCKETS,
      registers,
    }),
  };
  for (const row of state.buckets) {
    const histogram = row.metric === 'runtime' || row.metric === 'queue_wait' ? histograms[row.metric] : undefined;
    const labels = labelsOf(row.hostname, row.task_name, row.queue);
    if (histogram && scope.keepsHost(labels.hostname)) histogram.addBucket(labels, row.le, row.count);
  }
  for (const row of state.totals) {
    const histogram = row.metric === 'runtime' || row.metric === 'queue_wait' ? histograms[row.metric] : undefined;
    const labels = labelsOf(row.hostname, row.task_name, row.queue);
    if (histogram && scope.keepsHost(labels.hostname)) histogram.addSum(labels, row.sum);
  }

  const up = new Tally<{ hostname: string }>();
  const active = new Tally<{ hostname: string }>();
  for (const worker of scope.workers) {
    const labels = { hostname: exporterHostname(worker.hostname) };
    if (worker.alive) up.set(labels, 1);
    else up.ensure(labels);
    active.add(labels, worker.alive ? (worker.active ?? 0) : 0);
  }
  const workerUp = new Gauge({
    name: 'celery_worker_up',
    help: 'Indicates if a worker has recently sent a heartbeat.',
    labelNames: ['hostname'],
    registers,
  });
  for (const { labels, value } of up.sorted()) workerUp.set(labels, value);
  const tasksActive = new Gauge({
    name: 'celery_worker_tasks_active',
    help: 'The number of tasks the worker is currently processing',
    labelNames: ['hostname'],
    registers,
  });
  for (const { labels, value } of active.sorted()) tasksActive.set(labels, value);

  const queueLength = new Gauge({
    name: 'celery_queue_length',
    help: 'The number of message in broker queue.',
    labelNames: ['queue_name'],
    registers,
  });
  const consumers = new Gauge({
    name: 'celery_active_consumer_count',
    help: 'The number of active consumer in broker queue.',
    labelNames: ['queue_name'],
    registers,
  });
  for (const queue of [...state.queues].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    queueLength.set({ queue_name: queue.name }, queue.messages);
    // RabbitMQ reports consumers; Redis cannot (the exporter, too, sets it for AMQP only).
    if (queue.consumers !== null) consumers.set({ queue_name: queue.name }, queue.consumers);
  }
}
