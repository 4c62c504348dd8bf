// /metrics after a real Celery workload: Stalk (src/node.ts, collector and
// web app in one process) watches Redis while a real worker runs tasks sent
// by a real producer on a queue of this file's own, so that other test files
// on the same broker cannot change what is counted here.

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CeleryWorker, REDIS_BROKER, runPython, startWorker, uniqueWorkerName } from '../support/celery';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { printLogsOnFailure, stopAllProcesses } from '../support/processes';
import { type Stalk, startStalk, waitFor } from '../support/stalk';
import { type Family, parseExposition, samples, total, sampleValue } from './exposition';

const QUEUE = `stalk-metrics-${process.pid}`;
/** A queue no worker consumes: its tasks wait there, and its length is measured. */
const IDLE_QUEUE = `stalk-metrics-idle-${process.pid}`;
const ADDS = 6;
const FAILS = 3;
const IDLE = 4;

let database: TestDatabase | undefined;
let stalk: Stalk | undefined;
let worker: CeleryWorker | undefined;
let ids: { ok: string[]; bad: string[] } | undefined;
/** How long the producer ran (seconds): every task was sent and started within it. */
let workloadSeconds = Number.NaN;
const redis = new Redis(REDIS_BROKER, { lazyConnect: true, maxRetriesPerRequest: 2 });

printLogsOnFailure();

async function scrape(): Promise<Map<string, Family>> {
  if (!stalk) throw new Error('Stalk did not start (see the set-up failure)');
  const { status, text } = await stalk.fetchText('/metrics');
  if (status !== 200) throw new Error(`/metrics: HTTP ${status}: ${text}`);
  return parseExposition(text);
}

function ran(): { stalk: Stalk; worker: CeleryWorker; ids: { ok: string[]; bad: string[] } } {
  if (!stalk || !worker || !ids) throw new Error('the workload did not run (see the set-up failure)');
  return { stalk, worker, ids };
}

beforeAll(async () => {
  await redis.connect();
  await redis.del(IDLE_QUEUE);
  database = await createTestDatabase('sqlite');
  stalk = await startStalk({ broker: REDIS_BROKER, db: database.url, extraArgs: ['--queue-poll-interval', '1s'] });
  worker = await startWorker({ broker: REDIS_BROKER, queue: QUEUE, hostname: uniqueWorkerName('metrics') });
  const producer = [
    'import json',
    'from stalk_tasks import add, fail',
    `ok = [add.apply_async((i, i)) for i in range(${ADDS})]`,
    `bad = [fail.apply_async(("m%d" % i,)) for i in range(${FAILS})]`,
    `idle = [add.apply_async((0, i), queue=${JSON.stringify(IDLE_QUEUE)}) for i in range(${IDLE})]`,
    'for r in ok: r.get(timeout=30)',
    'for r in bad:',
    '    try: r.get(timeout=30)',
    '    except ValueError: pass',
    'print(json.dumps({"ok": [r.id for r in ok], "bad": [r.id for r in bad]}))',
  ].join('\n');
  const producerStarted = Date.now();
  const stdout = await runPython('metrics workload', ['-c', producer], { broker: REDIS_BROKER, queue: QUEUE }, 60_000);
  workloadSeconds = (Date.now() - producerStarted) / 1000;
  ids = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { ok: string[]; bad: string[] };
}, 120_000);

afterAll(async () => {
  await stopAllProcesses();
  await database?.drop();
  await redis.del(IDLE_QUEUE).catch(() => undefined);
  redis.disconnect();
});

describe('/metrics after a real Celery workload', () => {
  it('counts every task event of the workload under the worker, the task and the queue', async () => {
    const { worker } = ran();
    const add = { name: 'stalk.add', hostname: 'stalktest', queue_name: QUEUE };
    const fail = { name: 'stalk.fail', hostname: 'stalktest', queue_name: QUEUE };
    // Wait until the last events are flushed.
    const m = await waitFor(
      async () => {
        const m = await scrape();
        return sampleValue(m, 'celery_task_succeeded_total', add) === ADDS &&
          sampleValue(m, 'celery_task_failed_total', { ...fail, exception: 'ValueError' }) === FAILS
          ? m
          : undefined;
      },
      20_000,
      `${ADDS} successes and ${FAILS} failures in /metrics`,
    );
    expect(sampleValue(m, 'celery_task_received_total', add)).toBe(ADDS);
    expect(sampleValue(m, 'celery_task_started_total', add)).toBe(ADDS);
    expect(sampleValue(m, 'celery_task_failed_total', { ...add, exception: '' })).toBe(0);
    expect(sampleValue(m, 'celery_task_received_total', fail)).toBe(FAILS);
    expect(sampleValue(m, 'celery_task_succeeded_total', fail)).toBe(0);
    // The producer's task-sent events, under its host (gen<pid>@host shortened).
    expect(total(m, 'celery_task_sent_total', { name: 'stalk.add', queue_name: QUEUE })).toBe(ADDS);
    expect(total(m, 'celery_task_sent_total', { name: 'stalk.fail', queue_name: QUEUE })).toBe(FAILS);
    expect(total(m, 'celery_task_sent_total', { name: 'stalk.add', queue_name: IDLE_QUEUE })).toBe(IDLE);

    // Flower's view of the same worker, by its full node name.
    const w = worker.hostname;
    expect(sampleValue(m, 'flower_events_total', { task: 'stalk.add', type: 'task-succeeded', worker: w })).toBe(ADDS);
    expect(sampleValue(m, 'flower_events_total', { task: 'stalk.fail', type: 'task-failed', worker: w })).toBe(FAILS);
    expect(sampleValue(m, 'flower_events_total', { task: 'stalk.add', type: 'task-received', worker: w })).toBe(ADDS);
  });

  it('observes every runtime and queue wait of the workload', async () => {
    const { worker } = ran();
    const m = await scrape();
    const add = { name: 'stalk.add', hostname: 'stalktest', queue_name: QUEUE };
    expect(sampleValue(m, 'celery_task_runtime_count', add)).toBe(ADDS);
    expect(sampleValue(m, 'celery_task_runtime_bucket', { ...add, le: '+Inf' })).toBe(ADDS);
    // stalk.add returns at once: every run well under a second.
    expect(sampleValue(m, 'celery_task_runtime_bucket', { ...add, le: '1' })).toBe(ADDS);
    expect(sampleValue(m, 'celery_task_runtime_sum', add)).toBeGreaterThan(0);
    expect(sampleValue(m, 'celery_task_runtime_sum', add)).toBeLessThan(ADDS);
    expect(sampleValue(m, 'flower_task_runtime_seconds_count', { task: 'stalk.add', worker: worker.hostname })).toBe(ADDS);
    // Failures have no runtime.
    expect(samples(m, 'celery_task_runtime_count', { name: 'stalk.fail', queue_name: QUEUE })).toEqual([]);
    // task_send_sent_event is on: each started task measured its wait in the queue.
    expect(sampleValue(m, 'celery_task_queue_wait_time_count', add)).toBe(ADDS);
    expect(sampleValue(m, 'celery_task_queue_wait_time_count', { ...add, name: 'stalk.fail' })).toBe(FAILS);
    // Each task waited a little (sent, then started: never the same microsecond), within the workload.
    expect(sampleValue(m, 'celery_task_queue_wait_time_sum', add)).toBeGreaterThan(0);
    expect(sampleValue(m, 'celery_task_queue_wait_time_sum', add)).toBeLessThan(ADDS * workloadSeconds);
    expect(sampleValue(m, 'celery_task_queue_wait_time_bucket', { ...add, le: '30' })).toBe(ADDS);
  });

  it('shows the worker online and idle, the waiting queue, and the collector up', async () => {
    const { worker } = ran();
    const m = await waitFor(
      async () => {
        const m = await scrape();
        // The collector reports its lag every 5 s, once it has flushed events.
        const measured = sampleValue(m, 'celery_queue_length', { queue_name: IDLE_QUEUE }) === IDLE;
        return measured && sampleValue(m, 'stalk_collector_lag_seconds') !== undefined ? m : undefined;
      },
      15_000,
      `celery_queue_length{queue_name="${IDLE_QUEUE}"} ${IDLE} and the collector's lag`,
    );
    expect(sampleValue(m, 'flower_worker_online', { worker: worker.hostname })).toBe(1);
    expect(sampleValue(m, 'celery_worker_up', { hostname: 'stalktest' })).toBe(1);
    expect(sampleValue(m, 'flower_worker_prefetched_tasks', { task: 'stalk.add', worker: worker.hostname })).toBe(0);
    expect(sampleValue(m, 'celery_queue_length', { queue_name: QUEUE })).toBe(0);
    // The idle queue's tasks were sent and never received.
    expect(sampleValue(m, 'stalk_tasks_in_flight', { state: 'PENDING', name: 'stalk.add' })).toBeGreaterThanOrEqual(IDLE);
    expect(sampleValue(m, 'stalk_collector_up')).toBe(1);
    expect(sampleValue(m, 'stalk_collector_broker_connected')).toBe(1);
    // One clock for the worker and the collector: an event is flushed after it was sent.
    expect(sampleValue(m, 'stalk_collector_lag_seconds')).toBeGreaterThan(0);
    expect(sampleValue(m, 'stalk_collector_lag_seconds')).toBeLessThan(10);
    expect(sampleValue(m, 'stalk_last_event_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('shows the worker offline once it shuts down', async () => {
    const { worker } = ran();
    await worker.stop();
    const m = await waitFor(
      async () => {
        const m = await scrape();
        return sampleValue(m, 'flower_worker_online', { worker: worker.hostname }) === 0 ? m : undefined;
      },
      15_000,
      `flower_worker_online{worker="${worker.hostname}"} 0`,
    );
    expect(sampleValue(m, 'flower_worker_number_of_currently_executing_tasks', { worker: worker.hostname })).toBe(0);
    // What it did stays counted.
    expect(sampleValue(m, 'flower_events_total', { task: 'stalk.add', type: 'task-succeeded', worker: worker.hostname })).toBe(ADDS);
  });
});
