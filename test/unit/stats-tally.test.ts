// The task statistics' in-memory half: which bin an observation lands in,
// percentiles from bins, and StatsTally as MetricTally feeds it (each event
// in the minute of its own timestamp, per task name; failures by class).

import { describe, expect, it } from 'vitest';
import { KEY } from '../../src/shared/schema';
import { STATS_COUNTS } from '../../src/shared/stats';
import {
  binIndex,
  binQuantile,
  bucketStart,
  QUEUE_WAIT_BIN_COLUMNS,
  RUNTIME_BIN_COLUMNS,
  STATS_BIN_COUNT,
  STATS_BOUNDS,
} from '../../src/shared/stats-bins';
import { timelineEntry } from '../../worker-collector/fold/task';
import { MetricTally, type TaskRef } from '../../worker-collector/store/counters';
import { STORED_BUCKETS } from '../../src/shared/histograms';
import { TASK_STATS_COLUMNS } from '../../worker-collector/store/stats';
import { failed, received, retried, revoked, sent, started, succeeded, type TaskStory } from '../fixtures/events';

const T0 = 1_800_000_000; // a minute boundary (1_800_000_000 / 60 = 30_000_000)

describe('bins and percentiles', () => {
  it('put a value on a bound in that bound, and past the last bound in +Inf', () => {
    expect(STATS_BIN_COUNT).toBe(STATS_BOUNDS.length + 1);
    expect(binIndex(0)).toBe(0);
    expect(binIndex(STATS_BOUNDS[0]!)).toBe(0);
    expect(binIndex(STATS_BOUNDS[0]! + 1e-9)).toBe(1);
    for (let i = 0; i < STATS_BOUNDS.length; i++) {
      expect(binIndex(STATS_BOUNDS[i]!)).toBe(i);
      // Just past each bound: the next bin.
      expect(binIndex(STATS_BOUNDS[i]! * 1.0001)).toBe(i + 1);
    }
    expect(binIndex(1e9)).toBe(STATS_BOUNDS.length);
  });

  it('answer the bound of the bin where the cumulative count reaches the quantile', () => {
    const bins = new Array<number>(STATS_BIN_COUNT).fill(0);
    expect(binQuantile(bins, 0.5)).toBeNull();
    bins[binIndex(0.3)] = 50;
    bins[binIndex(3)] = 49;
    bins[binIndex(100)] = 1;
    expect(binQuantile(bins, 0.5)).toBe(0.5);
    expect(binQuantile(bins, 0.51)).toBe(5);
    expect(binQuantile(bins, 0.99)).toBe(5);
    expect(binQuantile(bins, 0.995)).toBe(120);
    bins[STATS_BIN_COUNT - 1] = 1000;
    // In +Inf: the largest finite bound.
    expect(binQuantile(bins, 0.99)).toBe(STATS_BOUNDS[STATS_BOUNDS.length - 1]);
  });

  it('agree with sorting the observations, to the bin', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    for (let round = 0; round < 50; round++) {
      const values = Array.from({ length: 1 + Math.floor(random() * 300) }, () => random() ** 3 * 200);
      const bins = new Array<number>(STATS_BIN_COUNT).fill(0);
      for (const v of values) bins[binIndex(v)]! += 1;
      const sorted = [...values].sort((a, b) => a - b);
      for (const q of [0.5, 0.95, 0.99]) {
        // The nearest-rank quantile, then the bound of its bin.
        const exact = sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
        expect(binQuantile(bins, q)).toBe(STATS_BOUNDS[binIndex(exact)]);
      }
    }
  });

  it('floor times to their bucket', () => {
    expect(bucketStart(T0 + 59.999, 60)).toBe(T0);
    expect(bucketStart(T0 + 60, 60)).toBe(T0 + 60);
    expect(bucketStart(T0 + 3599, 3600)).toBe(Math.floor((T0 + 3599) / 3600) * 3600);
  });
});

const ref = (name: string | null): TaskRef => ({ name, queue: 'celery', sent: null, eta: null });

/** task_stats rows of one step of a tally as `bucket|name -> {column: n}` (zero columns left out). */
function statsRows(tally: MetricTally, step = 60): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const row of tally.deltas().taskStats) {
    const record = Object.fromEntries(TASK_STATS_COLUMNS.map((c, i) => [c, row[i]]));
    if (record.step !== step) continue;
    const key = `${record.bucket}|${record.task_name}`;
    expect(out[key], `${key} appears once`).toBeUndefined();
    out[key] = Object.fromEntries(
      Object.entries(record).filter(([c, v]) => !['step', 'bucket', 'task_name'].includes(c) && v !== 0),
    ) as Record<string, number>;
  }
  return out;
}

describe('StatsTally through MetricTally', () => {
  const a: TaskStory = { uuid: 'a', name: 'tasks.a' };
  const rt = (v: number) => RUNTIME_BIN_COLUMNS[binIndex(v)]!;
  const qw = (v: number) => QUEUE_WAIT_BIN_COLUMNS[binIndex(v)]!;

  it('counts each event in the minute of its own timestamp, with runtimes and queue waits', () => {
    const tally = new MetricTally(STORED_BUCKETS);
    const events = [
      sent(a, T0 + 58),
      received(a, T0 + 59),
      started(a, T0 + 61),
      retried(a, T0 + 62),
      received(a, T0 + 62.5, 1),
      started(a, T0 + 69),
      succeeded(a, T0 + 130, '1', 0.3),
    ];
    tally.taskEvents(events.map(timelineEntry), ref('tasks.a'));
    expect(statsRows(tally)).toEqual({
      [`${T0}|tasks.a`]: { sent: 1, received: 1 },
      // Queue waits from the task-sent at T0+58: 3 s and 11 s.
      [`${T0 + 60}|tasks.a`]: { started: 2, retried: 1, received: 1, [qw(3)]: 1, [qw(11)]: 1 },
      [`${T0 + 120}|tasks.a`]: { succeeded: 1, [rt(0.3)]: 1 },
    });
    // The same, summed into the hour's row (T0 is an hour boundary), and into the all-names rows.
    const hour = { sent: 1, received: 2, started: 2, retried: 1, succeeded: 1, [qw(3)]: 1, [qw(11)]: 1, [rt(0.3)]: 1 };
    expect(statsRows(tally, 3600)).toEqual({ [`${T0}|tasks.a`]: hour });
    const all = tally.deltas().taskStatsAll.map((row) => row.slice(0, 2));
    expect(all.sort()).toEqual(
      [
        [60, T0],
        [60, T0 + 60],
        [60, T0 + 120],
        [3600, T0],
      ].sort(),
    );
    const allHour = tally.deltas().taskStatsAll.find((row) => row[0] === 3600)!;
    expect(allHour.slice(2)).toEqual(
      tally
        .deltas()
        .taskStats.find((row) => row[0] === 3600)!
        .slice(3),
    );
    expect(tally.deltas().taskStatsExceptions).toEqual([]);
  });

  it('counts every kind of event and groups failures by exception class', () => {
    const tally = new MetricTally(STORED_BUCKETS);
    const b: TaskStory = { uuid: 'b', name: 'tasks.b' };
    const c: TaskStory = { uuid: 'c', name: 'tasks.b' };
    const d: TaskStory = { uuid: 'd', name: 'tasks.b' };
    tally.taskEvents([failed(b, T0 + 1, "KeyError('x')")].map(timelineEntry), ref('tasks.b'));
    tally.taskEvents([failed(c, T0 + 2, "KeyError('y')"), failed(c, T0 + 3, 'ValueError()')].map(timelineEntry), ref('tasks.b'));
    tally.taskEvents([revoked(d, T0 + 4)].map(timelineEntry), ref('tasks.b'));
    tally.taskEvents([{ type: 'task-rejected', timestamp: T0 + 5, hostname: 'w', clock: 1, data: null }], ref('tasks.b'));
    // Not a counted type: left out.
    tally.taskEvents([{ type: 'task-progress', timestamp: T0 + 5, hostname: 'w', clock: 2, data: null }], ref('tasks.b'));
    expect(statsRows(tally)).toEqual({ [`${T0}|tasks.b`]: { failed: 3, revoked: 1, rejected: 1 } });
    const exceptions = tally.deltas().taskStatsExceptions.map((e) => [e.step, e.bucket, e.task_name, e.exception, e.count]);
    const day = T0 - (T0 % 86_400);
    expect(exceptions.sort()).toEqual(
      [
        [3600, T0, 'tasks.b', 'KeyError', 2],
        [3600, T0, 'tasks.b', 'ValueError', 1],
        [60, T0, 'tasks.b', 'KeyError', 2],
        [60, T0, 'tasks.b', 'ValueError', 1],
        [86400, day, 'tasks.b', 'KeyError', 2],
        [86400, day, 'tasks.b', 'ValueError', 1],
      ].sort(),
    );
    expect(exceptions.length).toBe(6);
  });

  it('counts an unnamed task under the empty name, and cuts long names to the key', () => {
    const tally = new MetricTally(STORED_BUCKETS);
    tally.taskEvents([started({ uuid: 'x' }, T0)].map(timelineEntry), ref(null));
    const long = 'n'.repeat(KEY.name + 20);
    tally.taskEvents([started({ uuid: 'y' }, T0)].map(timelineEntry), ref(long));
    tally.taskEvents([started({ uuid: 'z' }, T0)].map(timelineEntry), ref(`${long}-other`));
    expect(statsRows(tally)).toEqual({ [`${T0}|`]: { started: 1 }, [`${T0}|${'n'.repeat(KEY.name)}`]: { started: 2 } });
  });

  it('absorbs another tally by adding its rows', () => {
    const one = new MetricTally(STORED_BUCKETS);
    const two = new MetricTally(STORED_BUCKETS);
    const both = new MetricTally(STORED_BUCKETS);
    const first = [received(a, T0), succeeded(a, T0 + 1, '1', 2)].map(timelineEntry);
    const second = [received(a, T0 + 2), failed(a, T0 + 70, 'OSError()')].map(timelineEntry);
    one.taskEvents(first, ref('tasks.a'));
    two.taskEvents(second, ref('tasks.a'));
    both.taskEvents(first, ref('tasks.a'));
    both.taskEvents(second, ref('tasks.a'));
    const before = statsRows(two);
    one.absorb(two);
    expect(statsRows(one)).toEqual(statsRows(both));
    expect(statsRows(two)).toEqual(before);
    expect(one.deltas().taskStatsExceptions).toEqual(both.deltas().taskStatsExceptions);
  });

  it('writes every count column it holds', () => {
    expect(TASK_STATS_COLUMNS.slice(3, 3 + STATS_COUNTS.length)).toEqual([...STATS_COUNTS]);
  });
});
