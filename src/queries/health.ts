// Health as the web app sees it: can it read the database, and is the
// collector (in this process, or elsewhere through its status row) well.

import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { COLLECTOR_SILENCE_LIMIT, type HealthReport, type InProcessCollector } from '../shared/health';
import { errorMessage } from '../shared/log';
import type { CollectorStatusTable, Database } from '../shared/schema';
import { collectorStatuses } from './workers';

/**
 * How long the database may take to answer a health probe. A server that
 * hangs (or a network that drops packets) accepts the query and never
 * answers; without a limit the probe would hang with it instead of saying 503.
 */
export const HEALTH_QUERY_TIMEOUT_MS = 3_000;

export interface HealthOptions {
  /** Default HEALTH_QUERY_TIMEOUT_MS. */
  timeoutMs?: number;
}

export async function checkHealth(
  db: Kysely<Database>,
  now: number,
  collector?: InProcessCollector,
  options: HealthOptions = {},
): Promise<HealthReport> {
  const problems: string[] = [];
  let latest: CollectorStatusTable | undefined;
  try {
    latest = await withTimeout(
      (async () => {
        await sql`select 1`.execute(db);
        return collector ? undefined : (await collectorStatuses(db))[0];
      })(),
      options.timeoutMs ?? HEALTH_QUERY_TIMEOUT_MS,
    );
  } catch (error) {
    problems.push(`database unavailable: ${errorMessage(error)}`);
    return { ok: false, problems };
  }
  if (collector) {
    const health = collector.health();
    if (!health.brokerConnected) problems.push(`broker unavailable: ${collector.brokerDisplay}`);
    if (health.databaseError) problems.push(`database writes failing: ${health.databaseError}`);
    // It writes at least every 5 s, even when idle; a flush stuck on the database stops that.
    else if (health.lastFlushAt != null && now - health.lastFlushAt > COLLECTOR_SILENCE_LIMIT) {
      problems.push(`collector has not written for ${Math.round(now - health.lastFlushAt)} s`);
    }
  } else {
    if (!latest) problems.push('no collector has reported yet');
    else if (now - latest.updated_at > COLLECTOR_SILENCE_LIMIT) {
      problems.push(`collector ${latest.id} silent for ${Math.round(now - latest.updated_at)} s`);
    } else if (!latest.broker_connected) problems.push(`broker unavailable: ${latest.broker_url}`);
  }
  return { ok: problems.length === 0, problems };
}

/** `work`, or a rejection once `ms` have passed without an answer (the work itself goes on). */
function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
