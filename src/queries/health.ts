// Health as the web app sees it: can it read the database, and is the
// collector (in this process, or elsewhere through its status row) well.

import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { HealthReport } from '../services';
import { errorMessage } from '../shared/log';
import type { Database } from '../shared/schema';
import { collectorStatuses } from './workers';

/** A collector that has not reported for this long is considered gone (it reports every 5 s). */
export const COLLECTOR_SILENCE_LIMIT = 30;

export interface InProcessCollector {
  health(): { brokerConnected: boolean; databaseError: string | null };
  brokerDisplay: string;
}

export async function checkHealth(db: Kysely<Database>, now: number, collector?: InProcessCollector): Promise<HealthReport> {
  const problems: string[] = [];
  try {
    await sql`select 1`.execute(db);
  } catch (error) {
    problems.push(`database unavailable: ${errorMessage(error)}`);
    return { ok: false, problems };
  }
  if (collector) {
    const health = collector.health();
    if (!health.brokerConnected) problems.push(`broker unavailable: ${collector.brokerDisplay}`);
    if (health.databaseError) problems.push(`database writes failing: ${health.databaseError}`);
  } else {
    const [latest] = await collectorStatuses(db);
    if (!latest) problems.push('no collector has reported yet');
    else if (now - latest.updated_at > COLLECTOR_SILENCE_LIMIT) {
      problems.push(`collector ${latest.id} silent for ${Math.round(now - latest.updated_at)} s`);
    } else if (!latest.broker_connected) problems.push(`broker unavailable: ${latest.broker_url}`);
  }
  return { ok: problems.length === 0, problems };
}
