// One rule's alert instances from one evaluation to the next: pure, no I/O,
// no clock. An instance is a rule plus a label set (one per worker for
// worker-offline, ...). Active for `for` seconds (pending meanwhile), it
// fires; no longer active, a firing one resolves and a pending one is
// forgotten. Only the two edges are notified, so an alert that stays
// firing is sent once, however many evaluations see it.

import { type AlertLabels, labelsKey } from '../../src/shared/alerts';

/** What an evaluation measured for one instance. */
export interface Observation {
  labels: AlertLabels;
  /** The rule's condition holds now. */
  active: boolean;
  value: number;
}

/** An instance that is pending or firing (ok instances have no state). */
export interface InstanceState {
  labels: AlertLabels;
  status: 'pending' | 'firing';
  /** When it became active (pending) or started firing. */
  since: number;
  value: number;
}

export interface Transition {
  status: 'firing' | 'resolved';
  labels: AlertLabels;
  value: number;
  /** When the firing began (for `resolved`, the firing that ends). */
  since: number;
}

export interface StepResult {
  /** The instances' states after this evaluation, by labelsKey. */
  next: Map<string, InstanceState>;
  transitions: Transition[];
}

/**
 * Advance one rule. `forSeconds` is how long the condition must hold before
 * firing (0: at once); the pending time counts from the first evaluation
 * that saw it active, so it survives a restart when `previous` is read back.
 */
export function stepAlert(
  previous: ReadonlyMap<string, InstanceState>,
  observations: readonly Observation[],
  forSeconds: number,
  now: number,
): StepResult {
  const next = new Map<string, InstanceState>();
  const transitions: Transition[] = [];
  const seen = new Map<string, Observation>();
  for (const observation of observations) {
    const key = labelsKey(observation.labels);
    seen.set(key, observation);
    if (!observation.active) continue;
    const before = previous.get(key);
    const { labels, value } = observation;
    if (before?.status === 'firing') {
      next.set(key, { ...before, labels, value });
    } else {
      const pendingSince = before?.since ?? now;
      if (now - pendingSince >= forSeconds) {
        next.set(key, { labels, status: 'firing', since: now, value });
        transitions.push({ status: 'firing', labels, value, since: now });
      } else {
        next.set(key, { labels, status: 'pending', since: pendingSince, value });
      }
    }
  }
  for (const [key, before] of previous) {
    if (next.has(key) || before.status !== 'firing') continue;
    transitions.push({ status: 'resolved', labels: before.labels, value: seen.get(key)?.value ?? 0, since: before.since });
  }
  return { next, transitions };
}
