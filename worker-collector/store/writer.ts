// Writes one flush in one transaction. A database that is down surfaces as
// DatabaseUnavailableError (the collector keeps the batch and retries); a
// database that is up but refuses some rows gets the batch halved until the
// refused rows are found, and only those are dropped, counted and logged.

import type { Kysely } from 'kysely';
import { createRateLimitedLog, errorMessage, type Logger } from '../../src/shared/log';
import type { CollectorStatusTable, Database } from '../../src/shared/schema';
import type { EventBatch } from '../fold/batch';
import type { WorkerState } from '../fold/worker';
import { type OpenDatabase, pingDatabase } from './db';
import { LruMap } from './lru';
import { type FlushRows, type TaskRef, buildFlushRows } from './rows';
import { addAssignments, replaceAssignments, taskMergeAssignments, upsertRows, chunkRows } from './upsert';

export class DatabaseUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`database unavailable: ${errorMessage(cause)}`);
    this.name = 'DatabaseUnavailableError';
  }
}

export interface WriteResult {
  rejectedRows: number;
}

const REF_LOOKUP_CHUNK = 500;

export class StoreWriter {
  private readonly refs: LruMap<string, TaskRef>;
  private readonly warnRejected: (key: string, message: string) => void;

  constructor(
    private readonly database: OpenDatabase,
    private readonly log: Logger,
    refCacheSize = 100_000,
  ) {
    this.refs = new LruMap(refCacheSize);
    this.warnRejected = createRateLimitedLog((m) => log.error(m));
  }

  /** Names and queues for every task in the batch, from the batch, the cache, or the database. */
  private async resolveRefs(batch: EventBatch): Promise<Map<string, TaskRef>> {
    const resolved = new Map<string, TaskRef>();
    const missing: string[] = [];
    for (const [uuid, row] of batch.tasks) {
      const cached = this.refs.get(uuid);
      const ref = { name: row.name ?? cached?.name ?? null, queue: row.queue ?? cached?.queue ?? null };
      resolved.set(uuid, ref);
      if (ref.name === null && cached === undefined) missing.push(uuid);
    }
    for (let i = 0; i < missing.length; i += REF_LOOKUP_CHUNK) {
      const found = await this.database.db
        .selectFrom('tasks')
        .select(['uuid', 'name', 'queue'])
        .where('uuid', 'in', missing.slice(i, i + REF_LOOKUP_CHUNK))
        .execute();
      for (const row of found) {
        const ref = resolved.get(row.uuid);
        if (ref) resolved.set(row.uuid, { name: ref.name ?? row.name, queue: ref.queue ?? row.queue });
      }
    }
    return resolved;
  }

  async write(
    batch: EventBatch,
    workers: Map<string, WorkerState>,
    status: CollectorStatusTable | undefined,
    runtimeBounds?: number[],
  ): Promise<WriteResult> {
    let refs: Map<string, TaskRef>;
    try {
      refs = await this.resolveRefs(batch);
    } catch (error) {
      throw new DatabaseUnavailableError(error);
    }
    const rows = buildFlushRows(batch, refs, workers, status, runtimeBounds);
    const rejectedRows = await this.writeOrIsolate(rows);
    for (const [uuid, ref] of refs) this.refs.set(uuid, ref);
    return { rejectedRows };
  }

  private async writeOrIsolate(rows: FlushRows): Promise<number> {
    try {
      await writeRows(this.database.db, this.database, rows);
      return 0;
    } catch (error) {
      try {
        await pingDatabase(this.database.db);
      } catch {
        throw new DatabaseUnavailableError(error);
      }
      const size = rows.tasks.length + rows.timeline.length;
      if (size <= 1) {
        const what = rows.tasks[0]?.uuid ?? rows.timeline[0]?.task_id ?? 'collector rows';
        this.warnRejected(errorMessage(error), `database refused the row for ${what}: ${errorMessage(error)}`);
        return Math.max(size, 1);
      }
      const [first, second] = halve(rows);
      return (await this.writeOrIsolate(first)) + (await this.writeOrIsolate(second));
    }
  }
}

function halve(rows: FlushRows): [FlushRows, FlushRows] {
  const t = Math.ceil(rows.tasks.length / 2);
  const e = Math.ceil(rows.timeline.length / 2);
  return [
    { ...rows, tasks: rows.tasks.slice(0, t), timeline: rows.timeline.slice(0, e) },
    {
      tasks: rows.tasks.slice(t),
      timeline: rows.timeline.slice(e),
      workers: [],
      counters: [],
      histogramBuckets: [],
      histogramTotals: [],
      status: undefined,
    },
  ];
}

export async function writeRows(db: Kysely<Database>, { dialect }: Pick<OpenDatabase, 'dialect'>, rows: FlushRows): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await upsertRows(trx, dialect, 'tasks', rows.tasks, ['uuid'], taskMergeAssignments);
    for (const chunk of chunkRows(rows.timeline, 4_000)) {
      await trx.insertInto('task_events').values(chunk).execute();
    }
    const workerColumns = rows.workers[0] ? Object.keys(rows.workers[0]).filter((c) => c !== 'hostname' && c !== 'first_seen') : [];
    await upsertRows(trx, dialect, 'workers', rows.workers, ['hostname'], replaceAssignments(workerColumns));
    await upsertRows(trx, dialect, 'event_counters', rows.counters, ['hostname', 'task_name', 'queue', 'type', 'exception'], addAssignments(['count']));
    await upsertRows(trx, dialect, 'histogram_buckets', rows.histogramBuckets, ['metric', 'hostname', 'task_name', 'queue', 'le'], addAssignments(['count']));
    await upsertRows(trx, dialect, 'histogram_totals', rows.histogramTotals, ['metric', 'hostname', 'task_name', 'queue'], addAssignments(['sum', 'count']));
    if (rows.status) {
      const statusColumns = Object.keys(rows.status).filter((c) => c !== 'id');
      await upsertRows(trx, dialect, 'collector_status', [rows.status], ['id'], replaceAssignments(statusColumns));
    }
  });
}
