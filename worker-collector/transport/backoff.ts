// Capped exponential backoff with jitter, for every reconnect and retry loop.

export interface Backoff {
  /** Delay before the next attempt, in ms; grows with each call until reset(). */
  next(): number;
  reset(): void;
  readonly attempts: number;
}

export function createBackoff(baseMs = 250, capMs = 15_000, random: () => number = Math.random): Backoff {
  let attempts = 0;
  return {
    next() {
      const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempts, 20));
      attempts += 1;
      // "Equal jitter": half fixed, half random, so retries spread out but never hammer.
      return Math.round(ceiling / 2 + (random() * ceiling) / 2);
    },
    reset() {
      attempts = 0;
    },
    get attempts() {
      return attempts;
    },
  };
}
