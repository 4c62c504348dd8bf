// What /metrics is computed from, read at scrape time. Every number comes
// from the database, so every process and every Worker isolate reports the
// same values; nothing is counted in memory.
//
// Cost per scrape: the counters and histogram tables (one row per label set,
// bounded by workers x task names x queues), the workers and queues tables,
// the latest collector status, and the tasks in flight. Tasks in flight are
// read through the (state, timestamp) index: PENDING, RECEIVED, STARTED and
// RETRY rows are the few tasks not finished yet, a number bounded by the
// backlog and the workers' prefetch. Final states are left out on purpose:
// they are most of the table (counting them would scan it on every scrape),
// and their count shrinks as retention prunes, so it is no counter; the
// event counters (celery_task_succeeded_total, ...) count outcomes instead.

import { type Kysely, sql } from 'kysely';
import type { Database, EventCountersTable, HistogramBucketsTable, HistogramTotalsTable } from '../shared/schema';
import { storedNumber, type WorkerRecord } from '../shared/workers';

export const IN_FLIGHT_STATES = ['PENDING', 'RECEIVED', 'STARTED', 'RETRY'] as const;

/** Rows of the counter and histogram tables, numbers normalised (see `num`). */
export type CounterRow = EventCountersTable;
export type BucketRow = HistogramBucketsTable;
export type TotalRow = HistogramTotalsTable;

/** The columns of a worker a scrape reads (the alive and purge rules, and `active`). */
export type WorkerFacts = Pick<WorkerRecord, 'hostname' | 'status' | 'freq' | 'active' | 'last_heartbeat' | 'offline_at' | 'first_seen'>;

export interface QueueLengthRow {
  name: string;
  messages: number;
  consumers: number | null;
}

/** Unfinished tasks counted by state, name, worker and whether they have an eta. */
export interface InFlightRow {
  state: string;
  name: string;
  worker: string;
  has_eta: boolean;
  count: number;
}

/** A task executing now (STARTED, no eta): when it was received and started. */
export interface RunningTask {
  worker: string;
  name: string;
  received: number | null;
  started: number | null;
}

export interface CollectorFacts {
  id: string;
  updated_at: number;
  broker_connected: boolean;
  last_event_at: number | null;
  events_total: number;
  dropped: Record<string, number>;
  lag_seconds: number | null;
  flush_seconds: number | null;
}

export interface MetricsState {
  counters: CounterRow[];
  buckets: BucketRow[];
  totals: TotalRow[];
  workers: WorkerFacts[];
  queues: QueueLengthRow[];
  inFlight: InFlightRow[];
  running: RunningTask[];
  /** Tasks the collector moved to LOST, by name (lost_counters: only ever added to). */
  lost: { name: string; count: number }[];
  /** The collector that reported last, or null before any did. */
  collector: CollectorFacts | null;
  /** Alert rules loaded, with their firing instances counted (stalk_alert_firing); absent: not read. */
  alerts?: { alert: string; firing: number }[];
}

/** Every loaded rule with its firing instances (0 when none fires), so the gauge exists before the first firing. */
async function readAlertFiring(db: Kysely<Database>): Promise<{ alert: string; firing: number }[]> {
  const [rules, firing] = await Promise.all([
    db.selectFrom('alert_rules').select('name').execute(),
    db
      .selectFrom('alert_state')
      .select('alert')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'firing')
      .groupBy('alert')
      .execute(),
  ]);
  const counts = new Map<string, number>(rules.map((r) => [r.name, 0]));
  for (const row of firing) counts.set(row.alert, Number(row.n));
  return [...counts].map(([alert, n]) => ({ alert, firing: n }));
}

/** Databases reached over HTTP return BIGINT and DOUBLE as strings: every number goes through these. */
const num = (v: unknown) => Number(v);
const maybe = storedNumber;
/**
 * A stored count as a counter can take it: prom-client refuses a negative or
 * infinite increment (and the scrape would fail), so a count that no
 * collector writes (another writer's, a damaged row) reads as 0.
 */
const tally = (v: unknown) => {
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : 0;
};

function droppedCounts(text: string): Record<string, number> {
  try {
    const value: unknown = JSON.parse(text);
    if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
    const counts: Record<string, number> = {};
    for (const [reason, n] of Object.entries(value)) if (Number.isFinite(Number(n)) && Number(n) >= 0) counts[reason] = Number(n);
    return counts;
  } catch {
    return {};
  }
}

export async function readMetricsState(db: Kysely<Database>): Promise<MetricsState> {
  const [counters, buckets, totals, workers, queues, inFlight, running, status, lost, alerts] = await Promise.all([
    db
      .selectFrom('event_counters')
      .select(['hostname', 'task_name', 'queue', 'type', 'exception', 'count'])
      .where('type', 'like', 'task-%')
      .execute(),
    db.selectFrom('histogram_buckets').select(['metric', 'hostname', 'task_name', 'queue', 'le', 'count']).execute(),
    db.selectFrom('histogram_totals').select(['metric', 'hostname', 'task_name', 'queue', 'sum', 'count']).execute(),
    db.selectFrom('workers').select(['hostname', 'status', 'freq', 'active', 'last_heartbeat', 'offline_at', 'first_seen']).execute(),
    db.selectFrom('queues').select(['name', 'messages', 'consumers']).execute(),
    db
      .selectFrom('tasks')
      .select(['state', 'name', 'worker'])
      .select(sql<number>`case when eta is null then 0 else 1 end`.as('has_eta'))
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('state', 'in', [...IN_FLIGHT_STATES])
      .groupBy(['state', 'name', 'worker', sql`case when eta is null then 0 else 1 end`])
      .execute(),
    db
      .selectFrom('tasks')
      .select(['worker', 'name', 'received', 'started'])
      .where('state', '=', 'STARTED')
      .where('eta', 'is', null)
      .execute(),
    db.selectFrom('collector_status').selectAll().orderBy('updated_at', 'desc').limit(1).executeTakeFirst(),
    db.selectFrom('lost_counters').select(['task_name', 'count']).execute(),
    readAlertFiring(db),
  ]);
  return {
    counters: counters.map((r) => ({ ...r, count: tally(r.count) })),
    buckets: buckets.map((r) => ({ ...r, count: tally(r.count) })),
    totals: totals.map((r) => ({ ...r, sum: num(r.sum), count: tally(r.count) })),
    workers: workers.map((r) => ({
      hostname: r.hostname,
      status: r.status,
      freq: maybe(r.freq),
      active: maybe(r.active),
      last_heartbeat: maybe(r.last_heartbeat),
      offline_at: maybe(r.offline_at),
      first_seen: num(r.first_seen),
    })),
    queues: queues.map((r) => ({ name: r.name, messages: num(r.messages), consumers: maybe(r.consumers) })),
    inFlight: inFlight.map((r) => ({
      state: r.state,
      name: r.name ?? '',
      worker: r.worker ?? '',
      has_eta: num(r.has_eta) === 1,
      count: num(r.n),
    })),
    lost: lost.map((r) => ({ name: r.task_name, count: tally(r.count) })),
    running: running.map((r) => ({ worker: r.worker ?? '', name: r.name ?? '', received: maybe(r.received), started: maybe(r.started) })),
    collector: status
      ? {
          id: status.id,
          updated_at: num(status.updated_at),
          broker_connected: num(status.broker_connected) === 1,
          last_event_at: maybe(status.last_event_at),
          events_total: tally(status.events_total),
          dropped: droppedCounts(status.dropped),
          lag_seconds: maybe(status.lag_seconds),
          flush_seconds: maybe(status.flush_seconds),
        }
      : null,
    alerts,
  };
}
