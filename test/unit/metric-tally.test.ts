// MetricTally (worker-collector/store/counters.ts): what one flush adds to
// event_counters and the histogram tables. Counts per (hostname, task name,
// queue, type, exception), bucket placement at and between bounds, sums,
// absorbing another tally, queue wait from sent and eta, and label values cut
// to their key columns.

import { describe, expect, it } from 'vitest';
import { STORED_BUCKETS } from '../../src/shared/histograms';
import { KEY } from '../../src/shared/schema';
import type { EventCountersTable, HistogramBucketsTable, HistogramTotalsTable } from '../../src/shared/schema';
import { timelineEntry, type TimelineEntry } from '../../worker-collector/fold/task';
import { type MetricDeltas, MetricTally, type TaskRef } from '../../worker-collector/store/counters';
import { failed, received, retried, sent, started, succeeded, type TaskStory } from '../fixtures/events';

const BOUNDS = [0.1, 1, 10];

const ref = (name: string | null, queue: string | null = 'celery', sentAt: number | null = null, eta: string | null = null): TaskRef => ({
  name,
  queue,
  sent: sentAt,
  eta,
});

/** A task-* entry as the timeline stores it, built directly (hostname, time and data as given). */
function entry(type: string, timestamp: number, hostname = 'w1@host', data: TimelineEntry['data'] = null): TimelineEntry {
  return { type, timestamp, hostname, clock: 0, data };
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

function counterKey(row: EventCountersTable): string {
  return [row.hostname, row.task_name, row.queue, row.type, row.exception].join('|');
}

/** Counter rows as `host|name|queue|type|exception -> count`. */
function counters(deltas: MetricDeltas): Record<string, number> {
  const out: Record<string, number> = {};
  for (const row of deltas.counters) {
    const key = counterKey(row);
    expect(out[key], `counter row ${key} appears once`).toBeUndefined();
    out[key] = Number(row.count);
  }
  return out;
}

/** Bucket rows as `metric|name|le -> count`. */
function buckets(rows: HistogramBucketsTable[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const row of rows)
    out[`${row.metric}|${row.hostname}|${row.task_name}|${row.le}`] =
      (out[`${row.metric}|${row.hostname}|${row.task_name}|${row.le}`] ?? 0) + Number(row.count);
  return out;
}

function totals(rows: HistogramTotalsTable[]): Record<string, { sum: number; count: number }> {
  const out: Record<string, { sum: number; count: number }> = {};
  for (const row of rows) out[`${row.metric}|${row.hostname}|${row.task_name}`] = { sum: Number(row.sum), count: Number(row.count) };
  return out;
}

/** Deltas in a canonical order, for comparing two tallies. */
function canonical(deltas: MetricDeltas) {
  const sortBy = <T>(rows: T[], key: (row: T) => string) => [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return {
    counters: sortBy(deltas.counters, counterKey),
    histogramBuckets: sortBy(deltas.histogramBuckets, (r) => [r.metric, r.hostname, r.task_name, r.queue, r.le].join('|')),
    histogramTotals: sortBy(deltas.histogramTotals, (r) => [r.metric, r.hostname, r.task_name, r.queue].join('|')),
  };
}

describe('MetricTally counts', () => {
  it('counts each event under its (hostname, task name, queue, type, exception)', () => {
    const tally = new MetricTally(BOUNDS);
    const story: TaskStory = { uuid: 'c-1', name: 'billing.charge', worker: 'w1@host' };
    const other: TaskStory = { uuid: 'c-2', name: 'billing.charge', worker: 'w2@host' };
    tally.taskEvents(
      [sent(story, 100), received(story, 101), started(story, 102), failed(story, 103, "ValueError('no money')")].map(timelineEntry),
      ref('billing.charge'),
    );
    tally.taskEvents(
      [
        received(other, 101),
        started(other, 102),
        retried(other, 103, "RuntimeError('later')"),
        received(other, 104, 1),
        started(other, 105),
        failed(other, 106, 'KeyError: 3'),
      ].map(timelineEntry),
      ref('billing.charge', 'payments'),
    );
    tally.taskEvents([entry('task-failed', 10, 'w1@host', { exception: "ValueError('again')" })], ref('billing.charge'));
    // A task whose name is not known is counted under '' (and a null queue as '').
    tally.taskEvents([entry('task-started', 10, 'w3@host')], ref(null, null));
    tally.count('w9@host', '', '', 'worker-heartbeat', '', 7);

    expect(counters(tally.deltas())).toEqual({
      'client@app|billing.charge|celery|task-sent|': 1,
      'w1@host|billing.charge|celery|task-received|': 1,
      'w1@host|billing.charge|celery|task-started|': 1,
      'w1@host|billing.charge|celery|task-failed|ValueError': 2,
      'w2@host|billing.charge|payments|task-received|': 2,
      'w2@host|billing.charge|payments|task-started|': 2,
      // A retry is counted without its exception; only failures carry one.
      'w2@host|billing.charge|payments|task-retried|': 1,
      'w2@host|billing.charge|payments|task-failed|KeyError': 1,
      'w3@host|||task-started|': 1,
      'w9@host|||worker-heartbeat|': 7,
    });
  });
});

describe('MetricTally histograms', () => {
  it("puts a value on a bound in that bound's bucket, above the last bound in +Inf, and sums exactly", () => {
    const tally = new MetricTally(BOUNDS);
    const values = [0, 0.1, 0.10000001, 1, 1.5, 10, 10.000001, 1e9];
    for (const value of values) tally.observe('runtime', 'h', 'n', 'q', value);
    tally.observe('queue_wait', 'h', 'n', 'q', 0.05);
    const deltas = tally.deltas();
    expect(buckets(deltas.histogramBuckets)).toEqual({
      'runtime|h|n|0.1': 2, // 0 and exactly 0.1
      'runtime|h|n|1': 2, // just above 0.1, and exactly 1
      'runtime|h|n|10': 2, // 1.5 and exactly 10
      'runtime|h|n|+Inf': 2, // just above 10, and 1e9
      'queue_wait|h|n|0.1': 1,
    });
    // Buckets with nothing in them are not written.
    expect(deltas.histogramBuckets.every((row) => Number(row.count) > 0)).toBe(true);
    expect(totals(deltas.histogramTotals)).toEqual({
      'runtime|h|n': { sum: values.reduce((a, b) => a + b, 0), count: values.length },
      'queue_wait|h|n': { sum: 0.05, count: 1 },
    });
  });

  it('labels buckets as the stored bounds format them', () => {
    const tally = new MetricTally(STORED_BUCKETS);
    for (const bound of STORED_BUCKETS) tally.observe('runtime', 'h', 'n', 'q', bound);
    tally.observe('runtime', 'h', 'n', 'q', STORED_BUCKETS[STORED_BUCKETS.length - 1]! * 2);
    const labels = tally.deltas().histogramBuckets.map((row) => row.le);
    expect(labels).toEqual([...STORED_BUCKETS.map(String), '+Inf']);
  });

  it("observes a succeeded task's runtime", () => {
    const tally = new MetricTally(BOUNDS);
    const story: TaskStory = { uuid: 'r-1', name: 'tasks.run' };
    tally.taskEvents([received(story, 50), started(story, 50.5), succeeded(story, 52, '1', 1)].map(timelineEntry), ref('tasks.run'));
    tally.taskEvents([succeeded({ uuid: 'r-2' }, 60, '1', 0.25)].map(timelineEntry), ref('tasks.run'));
    // A success without a runtime is counted, not observed.
    tally.taskEvents([entry('task-succeeded', 61)], ref('tasks.run'));
    const deltas = tally.deltas();
    expect(buckets(deltas.histogramBuckets)).toEqual({ 'runtime|w1@host|tasks.run|1': 2 });
    expect(totals(deltas.histogramTotals)).toEqual({ 'runtime|w1@host|tasks.run': { sum: 1.25, count: 2 } });
    expect(counters(deltas)['w1@host|tasks.run|celery|task-succeeded|']).toBe(3);
  });
});

describe('MetricTally queue wait', () => {
  /** The queue_wait observations (sum and count) of one task's events. */
  function queueWait(events: TimelineEntry[], known: TaskRef): { sum: number; count: number } | undefined {
    const tally = new MetricTally(BOUNDS);
    tally.taskEvents(events, known);
    return totals(tally.deltas().histogramTotals)['queue_wait|w1@host|t'];
  }

  it('is started minus sent when there is no eta', () => {
    expect(queueWait([entry('task-sent', 100, 'w1@host'), entry('task-started', 103.5)], ref('t'))).toEqual({ sum: 3.5, count: 1 });
    // The sent time known from an earlier flush (the cache or the database).
    expect(queueWait([entry('task-started', 108)], ref('t', 'celery', 100))).toEqual({ sum: 8, count: 1 });
  });

  it('takes the later of sent and eta, and clamps at 0', () => {
    // eta after sent: the countdown is not waiting.
    expect(queueWait([entry('task-sent', 100, 'w1@host', { eta: iso(105) }), entry('task-started', 107)], ref('t'))).toEqual({
      sum: 2,
      count: 1,
    });
    // eta before sent: sent counts.
    expect(queueWait([entry('task-sent', 100, 'w1@host', { eta: iso(90) }), entry('task-started', 101)], ref('t'))).toEqual({
      sum: 1,
      count: 1,
    });
    // Started before its eta (clock skew, early pickup): 0, never negative.
    expect(queueWait([entry('task-sent', 100, 'w1@host', { eta: iso(110) }), entry('task-started', 104)], ref('t'))).toEqual({
      sum: 0,
      count: 1,
    });
    // Started before sent (clock skew between client and worker): 0.
    expect(queueWait([entry('task-started', 99)], ref('t', 'celery', 100))).toEqual({ sum: 0, count: 1 });
    // The eta known from an earlier flush.
    expect(queueWait([entry('task-started', 130)], ref('t', 'celery', 100, iso(120)))).toEqual({ sum: 10, count: 1 });
    // An eta without a zone is UTC.
    expect(queueWait([entry('task-started', 130)], ref('t', 'celery', 100, iso(120).replace('Z', '')))).toEqual({ sum: 10, count: 1 });
  });

  it('follows the latest delivery: the latest sent time, and the eta of the latest received', () => {
    const events = [
      entry('task-sent', 100, 'w1@host', { eta: iso(150) }),
      entry('task-sent', 102, 'w1@host'), // resent without an eta: max(sent) = 102, eta cleared
      entry('task-started', 104), // waited 2
      entry('task-received', 105, 'w1@host', { eta: iso(200) }), // a retry with a countdown
      entry('task-started', 203), // waited 3 past the eta
    ];
    expect(queueWait(events, ref('t'))).toEqual({ sum: 5, count: 2 });
  });

  it('is not observed when no sent time is known', () => {
    expect(queueWait([entry('task-received', 100), entry('task-started', 103)], ref('t'))).toBeUndefined();
  });
});

describe('MetricTally.absorb', () => {
  const hosts = ['w1@host', 'w2@host'];
  const names = ['tasks.a', 'tasks.b', 'tasks.c'];

  /** Deterministic events: task i of a tally seeded `seed`. Times and runtimes are dyadic, so sums are exact in any order. */
  function feed(tally: MetricTally, seed: number, count: number): void {
    for (let i = 0; i < count; i++) {
      const n = seed * 1000 + i;
      const host = hosts[n % hosts.length]!;
      const name = names[(n * 7) % names.length]!;
      const t = 1000 + n;
      const events = [
        entry('task-sent', t, 'client@app'),
        entry('task-received', t + 0.5, host),
        entry('task-started', t + (n % 13) * 0.375, host),
      ];
      if (n % 5 === 0) events.push(entry('task-failed', t + 2, host, { exception: `E${n % 3}Error('x')` }));
      else events.push(entry('task-succeeded', t + 2, host, { runtime: (n % 17) * 0.75 }));
      tally.taskEvents(events, ref(name, n % 2 === 0 ? 'celery' : 'other'));
    }
  }

  it('adds two tallies exactly, as if one had counted everything', () => {
    const a = new MetricTally(BOUNDS);
    const b = new MetricTally(BOUNDS);
    const both = new MetricTally(BOUNDS);
    feed(a, 1, 40);
    feed(b, 2, 55);
    // b has a series a lacks, and a histogram a's series lacks.
    b.observe('runtime', 'only-b@host', 'tasks.z', 'celery', 3);
    feed(both, 1, 40);
    feed(both, 2, 55);
    both.observe('runtime', 'only-b@host', 'tasks.z', 'celery', 3);
    const before = canonical(b.deltas());

    a.absorb(b);
    expect(canonical(a.deltas())).toEqual(canonical(both.deltas()));
    // The absorbed tally is unchanged, and does not share state with the absorbing one.
    a.observe('runtime', 'only-b@host', 'tasks.z', 'celery', 5);
    a.count('w1@host', 'tasks.a', 'celery', 'task-sent', '', 10);
    expect(canonical(b.deltas())).toEqual(before);
  });

  it('absorbing twice counts twice; absorbing an empty tally changes nothing', () => {
    const a = new MetricTally(BOUNDS);
    const b = new MetricTally(BOUNDS);
    feed(b, 3, 10);
    a.absorb(b);
    a.absorb(b);
    const twice = new MetricTally(BOUNDS);
    feed(twice, 3, 10);
    feed(twice, 3, 10);
    expect(canonical(a.deltas())).toEqual(canonical(twice.deltas()));
    const snapshot = canonical(a.deltas());
    a.absorb(new MetricTally(BOUNDS));
    expect(canonical(a.deltas())).toEqual(snapshot);
  });
});

describe('MetricTally labels', () => {
  it('cuts label values to their key columns without splitting a surrogate pair', () => {
    const tally = new MetricTally(BOUNDS);
    // The pair would straddle each column's last character: it goes whole.
    const straddling = (max: number) => `${'n'.repeat(max - 1)}\u{1F600}tail`;
    const host = straddling(KEY.host);
    const name = straddling(KEY.name);
    const queue = straddling(KEY.queue);
    const type = `task-${'t'.repeat(KEY.type)}`;
    const exception = `${'E'.repeat(KEY.exception + 20)}('x')`;
    tally.taskEvents(
      [entry('task-failed', 10, host, { exception }), entry('task-succeeded', 11, host, { runtime: 0.5 })],
      ref(name, queue),
    );
    tally.count(host, name, queue, type, '', 2);
    const deltas = tally.deltas();
    expect(counters(deltas)).toEqual({
      [`${'n'.repeat(KEY.host - 1)}|${'n'.repeat(KEY.name - 1)}|${'n'.repeat(KEY.queue - 1)}|task-failed|${'E'.repeat(KEY.exception)}`]: 1,
      [`${'n'.repeat(KEY.host - 1)}|${'n'.repeat(KEY.name - 1)}|${'n'.repeat(KEY.queue - 1)}|task-succeeded|`]: 1,
      [`${'n'.repeat(KEY.host - 1)}|${'n'.repeat(KEY.name - 1)}|${'n'.repeat(KEY.queue - 1)}|${type.slice(0, KEY.type)}|`]: 2,
    });
    const rows = [...deltas.counters, ...deltas.histogramBuckets, ...deltas.histogramTotals];
    for (const row of rows) {
      expect(row.hostname.length).toBeLessThanOrEqual(KEY.host);
      expect(row.task_name.length).toBeLessThanOrEqual(KEY.name);
      expect(row.queue.length).toBeLessThanOrEqual(KEY.queue);
      for (const text of [row.hostname, row.task_name, row.queue]) expect(text.isWellFormed()).toBe(true);
    }
    // Histogram rows carry the same cut labels.
    expect(deltas.histogramTotals.map((r) => [r.hostname, r.task_name, r.queue])).toEqual([
      ['n'.repeat(KEY.host - 1), 'n'.repeat(KEY.name - 1), 'n'.repeat(KEY.queue - 1)],
    ]);
  });

  it('keeps a surrogate pair that ends exactly at the column length', () => {
    const tally = new MetricTally(BOUNDS);
    const name = `${'n'.repeat(KEY.name - 2)}\u{1F600}`;
    tally.taskEvents([entry('task-started', 1)], ref(`${name}more`));
    expect(tally.deltas().counters.map((r) => r.task_name)).toEqual([name]);
  });

  it('makes one counter row, with the summed count, of two names that cut to the same label', () => {
    const tally = new MetricTally(BOUNDS);
    const common = 'x'.repeat(KEY.name);
    tally.taskEvents([entry('task-started', 1), entry('task-started', 2)], ref(`${common}-first`));
    tally.taskEvents([entry('task-started', 3), entry('task-started', 4), entry('task-started', 5)], ref(`${common}-second`));
    tally.taskEvents([entry('task-started', 6)], ref(common));
    const rows = tally.deltas().counters;
    expect(rows).toEqual([{ hostname: 'w1@host', task_name: common, queue: 'celery', type: 'task-started', exception: '', count: 6 }]);
  });
});
