// Background pruning by age and by count, in small chunks so it never holds
// the database (or SQLite's single writer) for long.

import type { Kysely } from 'kysely';
import { errorMessage, type Logger } from '../../src/shared/log';
import { FUTURE_EVENT_WINDOW } from '../../src/shared/celery-events';
import type { Database } from '../../src/shared/schema';
import { statsRetentionOnce } from './stats-retention';

export interface RetentionOptions {
  /** Keep at most this many tasks (0: no limit). */
  maxTasks: number;
  /** Drop tasks whose last event is older than this many seconds (0: keep forever). */
  maxAgeSeconds: number;
  intervalMs: number;
  /** Task statistics: minute rows older than this many hours become hour rows (stats-retention.ts); unset: no rollup or deletion. */
  statsMinutesHours?: number;
  /** Task statistics: rows older than this many days are deleted. */
  statsRetentionDays?: number;
}

const CHUNK = 2_000;

export interface PruneReport {
  tasks: number;
}

/** Delete tasks (and their events) whose timestamp compares with `cutoff` as `op` says, a chunk at a time. */
async function deleteWhere(db: Kysely<Database>, op: '<' | '<=' | '>', cutoff: number, budget: number): Promise<number> {
  let deleted = 0;
  while (deleted < budget) {
    const victims = await db
      .selectFrom('tasks')
      .select(['uuid'])
      .where('timestamp', op, cutoff)
      .orderBy('timestamp', op === '>' ? 'desc' : 'asc')
      .limit(Math.min(CHUNK, budget - deleted))
      .execute();
    if (victims.length === 0) break;
    const ids = victims.map((v) => v.uuid);
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('task_events').where('task_id', 'in', ids).execute();
      await trx.deleteFrom('tasks').where('uuid', 'in', ids).execute();
    });
    deleted += ids.length;
    // Let flushes in: SQLite has one writer.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return deleted;
}

export async function pruneOnce(db: Kysely<Database>, options: RetentionOptions, now: number, budget = 200_000): Promise<PruneReport> {
  let tasks = 0;
  // A task dated beyond the window decode accepts (stored before decode
  // checked, or by another writer) would never grow old enough for the age
  // rule and would count as the newest for the count rule, holding its place
  // forever: whenever either rule is on, it goes first.
  if (options.maxAgeSeconds > 0 || options.maxTasks > 0) tasks += await deleteWhere(db, '>', now + FUTURE_EVENT_WINDOW, budget);
  if (options.maxAgeSeconds > 0) tasks += await deleteWhere(db, '<', now - options.maxAgeSeconds, budget);
  if (options.maxTasks > 0) {
    // The timestamp of the newest task that no longer fits; it and anything
    // as old goes (ties at that instant are rare and err on keeping fewer).
    const boundary = await db
      .selectFrom('tasks')
      .select('timestamp')
      .orderBy('timestamp', 'desc')
      .limit(1)
      .offset(options.maxTasks)
      .executeTakeFirst();
    if (boundary) tasks += await deleteWhere(db, '<=', boundary.timestamp, budget);
  }
  return { tasks };
}

export class RetentionPruner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: RetentionOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    const stats = this.options.statsMinutesHours !== undefined;
    if (this.options.maxTasks <= 0 && this.options.maxAgeSeconds <= 0 && !stats) return;
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.run().finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async run(): Promise<void> {
    try {
      const report = await pruneOnce(this.db, this.options, Date.now() / 1000);
      if (report.tasks > 0) this.log.info(`retention: removed ${report.tasks} tasks`);
    } catch (error) {
      this.log.warn(`retention: pruning failed (${errorMessage(error)}); will try again`);
    }
    const { statsMinutesHours, statsRetentionDays } = this.options;
    if (statsMinutesHours === undefined) return;
    try {
      const report = await statsRetentionOnce(
        this.db,
        { minutesHours: statsMinutesHours, retentionDays: statsRetentionDays ?? 90 },
        Date.now() / 1000,
      );
      if (report.rolledUp + report.deleted > 0)
        this.log.info(`retention: rolled ${report.rolledUp} minute rows of task statistics up into hours, removed ${report.deleted} rows`);
    } catch (error) {
      this.log.warn(`retention: task statistics rollup failed (${errorMessage(error)}); will try again`);
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
