// The alert state machine alone: values over time in, firing and resolved
// edges out, `for` counted from the first active evaluation.

import { describe, expect, it } from 'vitest';
import { globMatcher, labelsKey } from '../../src/shared/alerts';
import { type InstanceState, type Observation, stepAlert, type Transition } from '../../worker-collector/alerts/state-machine';

/** Run evaluations at the given times with one instance's values; returns every edge with its time. */
function run(forSeconds: number, series: [now: number, active: boolean, value: number][], labels = { queue: 'q' }) {
  let state = new Map<string, InstanceState>();
  const edges: (Transition & { at: number })[] = [];
  const statuses: string[] = [];
  for (const [now, active, value] of series) {
    const { next, transitions } = stepAlert(state, [{ labels, active, value }], forSeconds, now);
    state = next;
    for (const t of transitions) edges.push({ ...t, at: now });
    statuses.push(next.get(labelsKey(labels))?.status ?? 'ok');
  }
  return { edges, statuses };
}

describe('stepAlert', () => {
  it('fires once when the condition holds and resolves once when it ends (no for)', () => {
    const { edges, statuses } = run(0, [
      [0, false, 1],
      [15, true, 3],
      [30, true, 5],
      [45, true, 4],
      [60, false, 0],
      [75, false, 0],
    ]);
    expect(statuses).toEqual(['ok', 'firing', 'firing', 'firing', 'ok', 'ok']);
    expect(edges).toEqual([
      { status: 'firing', labels: { queue: 'q' }, value: 3, since: 15, at: 15 },
      { status: 'resolved', labels: { queue: 'q' }, value: 0, since: 15, at: 60 },
    ]);
  });

  it('waits out `for` (pending), and forgets a pending instance that recovers without a word', () => {
    const { edges, statuses } = run(30, [
      [0, true, 10],
      [15, true, 11],
      [20, false, 2],
      [25, true, 12],
      [45, true, 13],
      [55, true, 14],
      [70, true, 15],
      [85, false, 1],
    ]);
    expect(statuses).toEqual(['pending', 'pending', 'ok', 'pending', 'pending', 'firing', 'firing', 'ok']);
    expect(edges).toEqual([
      { status: 'firing', labels: { queue: 'q' }, value: 14, since: 55, at: 55 },
      { status: 'resolved', labels: { queue: 'q' }, value: 1, since: 55, at: 85 },
    ]);
  });

  it('carries on from stored state: a firing instance read back is not fired again', () => {
    const stored = new Map<string, InstanceState>([
      [labelsKey({ worker: 'w1' }), { labels: { worker: 'w1' }, status: 'firing', since: 100, value: 40 }],
    ]);
    const again = stepAlert(stored, [{ labels: { worker: 'w1' }, active: true, value: 60 }], 0, 120);
    expect(again.transitions).toEqual([]);
    expect(again.next.get(labelsKey({ worker: 'w1' }))).toEqual({ labels: { worker: 'w1' }, status: 'firing', since: 100, value: 60 });
    const pending = new Map<string, InstanceState>([
      [labelsKey({ queue: 'q' }), { labels: { queue: 'q' }, status: 'pending', since: 100, value: 9 }],
    ]);
    expect(stepAlert(pending, [{ labels: { queue: 'q' }, active: true, value: 9 }], 30, 131).transitions).toEqual([
      { status: 'firing', labels: { queue: 'q' }, value: 9, since: 131 },
    ]);
  });

  it('keeps instances apart by labels, and resolves one whose row disappeared', () => {
    const observations = (...workers: string[]): Observation[] => workers.map((w) => ({ labels: { worker: w }, active: true, value: 1 }));
    const first = stepAlert(new Map(), observations('a', 'b'), 0, 10);
    expect(first.transitions.map((t) => [t.status, t.labels.worker])).toEqual([
      ['firing', 'a'],
      ['firing', 'b'],
    ]);
    const second = stepAlert(first.next, observations('b', 'c'), 0, 20);
    expect(second.transitions.map((t) => [t.status, t.labels.worker])).toEqual([
      ['firing', 'c'],
      ['resolved', 'a'],
    ]);
    expect([...second.next.keys()].sort()).toEqual([labelsKey({ worker: 'b' }), labelsKey({ worker: 'c' })]);
  });
});

describe('globs and labels', () => {
  it('match whole names, * and ? only, everything else literal and case-sensitive', () => {
    const m = globMatcher('billing.*');
    expect([m('billing.refund'), m('billing.'), m('billingXrefund'), m('Billing.refund'), m('x.billing.refund')]).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
    const q = globMatcher('celery@web-?');
    expect([q('celery@web-1'), q('celery@web-12'), q('celery@web-')]).toEqual([true, false, false]);
    expect(globMatcher('a+b(c)')('a+b(c)')).toBe(true);
    expect(globMatcher('a+b(c)')('aab(c)')).toBe(false);
  });

  it('key labels the same whatever their order', () => {
    expect(labelsKey({ b: '2', a: '1' })).toBe(labelsKey({ a: '1', b: '2' }));
    expect(labelsKey({})).toBe('{}');
  });
});
