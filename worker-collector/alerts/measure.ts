// What each kind of rule measures, from stored state only (the same rows the
// web app shows), so any collector that takes the lease over sees what the
// last one saw. Every query is bounded by an index: the time windows by
// tasks_timestamp (or tasks_name_timestamp for one task name), STARTED and
// LOST tasks by tasks_state_timestamp; the workers and queues tables are
// small. Names are matched against globs here rather than in SQL, where
// LIKE differs between the dialects (case, escapes).

import type { Kysely } from 'kysely';
import { type AlertRule, globMatcher, isGlob } from '../../src/shared/alerts';
import type { Database } from '../../src/shared/schema';
import { heartbeatExpiry, isWorkerAlive, storedNumber } from '../../src/shared/workers';
import type { Observation } from './state-machine';

export interface MeasureContext {
  db: Kysely<Database>;
  /** Epoch seconds. */
  now: number;
  /** When this collector last took an event (null: none yet), and when it started. */
  lastEventAt: number | null;
  startedAt: number;
}

/** The observations of one rule now; `forSeconds` of the result is what the state machine waits (0: the value already measures it). */
export async function measureRule(rule: AlertRule, ctx: MeasureContext): Promise<{ observations: Observation[]; forSeconds: number }> {
  const { db, now } = ctx;
  switch (rule.kind) {
    case 'task-failures': {
      const since = now - rule.window;
      let query = db
        .selectFrom('tasks')
        .select('name')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('timestamp', '>=', since)
        .where('failed', '>=', since);
      if (!isGlob(rule.task)) query = query.where('name', '=', rule.task);
      const rows = await query.groupBy('name').execute();
      const matches = globMatcher(rule.task);
      const value = rows.filter((r) => r.name !== null && matches(r.name)).reduce((sum, r) => sum + Number(r.n), 0);
      return { observations: [{ labels: { task: rule.task }, active: value >= rule.threshold, value }], forSeconds: 0 };
    }
    case 'task-failure-rate': {
      const since = now - rule.window;
      let query = db
        .selectFrom('tasks')
        .select('name')
        .select((eb) => [
          eb.fn.sum<number>(eb.case().when('failed', '>=', since).then(1).else(0).end()).as('f'),
          eb.fn.sum<number>(eb.case().when('succeeded', '>=', since).then(1).else(0).end()).as('s'),
        ])
        .where('timestamp', '>=', since);
      if (!isGlob(rule.task)) query = query.where('name', '=', rule.task);
      const rows = await query.groupBy('name').execute();
      const matches = globMatcher(rule.task);
      let failed = 0;
      let finished = 0;
      for (const row of rows) {
        if (row.name === null || !matches(row.name)) continue;
        failed += Number(row.f ?? 0);
        finished += Number(row.f ?? 0) + Number(row.s ?? 0);
      }
      const value = finished === 0 ? 0 : failed / finished;
      const active = finished >= rule.min_count && value >= rule.ratio;
      return { observations: [{ labels: { task: rule.task }, active, value }], forSeconds: 0 };
    }
    case 'worker-offline': {
      const rows = await db
        .selectFrom('workers')
        .select(['hostname', 'status', 'freq', 'last_heartbeat', 'offline_at', 'first_seen'])
        .execute();
      const matches = globMatcher(rule.worker);
      const observations: Observation[] = [];
      for (const row of rows) {
        if (!matches(row.hostname)) continue;
        const worker = {
          status: row.status,
          freq: storedNumber(row.freq),
          last_heartbeat: storedNumber(row.last_heartbeat),
        };
        if (isWorkerAlive(worker, now)) {
          observations.push({ labels: { worker: row.hostname }, active: false, value: 0 });
          continue;
        }
        // Offline since it said goodbye, or since its last heartbeat expired (the same rule the dashboard judges by).
        const expired = worker.last_heartbeat === null ? null : heartbeatExpiry(worker.last_heartbeat, worker.freq);
        const offlineAt = storedNumber(row.offline_at);
        const offlineSince = expired === null ? (offlineAt ?? Number(row.first_seen)) : Math.min(expired, offlineAt ?? expired);
        const value = Math.max(0, now - offlineSince);
        observations.push({ labels: { worker: row.hostname }, active: value >= rule.for, value });
      }
      return { observations, forSeconds: 0 };
    }
    case 'queue-length': {
      const rows = await db.selectFrom('queues').select(['name', 'messages']).execute();
      const matches = globMatcher(rule.queue);
      const observations = rows
        .filter((r) => matches(r.name))
        .map((r) => ({ labels: { queue: r.name }, active: Number(r.messages) >= rule.threshold, value: Number(r.messages) }));
      // Only the latest measurement is stored: how long it has been long is counted by the state machine.
      return { observations, forSeconds: rule.for };
    }
    case 'task-stuck': {
      const rows = await db
        .selectFrom('tasks')
        .select('name')
        .select((eb) => eb.fn.min<number>('started').as('oldest'))
        .where('state', '=', 'STARTED')
        .where('started', '<', now - rule.running_longer_than)
        .groupBy('name')
        .execute();
      const matches = globMatcher(rule.task);
      const observations = rows
        .filter((r) => r.name !== null && matches(r.name))
        .map((r) => ({ labels: { task: r.name as string }, active: true, value: Math.max(0, now - Number(r.oldest)) }));
      return { observations, forSeconds: 0 };
    }
    case 'tasks-lost': {
      const row = await db
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('state', '=', 'LOST')
        .where('timestamp', '>=', now - rule.window)
        .executeTakeFirst();
      const value = Number(row?.n ?? 0);
      return { observations: [{ labels: {}, active: value >= rule.threshold, value }], forSeconds: 0 };
    }
    case 'collector-silent': {
      const value = Math.max(0, now - (ctx.lastEventAt ?? ctx.startedAt));
      return { observations: [{ labels: {}, active: value >= rule.for, value }], forSeconds: 0 };
    }
  }
}
