// The hot state at the edge: the collector's workers snapshot, read from
// Upstash, or null (stale, missing, Upstash down) so routes ask the database.

import { HOT_WORKERS_KEY, type HotState, readWorkersSnapshot } from '../shared/hot-state';
import { createRateLimitedLog, errorMessage, type Logger } from '../shared/log';
import type { UpstashRest } from '../shared/upstash-rest';

/** A slow Upstash must not hold the page: give up this quickly and use SQL. */
const HOT_STATE_TIMEOUT_MS = 2_000;

export function upstashHotState(rest: UpstashRest, log: Logger): HotState {
  const warn = createRateLimitedLog((message) => log.warn(message));
  return {
    async workers() {
      try {
        // The snapshot is the text the collector wrote; readWorkersSnapshot parses it.
        const text = await rest.command(['GET', HOT_WORKERS_KEY], { timeoutMs: HOT_STATE_TIMEOUT_MS });
        return readWorkersSnapshot(typeof text === 'string' ? text : null, Date.now() / 1000);
      } catch (error) {
        warn('upstash', `hot state unavailable, reading workers from the database: ${errorMessage(error)}`);
        return null;
      }
    },
  };
}
