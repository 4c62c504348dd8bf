// Health as both programs speak of it: the report the healthcheck answers
// with, what the web app asks of a collector in its own process, and how
// long a collector may stay silent (it writes its status row every 5 s).

export interface HealthReport {
  ok: boolean;
  /** Why not, one line per problem. */
  problems: string[];
}

/** A collector that has not reported for this long (seconds) is considered gone. */
export const COLLECTOR_SILENCE_LIMIT = 30;

/** The collector running in the web app's process (local all-in-one mode), as the healthcheck asks it. */
export interface InProcessCollector {
  health(): { brokerConnected: boolean; databaseError: string | null; lastFlushAt?: number | null };
  brokerDisplay: string;
}
