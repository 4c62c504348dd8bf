// The task statistics' retention. Every flush writes each event to its
// minute row and to its hour row (stats.ts), so the rollup of minutes into
// hours after --stats-minutes-hours is only a deletion of the old minute
// rows: the hours already hold their counts, bins and largest queue lengths.
// Rows of any step (day rows too) older than --stats-retention-days are
// deleted too. Both
// delete at most a day of buckets per statement, so neither holds the
// database (or SQLite's single writer) for long, and both are idempotent:
// two collectors running them at once delete each row once, and no count
// moves between rows, so nothing can be counted twice or lost.

import { type Kysely, sql } from 'kysely';
import type { Database } from '../../src/shared/schema';

const HOUR = 3600;
const DAY = 86_400;

export const STATS_TABLES = ['task_stats', 'task_stats_all', 'task_stats_exceptions', 'queue_stats'] as const;

export interface StatsRetentionOptions {
  /** Minute rows older than this many hours are deleted (their hours remain). */
  minutesHours: number;
  /** Rows older than this many days are deleted. */
  retentionDays: number;
}

export interface StatsRetentionReport {
  /** Minute rows deleted (their hour rows hold them). */
  rolledUp: number;
  /** Rows of any step deleted past retention. */
  deleted: number;
}

const yieldToFlushes = () => new Promise((resolve) => setImmediate(resolve));

/** Delete the rows of `steps` with bucket < `before`, a day of buckets per statement. */
async function deleteBefore(db: Kysely<Database>, table: string, steps: string, before: number, maxChunks: number): Promise<number> {
  let deleted = 0;
  for (let chunk = 0; chunk < maxChunks; chunk++) {
    const { rows } = await sql<{
      b: unknown;
    }>`SELECT MIN(bucket) AS b FROM ${sql.table(table)} WHERE step IN (${sql.raw(steps)}) AND bucket < ${before}`.execute(db);
    const first = rows[0]?.b;
    if (first === null || first === undefined) break;
    const until = Math.min(before, Number(first) + DAY);
    const result = await sql`DELETE FROM ${sql.table(table)} WHERE step IN (${sql.raw(steps)}) AND bucket < ${until}`.execute(db);
    deleted += Number(result.numAffectedRows ?? 0);
    await yieldToFlushes();
  }
  return deleted;
}

/** One pass over the statistics tables: minutes past the rollup, then everything past retention. */
export async function statsRetentionOnce(
  db: Kysely<Database>,
  options: StatsRetentionOptions,
  now: number,
  maxChunks = 500,
): Promise<StatsRetentionReport> {
  const report: StatsRetentionReport = { rolledUp: 0, deleted: 0 };
  // Whole hours only: the minutes of the hour the threshold falls in stay.
  const rollBefore = Math.floor((now - options.minutesHours * HOUR) / HOUR) * HOUR;
  const expired = now - options.retentionDays * DAY;
  for (const table of STATS_TABLES) {
    report.deleted += await deleteBefore(db, table, '60, 3600, 86400', expired, maxChunks);
    report.rolledUp += await deleteBefore(db, table, '60', rollBefore, maxChunks);
  }
  return report;
}
