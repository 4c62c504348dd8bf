// Writes one flush in one transaction. A database that is down surfaces as
// DatabaseUnavailableError (the collector keeps the batch and retries); a
// database that is up but refuses some rows gets the flush halved until the
// refused rows are found, and only those are dropped, counted and logged.
// A flush that carries a lease claim renews it first, in its transaction: a
// collector that lost the lease writes nothing (LeaseLostError, never
// isolated or halved: the whole flush is refused, not some rows).

import { createRateLimitedLog, errorMessage, type Logger } from '../../src/shared/log';
import type { SqlDialect } from '../../src/shared/schema';
import { isBusyError, type OpenDatabase, pingDatabase } from './db';
import { TASK_COLUMNS } from '../fold/merge';
import { MetricTally } from './counters';
import type { FlushPayload, TaskRef } from './payload';
import { LeaseLostError, renewInTransaction } from '../lease';
import { addAssignments, BulkWrite, replaceAssignments, taskMergeAssignments } from './upsert';
import {
  TASK_STATS_ALL_COLUMNS,
  TASK_STATS_ALL_KEY,
  TASK_STATS_COLUMNS,
  TASK_STATS_EXCEPTION_COLUMNS,
  TASK_STATS_EXCEPTION_KEY,
  TASK_STATS_KEY,
} from './stats';

export class DatabaseUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`database unavailable: ${errorMessage(cause)}`);
    this.name = 'DatabaseUnavailableError';
  }
}

export interface WriteResult {
  rejectedRows: number;
  /** Names and queues looked up in the database, for the caller's cache. */
  resolved: [string, TaskRef][];
}

const REF_LOOKUP_CHUNK = 500;
const COUNTER_KEY = ['hostname', 'task_name', 'queue', 'type', 'exception'];
const SERIES_KEY = ['metric', 'hostname', 'task_name', 'queue'];
const WORKER_COLUMNS = [
  'hostname',
  'status',
  'pid',
  'freq',
  'clock',
  'active',
  'processed',
  'loadavg',
  'sw_ident',
  'sw_ver',
  'sw_sys',
  'utcoffset',
  'heartbeats',
  'last_heartbeat',
  'first_seen',
  'offline_at',
];
const STATUS_COLUMNS = [
  'id',
  'started_at',
  'updated_at',
  'broker_url',
  'broker_connected',
  'last_event_at',
  'events_total',
  'dropped',
  'lag_seconds',
  'flush_seconds',
];

function values<T extends object>(rows: T[], columns: readonly string[]): unknown[][] {
  return rows.map((row) => columns.map((c) => (row as Record<string, unknown>)[c] ?? null));
}

/** The statements of a flush, built once per database. */
function statements(database: OpenDatabase) {
  const { db, dialect } = database;
  const d: SqlDialect = dialect;
  const direct = { sqlite: database.sqlite };
  return {
    tasks: new BulkWrite(db, d, 'tasks', TASK_COLUMNS, { columns: ['uuid'], assignments: taskMergeAssignments }, direct),
    timelines: new BulkWrite(db, d, 'task_events', ['task_id', 'events'], undefined, direct),
    workers: new BulkWrite(db, d, 'workers', WORKER_COLUMNS, {
      columns: ['hostname'],
      assignments: replaceAssignments(WORKER_COLUMNS.filter((c) => c !== 'hostname' && c !== 'first_seen')),
    }),
    counters: new BulkWrite(db, d, 'event_counters', [...COUNTER_KEY, 'count'], {
      columns: COUNTER_KEY,
      assignments: addAssignments(['count']),
    }),
    buckets: new BulkWrite(db, d, 'histogram_buckets', [...SERIES_KEY, 'le', 'count'], {
      columns: [...SERIES_KEY, 'le'],
      assignments: addAssignments(['count']),
    }),
    totals: new BulkWrite(db, d, 'histogram_totals', [...SERIES_KEY, 'sum', 'count'], {
      columns: SERIES_KEY,
      assignments: addAssignments(['sum', 'count']),
    }),
    // Time-bucketed statistics: each flush adds its minutes' counts and bins.
    stats: new BulkWrite(db, d, 'task_stats', TASK_STATS_COLUMNS, {
      columns: TASK_STATS_KEY,
      assignments: addAssignments(TASK_STATS_COLUMNS.filter((c) => !TASK_STATS_KEY.includes(c))),
    }),
    statsAll: new BulkWrite(db, d, 'task_stats_all', TASK_STATS_ALL_COLUMNS, {
      columns: TASK_STATS_ALL_KEY,
      assignments: addAssignments(TASK_STATS_ALL_COLUMNS.filter((c) => !TASK_STATS_ALL_KEY.includes(c))),
    }),
    statsExceptions: new BulkWrite(db, d, 'task_stats_exceptions', TASK_STATS_EXCEPTION_COLUMNS, {
      columns: TASK_STATS_EXCEPTION_KEY,
      assignments: addAssignments(['count']),
    }),
    status: new BulkWrite(db, d, 'collector_status', STATUS_COLUMNS, {
      columns: ['id'],
      assignments: replaceAssignments(STATUS_COLUMNS.filter((c) => c !== 'id')),
    }),
  };
}

export class StoreWriter {
  private readonly warnRejected: (key: string, message: string) => void;
  private readonly bulk: ReturnType<typeof statements>;

  constructor(
    private readonly database: OpenDatabase,
    log: Logger,
  ) {
    this.warnRejected = createRateLimitedLog((m) => log.error(m));
    this.bulk = statements(database);
  }

  /**
   * Count the events of tasks named only in the database (their naming
   * events came in earlier flushes); the sent time and eta stored with the
   * name measure the queue wait of a task-started among them.
   */
  private async resolve(payload: FlushPayload): Promise<{ payload: FlushPayload; resolved: [string, TaskRef][] }> {
    if (payload.unresolved.length === 0) return { payload, resolved: [] };
    const refs = new Map<string, TaskRef>();
    const ids = payload.unresolved.map((t) => t.uuid);
    for (let i = 0; i < ids.length; i += REF_LOOKUP_CHUNK) {
      const rows = await this.database.db
        .selectFrom('tasks')
        .select(['uuid', 'name', 'queue', 'sent', 'eta'])
        .where('uuid', 'in', ids.slice(i, i + REF_LOOKUP_CHUNK))
        .execute();
      for (const row of rows) {
        refs.set(row.uuid, { name: row.name, queue: row.queue, sent: row.sent === null ? null : Number(row.sent), eta: row.eta });
      }
    }
    const tally = new MetricTally(payload.runtimeBounds);
    for (const task of payload.unresolved) {
      tally.taskEvents(task.events, refs.get(task.uuid) ?? { name: null, queue: null, sent: null, eta: null });
    }
    const extra = tally.deltas();
    return {
      payload: {
        ...payload,
        unresolved: [],
        counters: payload.counters.concat(extra.counters),
        histogramBuckets: payload.histogramBuckets.concat(extra.histogramBuckets),
        histogramTotals: payload.histogramTotals.concat(extra.histogramTotals),
        taskStats: payload.taskStats.concat(extra.taskStats),
        taskStatsAll: payload.taskStatsAll.concat(extra.taskStatsAll),
        taskStatsExceptions: payload.taskStatsExceptions.concat(extra.taskStatsExceptions),
      },
      resolved: [...refs],
    };
  }

  async write(payload: FlushPayload): Promise<WriteResult> {
    let resolved: Awaited<ReturnType<StoreWriter['resolve']>>;
    try {
      resolved = await this.resolve(payload);
    } catch (error) {
      throw new DatabaseUnavailableError(error);
    }
    const rejectedRows = await this.writeOrIsolate(resolved.payload);
    return { rejectedRows, resolved: resolved.resolved };
  }

  private async writeOrIsolate(payload: FlushPayload): Promise<number> {
    try {
      await this.writeAll(payload);
      return 0;
    } catch (error) {
      if (error instanceof LeaseLostError) throw error;
      // A lock held too long (SQLite's busy timeout) says nothing about the rows: try again later.
      if (isBusyError(error)) throw new DatabaseUnavailableError(error);
      try {
        await pingDatabase(this.database.db);
      } catch {
        throw new DatabaseUnavailableError(error);
      }
      const rows = payload.tasks.length + payload.timelines.length;
      const hasAux = hasAuxiliaryRows(payload);
      if (rows > 0 && hasAux) {
        // Tasks and timelines first, then the collector's own rows, separately.
        const [data, aux] = splitAuxiliary(payload);
        return (await this.writeOrIsolate(data)) + (await this.writeOrIsolate(aux));
      }
      if (rows <= 1) {
        const what = payload.timelines[0]?.[0] ?? (payload.tasks[0] ? String(payload.tasks[0][0]) : 'worker, counter and status rows');
        this.warnRejected(errorMessage(error), `database refused the row for ${what}: ${errorMessage(error)}`);
        return 1;
      }
      const [first, second] = halve(payload);
      return (await this.writeOrIsolate(first)) + (await this.writeOrIsolate(second));
    }
  }

  /** Everything in one transaction, behind the lease's fence when the payload carries a claim. */
  private async writeAll(payload: FlushPayload): Promise<void> {
    const b = this.bulk;
    const lease = payload.lease;
    await this.database.db.transaction().execute(async (trx) => {
      if (lease && !(await renewInTransaction(trx, lease))) throw new LeaseLostError(lease);
      await b.tasks.run(trx, payload.tasks);
      await b.timelines.run(trx, payload.timelines);
      await b.workers.run(trx, values(payload.workers, WORKER_COLUMNS));
      await b.counters.run(trx, values(payload.counters, b.counters.columns));
      await b.buckets.run(trx, values(payload.histogramBuckets, b.buckets.columns));
      await b.totals.run(trx, values(payload.histogramTotals, b.totals.columns));
      await b.stats.run(trx, payload.taskStats);
      await b.statsAll.run(trx, payload.taskStatsAll);
      await b.statsExceptions.run(trx, values(payload.taskStatsExceptions, TASK_STATS_EXCEPTION_COLUMNS));
      if (payload.status) await b.status.run(trx, values([payload.status], STATUS_COLUMNS));
    });
  }
}

const NO_AUXILIARY = {
  workers: [],
  counters: [],
  histogramBuckets: [],
  histogramTotals: [],
  taskStats: [],
  taskStatsAll: [],
  taskStatsExceptions: [],
  status: null,
};

function hasAuxiliaryRows(p: FlushPayload): boolean {
  const rows =
    p.workers.length +
    p.counters.length +
    p.histogramBuckets.length +
    p.histogramTotals.length +
    p.taskStats.length +
    p.taskStatsAll.length +
    p.taskStatsExceptions.length;
  return rows > 0 || p.status !== null;
}

function splitAuxiliary(p: FlushPayload): [FlushPayload, FlushPayload] {
  return [
    { ...p, ...NO_AUXILIARY },
    { ...p, tasks: [], timelines: [] },
  ];
}

/** Two halves of a payload that has only task and timeline rows. */
function halve(p: FlushPayload): [FlushPayload, FlushPayload] {
  const total = p.tasks.length + p.timelines.length;
  const mid = Math.ceil(total / 2);
  const t = Math.min(mid, p.tasks.length);
  const e = mid - t;
  return [
    { ...p, tasks: p.tasks.slice(0, t), timelines: p.timelines.slice(0, e) },
    { ...p, tasks: p.tasks.slice(t), timelines: p.timelines.slice(e) },
  ];
}
