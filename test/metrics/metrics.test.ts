// GET /metrics over state written by the real store, on SQLite and MariaDB:
// Flower's, celery-exporter's and Stalk's own metrics, parsed with a strict
// exposition parser and compared with what the seeded events imply.

import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMetricsRegistry } from '../../src/metrics/registry';
import { metricsRoutes } from '../../src/routes/metrics';
import type { AppEnv, Services } from '../../src/services';
import { createLogger } from '../../src/shared/log';
import { readMetricsState } from '../../src/queries/metrics';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { failed, received, started, succeeded } from '../fixtures/events';
import { testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';
import { canonical, type Family, labelValues, parseExposition, samples, total, sampleValue } from './exposition';
import { ALPHA, BETA, CLIENT, DELTA, flush, GAMMA, NOW, seedCluster } from './seed';

const DEFAULT_LE = ['0.005', '0.01', '0.025', '0.05', '0.075', '0.1', '0.25', '0.5', '0.75', '1', '2.5', '5', '7.5', '10', '+Inf'];

async function scrape(database: OpenDatabase, options: { now?: number; purgeOfflineWorkers?: number } = {}): Promise<Map<string, Family>> {
  const response = await testApp(database, { now: options.now ?? NOW, purgeOfflineWorkers: options.purgeOfflineWorkers ?? 0 }).request(
    '/metrics',
  );
  const text = await response.text();
  expect(response.status, text).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  expect(response.headers.get('cache-control')).toBe('no-store');
  return parseExposition(text);
}

/** The route alone, with settings the shared test app does not take (the runtime buckets). */
async function scrapeWith(database: OpenDatabase, metrics: Services['metrics']): Promise<Map<string, Family>> {
  const services = {
    db: database.db,
    log: createLogger('test', 'error'),
    now: () => NOW,
    purgeOfflineWorkers: 0,
    metrics,
  } as Partial<Services>;
  const app = new Hono<AppEnv>()
    .use(async (c, next) => {
      c.set('services', services as Services);
      await next();
    })
    .route('/', metricsRoutes);
  const response = await app.request('/metrics');
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

/** The `le` bounds of one histogram series, in exposition order. */
function bounds(families: Map<string, Family>, name: string, labels: Record<string, string>): string[] {
  return samples(families, `${name}_bucket`, labels)
    .filter((s) => Object.keys(s.labels).length === Object.keys(labels).length + 1)
    .map((s) => s.labels.le!);
}

/** `le` -> cumulative count of one histogram series. */
function buckets(families: Map<string, Family>, name: string, labels: Record<string, string>): Record<string, number> {
  const found: Record<string, number> = {};
  for (const s of samples(families, `${name}_bucket`, labels)) {
    if (Object.keys(s.labels).length === Object.keys(labels).length + 1) found[s.labels.le!] = s.value;
  }
  return found;
}

describe.each(DIALECTS)('/metrics on %s', (dialect) => {
  let database: OpenDatabase & { drop(): Promise<void> };
  let m: Map<string, Family>;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    await seedCluster(database);
    m = await scrape(database);
  });
  afterAll(async () => {
    await database?.drop();
  });

  describe("Flower's metrics", () => {
    it('declares each with its type and help text', () => {
      const expected: [string, string, string][] = [
        ['flower_events_total', 'counter', 'Number of events'],
        ['flower_task_runtime_seconds', 'histogram', 'Task runtime'],
        ['flower_task_prefetch_time_seconds', 'gauge', 'The time the task spent waiting at the celery worker to be executed.'],
        ['flower_worker_prefetched_tasks', 'gauge', 'Number of tasks of given type prefetched at a worker'],
        ['flower_worker_online', 'gauge', 'Worker online status'],
        ['flower_worker_number_of_currently_executing_tasks', 'gauge', 'Number of tasks currently executing at a worker'],
      ];
      for (const [name, type, help] of expected) expect(m.get(name), name).toMatchObject({ type, help });
    });

    it('counts task events by worker, type and task name', () => {
      const add = (type: string, worker = ALPHA) => sampleValue(m, 'flower_events_total', { task: 'tasks.add', type, worker });
      expect(add('task-succeeded')).toBe(5);
      expect(add('task-started')).toBe(5);
      expect(add('task-received')).toBe(5);
      expect(add('task-sent', CLIENT)).toBe(11);
      expect(sampleValue(m, 'flower_events_total', { task: 'tasks.fail', type: 'task-failed', worker: BETA })).toBe(4);
      expect(sampleValue(m, 'flower_events_total', { task: 'tasks.retry', type: 'task-retried', worker: ALPHA })).toBe(1);
      expect(sampleValue(m, 'flower_events_total', { task: 'tasks.add', type: 'task-rejected', worker: BETA })).toBe(1);
      expect(sampleValue(m, 'flower_events_total', { task: 'tasks.add', type: 'task-revoked', worker: BETA })).toBe(1);
      // Worker events are not task events.
      expect(labelValues(m, 'flower_events_total', 'type').every((t) => t.startsWith('task-'))).toBe(true);
    });

    it('puts runtimes in the right cumulative buckets, with +Inf, _sum and _count', () => {
      const labels = { task: 'tasks.add', worker: ALPHA };
      const got = buckets(m, 'flower_task_runtime_seconds', labels);
      expect(bounds(m, 'flower_task_runtime_seconds', labels)).toEqual(DEFAULT_LE);
      // Runtimes 0.003, 0.02, 0.3, 0.5 and 12.
      expect(got).toMatchObject({ '0.005': 1, '0.01': 1, '0.025': 2, '0.25': 2, '0.5': 4, '10': 4, '+Inf': 5 });
      expect(sampleValue(m, 'flower_task_runtime_seconds_count', labels)).toBe(5);
      expect(sampleValue(m, 'flower_task_runtime_seconds_sum', labels)).toBeCloseTo(12.823, 9);
    });

    it('tells online from offline workers, with the tasks they execute', () => {
      expect(sampleValue(m, 'flower_worker_online', { worker: ALPHA })).toBe(1);
      expect(sampleValue(m, 'flower_worker_online', { worker: BETA })).toBe(1);
      expect(sampleValue(m, 'flower_worker_online', { worker: GAMMA })).toBe(0);
      // Said online, but its heartbeats stopped (Flower would still say 1).
      expect(sampleValue(m, 'flower_worker_online', { worker: DELTA })).toBe(0);
      expect(sampleValue(m, 'flower_worker_number_of_currently_executing_tasks', { worker: ALPHA })).toBe(3);
      expect(sampleValue(m, 'flower_worker_number_of_currently_executing_tasks', { worker: BETA })).toBe(2);
      expect(sampleValue(m, 'flower_worker_number_of_currently_executing_tasks', { worker: DELTA })).toBe(0);
    });

    it('counts prefetched tasks (received, no eta) and the prefetch time of the latest started task', () => {
      expect(sampleValue(m, 'flower_worker_prefetched_tasks', { task: 'tasks.slow', worker: ALPHA })).toBe(2);
      expect(sampleValue(m, 'flower_worker_prefetched_tasks', { task: 'tasks.slow', worker: BETA })).toBe(0);
      expect(sampleValue(m, 'flower_worker_prefetched_tasks', { task: 'tasks.add', worker: ALPHA })).toBe(0);
      expect(sampleValue(m, 'flower_task_prefetch_time_seconds', { task: 'tasks.slow', worker: BETA })).toBeCloseTo(1, 6);
      expect(sampleValue(m, 'flower_task_prefetch_time_seconds', { task: 'tasks.add', worker: ALPHA })).toBe(0);
    });
  });

  describe("celery-exporter's metrics", () => {
    const add = { name: 'tasks.add', hostname: 'web-1', queue_name: 'celery' };

    it('counts each task event type under the short hostname and the queue', () => {
      expect(m.get('celery_task_sent_total')).toMatchObject({ type: 'counter', help: 'Sent when a task message is published.' });
      expect(sampleValue(m, 'celery_task_sent_total', { ...add, hostname: 'app-1' })).toBe(10);
      expect(sampleValue(m, 'celery_task_sent_total', { ...add, hostname: 'app-1', queue_name: 'priority' })).toBe(1);
      expect(sampleValue(m, 'celery_task_received_total', add)).toBe(7);
      expect(sampleValue(m, 'celery_task_started_total', add)).toBe(5);
      expect(sampleValue(m, 'celery_task_succeeded_total', add)).toBe(5);
      expect(sampleValue(m, 'celery_task_succeeded_total', { ...add, queue_name: 'priority' })).toBe(1);
      expect(sampleValue(m, 'celery_task_revoked_total', add)).toBe(1);
      expect(sampleValue(m, 'celery_task_rejected_total', add)).toBe(1);
      expect(sampleValue(m, 'celery_task_retried_total', { ...add, name: 'tasks.retry' })).toBe(1);
      expect(sampleValue(m, 'celery_task_retried_total', { ...add, name: 'tasks.retry2' })).toBe(1);
      // A task no task-sent named a queue for counts under 'celery'.
      expect(sampleValue(m, 'celery_task_received_total', { ...add, name: 'tasks.slow' })).toBe(5);
      // Hosts, not node names.
      expect(labelValues(m, 'celery_task_received_total', 'hostname')).toEqual(['app-1', 'web-1', 'web-2']);
    });

    it('labels failures with the exception class, and shows the other counters of a label set at 0', () => {
      const fail = { name: 'tasks.fail', hostname: 'web-1', queue_name: 'celery' };
      expect(sampleValue(m, 'celery_task_failed_total', { ...fail, exception: 'ValueError' })).toBe(2);
      expect(sampleValue(m, 'celery_task_failed_total', { ...fail, exception: 'KeyError' })).toBe(1);
      expect(sampleValue(m, 'celery_task_failed_total', { ...fail, exception: 'UnknownException' })).toBe(1);
      expect(sampleValue(m, 'celery_task_failed_total', { ...fail, exception: '' })).toBe(0);
      expect(sampleValue(m, 'celery_task_failed_total', { ...add, exception: '' })).toBe(0);
      expect(sampleValue(m, 'celery_task_succeeded_total', fail)).toBe(0);
      expect(sampleValue(m, 'celery_task_retried_total', fail)).toBe(0);
      // task-sent is not instantiated for label sets that never sent.
      expect(sampleValue(m, 'celery_task_sent_total', add)).toBeUndefined();
    });

    it('has runtime histograms with the default buckets', () => {
      expect(m.get('celery_task_runtime')).toMatchObject({ type: 'histogram', help: 'Histogram of task runtime measurements.' });
      const got = buckets(m, 'celery_task_runtime', add);
      expect(bounds(m, 'celery_task_runtime', add)).toEqual(DEFAULT_LE);
      expect(got).toMatchObject({ '0.005': 1, '0.025': 2, '0.5': 4, '10': 4, '+Inf': 5 });
      expect(sampleValue(m, 'celery_task_runtime_sum', add)).toBeCloseTo(12.823, 9);
      expect(sampleValue(m, 'celery_task_runtime_count', { ...add, queue_name: 'priority' })).toBe(1);
    });

    it('measures queue wait from sending (or the eta, when later) to starting, never below 0', () => {
      const got = buckets(m, 'celery_task_queue_wait_time', add);
      expect(bounds(m, 'celery_task_queue_wait_time', add)).toEqual([
        '0.05',
        '0.1',
        '0.25',
        '0.5',
        '1',
        '2.5',
        '5',
        '10',
        '30',
        '60',
        '120',
        '300',
        '600',
        '1800',
        '+Inf',
      ]);
      // Four waits of 0.2 s; the eta task waited 1 s after its eta (6 s after sending).
      expect(got).toMatchObject({ '0.1': 0, '0.25': 4, '0.5': 4, '1': 5, '+Inf': 5 });
      expect(sampleValue(m, 'celery_task_queue_wait_time_sum', add)).toBeCloseTo(1.8, 5);
      const skew = { ...add, name: 'tasks.skew' };
      expect(buckets(m, 'celery_task_queue_wait_time', skew)['0.05']).toBe(1);
      expect(sampleValue(m, 'celery_task_queue_wait_time_sum', skew)).toBe(0);
      // The retry's second run waited from the (only) sending: 1.1 s.
      expect(buckets(m, 'celery_task_queue_wait_time', { ...add, name: 'tasks.retry' })).toMatchObject({ '0.25': 1, '1': 1, '2.5': 2 });
      // Tasks nobody sent (no task-sent) have no queue wait.
      expect(samples(m, 'celery_task_queue_wait_time_count', { name: 'tasks.slow' })).toEqual([]);
    });

    it('reports workers up and their active tasks per host', () => {
      expect(sampleValue(m, 'celery_worker_up', { hostname: 'web-1' })).toBe(1);
      expect(sampleValue(m, 'celery_worker_up', { hostname: 'web-2' })).toBe(0);
      expect(sampleValue(m, 'celery_worker_up', { hostname: 'web-3' })).toBe(0);
      expect(sampleValue(m, 'celery_worker_tasks_active', { hostname: 'web-1' })).toBe(5);
      expect(sampleValue(m, 'celery_worker_tasks_active', { hostname: 'web-3' })).toBe(0);
    });

    it('reports queue lengths, and consumers where the broker says them', () => {
      expect(sampleValue(m, 'celery_queue_length', { queue_name: 'celery' })).toBe(7);
      expect(sampleValue(m, 'celery_queue_length', { queue_name: 'priority' })).toBe(0);
      expect(sampleValue(m, 'celery_active_consumer_count', { queue_name: 'priority' })).toBe(2);
      expect(sampleValue(m, 'celery_active_consumer_count', { queue_name: 'celery' })).toBeUndefined();
    });
  });

  describe("Stalk's own metrics", () => {
    it('counts tasks in flight by state and name', () => {
      expect(sampleValue(m, 'stalk_tasks_in_flight', { state: 'PENDING', name: 'tasks.add' })).toBe(2);
      expect(sampleValue(m, 'stalk_tasks_in_flight', { state: 'RECEIVED', name: 'tasks.slow' })).toBe(3);
      expect(sampleValue(m, 'stalk_tasks_in_flight', { state: 'STARTED', name: 'tasks.slow' })).toBe(2);
      expect(sampleValue(m, 'stalk_tasks_in_flight', { state: 'RETRY', name: 'tasks.retry2' })).toBe(1);
      expect(labelValues(m, 'stalk_tasks_in_flight', 'state')).toEqual(['PENDING', 'RECEIVED', 'RETRY', 'STARTED']);
    });

    it("reports the collector's status row", () => {
      expect(sampleValue(m, 'stalk_collector_up')).toBe(1);
      expect(sampleValue(m, 'stalk_collector_broker_connected')).toBe(1);
      expect(sampleValue(m, 'stalk_collector_lag_seconds')).toBe(0.25);
      expect(sampleValue(m, 'stalk_last_event_timestamp_seconds')).toBe(NOW - 3);
      expect(sampleValue(m, 'stalk_collector_last_report_timestamp_seconds')).toBe(NOW - 2);
      expect(sampleValue(m, 'stalk_database_flush_seconds')).toBe(0.012);
      expect(sampleValue(m, 'stalk_collector_events_total')).toBe(12345);
      expect(sampleValue(m, 'stalk_events_dropped_total', { reason: 'buffer-full' })).toBe(5);
      expect(sampleValue(m, 'stalk_events_dropped_total', { reason: 'unsupported-serializer' })).toBe(2);
      expect(m.get('stalk_events_dropped_total')?.type).toBe('counter');
    });

    it('says the collector is down once its status row is stale', async () => {
      const later = await scrape(database, { now: NOW + 60 });
      expect(sampleValue(later, 'stalk_collector_up')).toBe(0);
      expect(sampleValue(later, 'stalk_collector_broker_connected')).toBe(0);
      // And every worker is offline by then.
      expect(total(later, 'flower_worker_online')).toBe(0);
      expect(total(later, 'celery_worker_up')).toBe(0);
    });
  });

  describe('offline workers', () => {
    it('keep their series while --purge-offline-workers is 0', () => {
      expect(sampleValue(m, 'flower_worker_online', { worker: GAMMA })).toBe(0);
      expect(samples(m, 'flower_events_total', { worker: GAMMA }).length).toBeGreaterThan(0);
      expect(samples(m, 'celery_task_runtime_count', { hostname: 'web-2' })).toHaveLength(1);
    });

    it('leave every series once offline for longer than --purge-offline-workers', async () => {
      const purged = await scrape(database, { purgeOfflineWorkers: 300 });
      const named = (label: string, value: string) =>
        [...purged.values()]
          .flatMap((f) => f.samples)
          .filter((s) => s.labels[label] === value)
          .map((s) => s.name);
      expect(named('worker', GAMMA)).toEqual([]);
      expect(named('hostname', 'web-2')).toEqual([]);
      // Offline for 100 s only: still there.
      expect(sampleValue(purged, 'flower_worker_online', { worker: DELTA })).toBe(0);
      expect(sampleValue(purged, 'celery_worker_up', { hostname: 'web-3' })).toBe(0);
      expect(sampleValue(purged, 'flower_events_total', { task: 'tasks.add', type: 'task-succeeded', worker: ALPHA })).toBe(5);
      // As Flower does, names that were never workers (clients' gen<pid>@host) leave too...
      expect(named('worker', CLIENT)).toEqual([]);
      // ...while celery-exporter's host-level series of clients stay.
      expect(sampleValue(purged, 'celery_task_sent_total', { name: 'tasks.add', hostname: 'app-1', queue_name: 'celery' })).toBe(10);
    });
  });

  describe('--task-runtime-metric-buckets', () => {
    it('sums the stored buckets into the bounds asked for, in both runtime histograms', async () => {
      const custom = await scrapeWith(database, { runtimeBuckets: [0.5, 30] });
      expect(bounds(custom, 'flower_task_runtime_seconds', { task: 'tasks.add', worker: ALPHA })).toEqual(['0.5', '30', '+Inf']);
      expect(buckets(custom, 'flower_task_runtime_seconds', { task: 'tasks.add', worker: ALPHA })).toEqual({
        '0.5': 4,
        '30': 5,
        '+Inf': 5,
      });
      expect(buckets(custom, 'celery_task_runtime', { name: 'tasks.add', hostname: 'web-1', queue_name: 'celery' })).toEqual({
        '0.5': 4,
        '30': 5,
        '+Inf': 5,
      });
      // Queue wait keeps celery-exporter's buckets.
      expect(bounds(custom, 'celery_task_queue_wait_time', { name: 'tasks.add', hostname: 'web-1', queue_name: 'celery' })).toHaveLength(
        15,
      );
    });
  });

  describe('per scrape, from the database', () => {
    it('answers the same numbers to every scrape, and new events exactly once', async () => {
      const again = await scrape(database);
      expect(canonical(again)).toEqual(canonical(m));
      const story = { uuid: 'm-after-1', name: 'tasks.after', worker: ALPHA };
      await flush(database, [received(story, NOW - 0.9), started(story, NOW - 0.8), failed(story, NOW - 0.7, "TypeError('x')")]);
      const after = await scrape(database);
      const labels = { name: 'tasks.after', hostname: 'web-1', queue_name: 'celery' };
      expect(sampleValue(after, 'celery_task_failed_total', { ...labels, exception: 'TypeError' })).toBe(1);
      expect(sampleValue(after, 'flower_events_total', { task: 'tasks.after', type: 'task-received', worker: ALPHA })).toBe(1);
      expect(total(after, 'flower_events_total')).toBe(total(m, 'flower_events_total') + 3);
    });

    it('resets the prefetch time once the started tasks finish', async () => {
      const running = await database.db
        .selectFrom('tasks')
        .select('uuid')
        .where('state', '=', 'STARTED')
        .where('worker', '=', BETA)
        .execute();
      expect(running).toHaveLength(2);
      await flush(
        database,
        running.map((row, i) => succeeded({ uuid: row.uuid, name: 'tasks.slow', worker: BETA }, NOW - 0.5 + i * 0.01, '1', 8)),
      );
      const after = await scrape(database);
      expect(sampleValue(after, 'flower_task_prefetch_time_seconds', { task: 'tasks.slow', worker: BETA })).toBe(0);
      expect(sampleValue(after, 'stalk_tasks_in_flight', { state: 'STARTED', name: 'tasks.slow' })).toBeUndefined();
      // Both ran 8 s: the 10 s bucket.
      expect(buckets(after, 'flower_task_runtime_seconds', { task: 'tasks.slow', worker: BETA })).toMatchObject({
        '7.5': 0,
        '10': 2,
        '+Inf': 2,
      });
    });

    it('builds the same exposition from the same state, registry after registry', async () => {
      const state = await readMetricsState(database.db);
      const options = { now: NOW, purgeOfflineWorkers: 0 };
      const first = await buildMetricsRegistry(state, options).metrics();
      expect(await buildMetricsRegistry(state, options).metrics()).toBe(first);
    });
  });
});

describe('/metrics without a database', () => {
  it('fails the scrape with 503 instead of answering numbers', async () => {
    const database = await openTestDatabase('sqlite');
    try {
      await database.db.schema.dropTable('event_counters').execute();
      const response = await testApp(database, { now: NOW }).request('/metrics');
      expect(response.status).toBe(503);
      expect(await response.text()).toBe('database unavailable');
    } finally {
      await database.drop();
    }
  });
});

describe('/metrics on an empty database', () => {
  it('declares every metric, with no series but the collector being down', async () => {
    const database = await openTestDatabase('sqlite');
    try {
      const m = await scrape(database);
      expect(sampleValue(m, 'stalk_collector_up')).toBe(0);
      expect(m.get('flower_events_total')?.samples).toEqual([]);
      expect(m.get('celery_task_runtime')?.samples).toEqual([]);
      expect(m.has('stalk_collector_lag_seconds')).toBe(false);
    } finally {
      await database.drop();
    }
  });
});

describe('/metrics with hostile names from Celery', () => {
  it('escapes label values, so they read back exactly and break no line', async () => {
    const database = await openTestDatabase('sqlite');
    try {
      const name = 'evil"} 1\nfake_metric{x="y\\z';
      const worker = 'w"\n@host\\x';
      const story = { uuid: 'hostile-1', name, worker };
      await flush(database, [received(story, NOW - 3), started(story, NOW - 2), succeeded(story, NOW - 1, '1', 0.2)]);
      const m = await scrape(database);
      expect(sampleValue(m, 'flower_events_total', { task: name, type: 'task-succeeded', worker })).toBe(1);
      expect(sampleValue(m, 'celery_task_runtime_count', { name, hostname: 'host\\x', queue_name: 'celery' })).toBe(1);
      expect(m.has('fake_metric')).toBe(false);
    } finally {
      await database.drop();
    }
  });
});
