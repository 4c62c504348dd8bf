// The database as both programs see it. One schema, two dialects (SQLite and
// MySQL); the migrations in worker-collector/migrations create exactly this.
// Times are seconds since the epoch as doubles, like Celery's event
// timestamps, so both dialects store and compare them the same way.

import type { Generated, Insertable, Selectable } from 'kysely';

/** The two SQL families Stalk speaks (MySQL covers MariaDB and PlanetScale): the few statements that differ ask which. */
export type SqlDialect = 'sqlite' | 'mysql';

export interface TasksTable {
  /** Surrogate key: keeps MySQL's clustered index append-only and secondary indexes small. */
  id: Generated<number>;
  uuid: string;
  name: string | null;
  state: string;
  /** Sortable claim of the event that set `state` (see task-states.ts). */
  state_key: string;
  /** Time of the event that set `state` (Flower's `timestamp`). */
  timestamp: number;
  clock: number | null;
  sent: number | null;
  received: number | null;
  started: number | null;
  succeeded: number | null;
  failed: number | null;
  retried: number | null;
  revoked: number | null;
  rejected: number | null;
  args: string | null;
  kwargs: string | null;
  result: string | null;
  exception: string | null;
  traceback: string | null;
  worker: string | null;
  client: string | null;
  runtime: number | null;
  retries: number | null;
  eta: string | null;
  expires: string | null;
  root_id: string | null;
  parent_id: string | null;
  queue: string | null;
  exchange: string | null;
  routing_key: string | null;
  /** Why Stalk set the state itself (LOST: which worker went offline, or how long a sent task waited); null for an event's state. */
  state_reason: string | null;
  /** The task this one retries (POST /api/task/retry): set by the collector when it sends the retry, never by events. */
  retried_from: string | null;
}

/**
 * A task's timeline: each row holds the events of one task that one flush
 * wrote, as a JSON array of {type, timestamp, hostname, clock, data}; the
 * timeline is the union of a task's rows. One row per task per flush instead
 * of one per event keeps ingest at tens of thousands of events a second.
 */
export interface TaskEventsTable {
  id: Generated<number>;
  task_id: string;
  events: string;
}

export interface WorkersTable {
  hostname: string;
  /** 'online' or 'offline'; the collector sets 'offline' on worker-offline or heartbeat expiry. */
  status: string;
  pid: number | null;
  freq: number | null;
  clock: number | null;
  active: number | null;
  processed: number | null;
  /** JSON array [1m, 5m, 15m]. */
  loadavg: string | null;
  sw_ident: string | null;
  sw_ver: string | null;
  sw_sys: string | null;
  utcoffset: number | null;
  /** JSON array of the last local-received heartbeat times (collector clock). */
  heartbeats: string;
  last_heartbeat: number | null;
  first_seen: number;
  offline_at: number | null;
}

/** Events counted by series; one row per label set, incremented by each flush. */
export interface EventCountersTable {
  hostname: string;
  task_name: string;
  queue: string;
  type: string;
  /** Exception class name, for task-failed only; '' otherwise. */
  exception: string;
  count: number;
}

/** Non-cumulative histogram buckets: the count of observations in (previous le, le]. */
export interface HistogramBucketsTable {
  metric: string;
  hostname: string;
  task_name: string;
  queue: string;
  /** Upper bound as text ('0.005', '+Inf'), because MySQL cannot store infinity. */
  le: string;
  count: number;
}

export interface HistogramTotalsTable {
  metric: string;
  hostname: string;
  task_name: string;
  queue: string;
  sum: number;
  count: number;
}

/** What the collector last reported about itself (one row per collector id). */
export interface CollectorStatusTable {
  id: string;
  started_at: number;
  updated_at: number;
  broker_url: string;
  broker_connected: number;
  last_event_at: number | null;
  events_total: number;
  /** JSON object: reason -> count of messages or events that were not used. */
  dropped: string;
  lag_seconds: number | null;
  flush_seconds: number | null;
}

/** Queue lengths as the collector last measured them. */
export interface QueuesTable {
  name: string;
  messages: number;
  /** RabbitMQ only: ready, unacknowledged, consumers. */
  ready: number | null;
  unacked: number | null;
  consumers: number | null;
  measured_at: number;
}

/** The latest inspect replies of a worker (JSON of WorkerInspect, src/shared/inspect.ts). */
export interface WorkerInspectTable {
  hostname: string;
  replies: string;
  inspected_at: number;
}

/** Every control and task action: who, what, with which arguments, when, and how it went. */
export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  user: string;
  action: string;
  target: string | null;
  /** JSON. */
  arguments: string | null;
  ok: number;
  /** JSON of the outcome, or the error message. */
  result: string | null;
}

/**
 * Who may write: one row per lease name (collectors that back each other up
 * share a name). The holder writes while it renews the row; a standby takes
 * the row over once `expires_at` has passed (worker-collector/lease.ts).
 */
export interface CollectorLeasesTable {
  name: string;
  /** `<collector id>/<pid>/<random>`: unique per process and per term. */
  holder: string;
  acquired_at: number;
  expires_at: number;
}

/**
 * /metrics rendered by the collector (migration 008; src/metrics/snapshot.ts):
 * one row per part of the gzipped exposition text, all of one rendering.
 */
export interface MetricsSnapshotTable {
  part: number;
  parts: number;
  /** When the state was read, epoch seconds. */
  taken_at: number;
  /** How often the collector renders; the Worker serves a rendering younger than two. */
  interval_seconds: number;
  /** The rendering options (runtime buckets, offline purge), as snapshotOptionsKey gives them. */
  options: string;
  /** The exposition text's length in bytes, before gzip. */
  text_bytes: number;
  body: Uint8Array;
}

export interface Database {
  tasks: TasksTable;
  task_events: TaskEventsTable;
  workers: WorkersTable;
  event_counters: EventCountersTable;
  histogram_buckets: HistogramBucketsTable;
  histogram_totals: HistogramTotalsTable;
  collector_status: CollectorStatusTable;
  queues: QueuesTable;
  worker_inspect: WorkerInspectTable;
  audit_log: AuditLogTable;
  search_queue: SearchQueueTable;
  collector_leases: CollectorLeasesTable;
  task_stats: TaskStatsTable;
  task_stats_all: TaskStatsAllTable;
  task_stats_exceptions: TaskStatsExceptionsTable;
  queue_stats: QueueStatsTable;
  metrics_snapshot: MetricsSnapshotTable;
  lost_counters: LostCountersTable;
  alert_rules: AlertRulesTable;
  alert_state: AlertStateTable;
  alert_history: AlertHistoryTable;
}

/**
 * Time-bucketed task statistics (migration 007): per task name and per
 * bucket (`step` 60 for minutes, 3600 for hours), the count of each event
 * type in it (by the event's own timestamp) and the runtime and queue-wait
 * histograms, one column per bin (src/shared/stats-bins.ts: `rt_0` ... and
 * `qw_0` ...). Each flush adds its events to their minute row and to their
 * hour row; retention deletes minute rows after --stats-minutes-hours (the
 * "rollup": the hour rows already hold them) and every row after
 * --stats-retention-days.
 */
export type TaskStatsTable = {
  step: number;
  /** Epoch seconds of the bucket's start (a multiple of `step`). */
  bucket: number;
  task_name: string;
  sent: number;
  received: number;
  started: number;
  succeeded: number;
  failed: number;
  retried: number;
  revoked: number;
  rejected: number;
} & Record<`rt_${number}` | `qw_${number}`, number>;

/** task_stats for all task names together (the "all tasks" charts read one row per bucket). */
export type TaskStatsAllTable = Omit<TaskStatsTable, 'task_name'>;

/** task-failed events by exception class, per task name and bucket (same steps as task_stats). */
export interface TaskStatsExceptionsTable {
  step: number;
  bucket: number;
  task_name: string;
  exception: string;
  count: number;
}

/** Queue lengths over time: the largest length the collector measured in the bucket. */
export interface QueueStatsTable {
  step: number;
  bucket: number;
  queue: string;
  length: number;
}

/**
 * Tasks the collector moved to LOST, counted by task name (migration 011):
 * incremented in the transaction that marks them, never decremented (a task
 * that converges back stays counted), so `stalk_tasks_lost_total` is a counter.
 */
export interface LostCountersTable {
  task_name: string;
  count: number;
}

/** The alert rules as the collector loaded them from --alerts (migration 012). */
export interface AlertRulesTable {
  name: string;
  /** Order in the file. */
  position: number;
  kind: string;
  /** JSON of the checked rule (AlertRule, src/shared/alerts.ts; durations in seconds). */
  definition: string;
  loaded_at: number;
}

/** Alert instances pending or firing now; an instance that is ok has no row. */
export interface AlertStateTable {
  alert: string;
  /** The labels as canonical JSON (labelsKey): the instance's identity within its rule. */
  labels_key: string;
  labels: string;
  status: 'pending' | 'firing';
  since: number;
  value: number;
  threshold: number;
  updated_at: number;
}

/** Firings and resolutions, newest last. */
export interface AlertHistoryTable {
  id: Generated<number>;
  at: number;
  alert: string;
  kind: string;
  labels: string;
  status: 'firing' | 'resolved';
  since: number;
  value: number;
  threshold: number;
  /** How the webhooks took it ('ops: delivered; ...'), null while sending or with no webhook. */
  delivery: string | null;
}

/** SQLite: final tasks waiting for the text index (migration 006; store/search-index.ts). */
export interface SearchQueueTable {
  task_id: number;
  /** 1 when the task may already be indexed (its old entry is removed first). */
  reindex: number;
}

export type TaskRow = Selectable<TasksTable>;
export type NewTaskRow = Insertable<TasksTable>;
/** A workers row as stored (lists as JSON text); read as a WorkerRecord through workerRecordFromRow (workers.ts). */
export type WorkerRow = Selectable<WorkersTable>;

/** Key lengths, shared by the migrations and by the code that cuts values to fit them. */
export const KEY = { id: 255, name: 191, host: 191, queue: 128, type: 64, exception: 128, metric: 32, le: 16 } as const;
