// /api/stats/tasks after a real Celery workload, on SQLite and MariaDB:
// Stalk (src/node.ts, collector and web app in one process) watches Redis
// while a real worker runs a known mix (successes, failures of two exception
// classes, retries) sent by a real producer. The window sums must equal what
// the worker did, and, minute by minute, the events Stalk stored. A Redis
// database of this file's own keeps other files' events out (Celery's Redis
// fanout channels carry the database number).

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exceptionStats, queueLengthSeries } from '../../src/queries/stats';
import { STATS_COUNTS, type StatsAnswer } from '../../src/shared/stats';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { type CeleryWorker, runPython, startWorker, uniqueWorkerName } from '../support/celery';
import { createTestDatabase, DIALECTS, openTestConnection, type TestDatabase } from '../support/databases';
import { printLogsOnFailure, stopAllProcesses } from '../support/processes';
import { type Stalk, startStalk, waitFor } from '../support/stalk';

const BROKER = 'redis://localhost:6379/7';
const QUEUE = `stalk-stats-${process.pid}`;
const IDLE_QUEUE = `stalk-stats-idle-${process.pid}`;
const ADDS = 7;
const BAD_ADDS = 2; // add('a', 1): TypeError
const FAILS = 3; // ValueError
const FLAKY = 2; // one retry each, then success
const IDLE = 3; // sent to a queue nobody consumes

async function dropIdleQueue(): Promise<void> {
  const redis = new Redis(BROKER, { maxRetriesPerRequest: 2 });
  try {
    await redis.del(IDLE_QUEUE);
  } finally {
    redis.disconnect();
  }
}

describe.each(DIALECTS)('task statistics of a real workload on %s', (dialect) => {
  let target: TestDatabase | undefined;
  let stalk: Stalk | undefined;
  let worker: CeleryWorker | undefined;
  let db: OpenDatabase | undefined;
  let from = 0;

  printLogsOnFailure();

  beforeAll(async () => {
    // The idle queue's tasks stay in the broker: none left from an earlier run.
    await dropIdleQueue();
    target = await createTestDatabase(dialect);
    stalk = await startStalk({ broker: BROKER, db: target.url, extraArgs: ['--queue-poll-interval', '1s'] });
    worker = await startWorker({ broker: BROKER, queue: QUEUE, hostname: uniqueWorkerName('stats') });
    from = Math.floor(Date.now() / 1000 / 60) * 60 - 60;
    const producer = [
      'from stalk_tasks import add, fail, flaky',
      `ok = [add.apply_async((i, i)) for i in range(${ADDS})]`,
      `bad = [add.apply_async(("a", i)) for i in range(${BAD_ADDS})] + [fail.apply_async(("m%d" % i,)) for i in range(${FAILS})]`,
      `flakes = [flaky.apply_async(("f%d" % i,)) for i in range(${FLAKY})]`,
      `idle = [add.apply_async((0, i), queue=${JSON.stringify(IDLE_QUEUE)}) for i in range(${IDLE})]`,
      'for r in ok + flakes: r.get(timeout=30)',
      'for r in bad:',
      '    try: r.get(timeout=30)',
      '    except (TypeError, ValueError): pass',
    ].join('\n');
    await runPython('stats workload', ['-c', producer], { broker: BROKER, queue: QUEUE }, 60_000);
    db = await openTestConnection(target.url);
  }, 120_000);

  afterAll(async () => {
    await stopAllProcesses();
    await dropIdleQueue();
    await db?.close();
    await target?.drop();
  });

  function ran(): { stalk: Stalk; db: OpenDatabase } {
    if (!stalk || !worker || !db) throw new Error('the workload did not run (see the set-up failure)');
    return { stalk, db };
  }

  const window = () => `from=${from}&to=${Math.ceil(Date.now() / 1000) + 120}`;

  /** Each name's counts summed over the answer's buckets. */
  function sums(answer: StatsAnswer): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const series of answer.series) {
      const total = Object.fromEntries(STATS_COUNTS.map((c) => [c, 0])) as Record<string, number>;
      for (const bucket of series.buckets) for (const c of STATS_COUNTS) total[c]! += bucket[c];
      out[series.name] = total;
    }
    return out;
  }

  it('sums to what the worker did', async () => {
    const { stalk } = ran();
    const answer = await waitFor(
      async () => {
        const a = await stalk.fetchJson<StatsAnswer>(`/api/stats/tasks?${window()}&step=60`);
        const s = sums(a);
        const done =
          s['stalk.add']?.succeeded === ADDS &&
          s['stalk.add']?.failed === BAD_ADDS &&
          s['stalk.fail']?.failed === FAILS &&
          s['stalk.flaky']?.succeeded === FLAKY;
        return done ? a : undefined;
      },
      20_000,
      'the workload in /api/stats/tasks',
    );
    const s = sums(answer);
    expect(Object.keys(s).sort()).toEqual(['stalk.add', 'stalk.fail', 'stalk.flaky']);
    expect(s['stalk.add']).toMatchObject({
      received: ADDS + BAD_ADDS,
      started: ADDS + BAD_ADDS,
      succeeded: ADDS,
      failed: BAD_ADDS,
      retried: 0,
      revoked: 0,
      rejected: 0,
    });
    // The producer's task-sent events, the idle queue's included.
    expect(s['stalk.add']!.sent).toBe(ADDS + BAD_ADDS + IDLE);
    expect(s['stalk.fail']).toMatchObject({ sent: FAILS, received: FAILS, started: FAILS, succeeded: 0, failed: FAILS, retried: 0 });
    expect(s['stalk.flaky']).toMatchObject({ received: 2 * FLAKY, started: 2 * FLAKY, succeeded: FLAKY, failed: 0, retried: FLAKY });

    // Hours give the same sums; stalk.add returns at once.
    // (From the start of the hour: an hour bucket is in a window when its start is.)
    const to = Math.ceil(Date.now() / 1000) + 3600;
    const hours = await stalk.fetchJson<StatsAnswer>(`/api/stats/tasks?from=${from - (from % 3600)}&to=${to}&step=3600&name=stalk.add`);
    expect(hours.step).toBe(3600);
    expect(sums(hours)).toEqual({ 'stalk.add': s['stalk.add'] });
    for (const bucket of hours.series[0]!.buckets) if (bucket.succeeded > 0) expect(bucket.runtime_p99).toBeLessThanOrEqual(1);
  });

  it('equals, minute by minute, the events Stalk stored', async () => {
    const { stalk, db } = ran();
    const answer = await stalk.fetchJson<StatsAnswer>(`/api/stats/tasks?${window()}&step=60`);
    const answered = new Map<string, number>();
    for (const series of answer.series)
      for (const bucket of series.buckets)
        for (const c of STATS_COUNTS) if (bucket[c] > 0) answered.set(`${bucket.t}|${series.name}|${c}`, bucket[c]);

    const rows = await db.db
      .selectFrom('task_events')
      .innerJoin('tasks', 'tasks.uuid', 'task_events.task_id')
      .select(['tasks.name', 'task_events.events'])
      .execute();
    const stored = new Map<string, number>();
    for (const row of rows) {
      for (const e of JSON.parse(row.events) as { type: string; timestamp: number }[]) {
        const key = `${Math.floor(e.timestamp / 60) * 60}|${row.name}|${e.type.replace('task-', '')}`;
        stored.set(key, (stored.get(key) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries([...answered].sort())).toEqual(Object.fromEntries([...stored].sort()));
  });

  it('groups the failures by exception class, and samples the queue lengths', async () => {
    const { db } = ran();
    const to = Math.ceil(Date.now() / 1000) + 120;
    const failures = await exceptionStats(db.db, { from, to, limit: 10 });
    expect(failures.map((f) => [f.name, f.exception, f.count])).toEqual([
      ['stalk.fail', 'ValueError', FAILS],
      ['stalk.add', 'TypeError', BAD_ADDS],
    ]);
    for (const f of failures) expect(f.firstSeen).toBeGreaterThanOrEqual(from);
    // The idle queue's three tasks wait there; the collector measures it every second.
    const queues = await waitFor(
      async () => {
        const q = await queueLengthSeries(db.db, { from, to, step: 60 });
        return q.some((s) => s.queue === IDLE_QUEUE) ? q : undefined;
      },
      10_000,
      'the idle queue in queue_stats',
    );
    const idle = queues.find((s) => s.queue === IDLE_QUEUE)!;
    expect(Math.max(...idle.points.map((p) => p.length))).toBe(IDLE);
  });
});
