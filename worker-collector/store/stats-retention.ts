// The task statistics' retention: minute rows older than --stats-minutes-hours
// are rolled up into hour rows, and rows older than --stats-retention-days
// are deleted. Both go an hour (rollup) or a day (deletion) of buckets per
// transaction, so neither holds the database (or SQLite's single writer)
// for long.
//
// The rollup of one hour is one transaction: sum (or, for queue lengths,
// take the largest of) the hour's minute rows into its hour row, adding to
// an hour row already there, then delete those minute rows. Run twice, or by
// two collectors at once, it moves each minute row exactly once: MySQL
// locks the hour's minute rows first (SELECT ... FOR UPDATE), so a second
// run waits and then finds none; SQLite has one writer, and a transaction
// that would write on a stale snapshot fails (busy) and is retried by the
// next run. A minute row that arrives for an hour already rolled up (an
// event more than --stats-minutes-hours late) is added to the hour row by
// the next run.

import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Database } from '../../src/shared/schema';
import { TASK_STATS_VALUE_COLUMNS } from '../../src/shared/stats-bins';
import { isMysql } from '../migrations/dialect';

const HOUR = 3600;
const DAY = 86_400;

interface StatsTable {
  table: 'task_stats' | 'task_stats_exceptions' | 'queue_stats';
  /** Key columns besides (step, bucket). */
  key: string[];
  values: readonly string[];
  combine: 'add' | 'max';
}

export const STATS_TABLES: readonly StatsTable[] = [
  { table: 'task_stats', key: ['task_name'], values: TASK_STATS_VALUE_COLUMNS, combine: 'add' },
  { table: 'task_stats_exceptions', key: ['task_name', 'exception'], values: ['count'], combine: 'add' },
  { table: 'queue_stats', key: ['queue'], values: ['length'], combine: 'max' },
];

const list = (columns: readonly string[]) =>
  sql.join(
    columns.map((c) => sql.ref(c)),
    sql`, `,
  );

function conflictClause(spec: StatsTable, mysql: boolean): RawBuilder<unknown> {
  const set = spec.values.map((c) => {
    const stored = sql.ref(`${spec.table}.${c}`);
    const incoming = mysql ? sql`VALUES(${sql.ref(c)})` : sql.ref(`excluded.${c}`);
    const value =
      spec.combine === 'add' ? sql`${stored} + ${incoming}` : sql`CASE WHEN ${incoming} > ${stored} THEN ${incoming} ELSE ${stored} END`;
    return sql`${sql.ref(c)} = ${value}`;
  });
  const assignments = sql.join(set, sql`, `);
  return mysql
    ? sql`ON DUPLICATE KEY UPDATE ${assignments}`
    : sql`ON CONFLICT (step, bucket, ${list(spec.key)}) DO UPDATE SET ${assignments}`;
}

/** Roll the minute rows of the hour starting at `hour` into its hour row. Returns the minute rows moved. */
async function rollupHour(db: Kysely<Database>, spec: StatsTable, hour: number, mysql: boolean): Promise<number> {
  const aggregate = spec.combine === 'add' ? 'SUM' : 'MAX';
  const values = sql.join(
    spec.values.map((c) => sql`${sql.raw(aggregate)}(${sql.ref(c)}) AS ${sql.ref(c)}`),
    sql`, `,
  );
  const table = sql.table(spec.table);
  const minutes = sql`step = 60 AND bucket >= ${hour} AND bucket < ${hour + HOUR}`;
  return db.transaction().execute(async (trx) => {
    if (mysql) await sql`SELECT COUNT(*) AS n FROM ${table} WHERE ${minutes} FOR UPDATE`.execute(trx);
    // The derived table keeps MySQL from reading the SELECT's GROUP BY in
    // the UPDATE clause; SQLite needs the WHERE to parse ON CONFLICT.
    await sql`INSERT INTO ${table} (step, bucket, ${list(spec.key)}, ${list(spec.values)})
      SELECT * FROM (SELECT ${sql.lit(HOUR)} AS step, ${sql.lit(hour)} AS bucket, ${list(spec.key)}, ${values}
        FROM ${table} WHERE ${minutes} GROUP BY ${list(spec.key)}) AS r WHERE 1 = 1
      ${conflictClause(spec, mysql)}`.execute(trx);
    const deleted = await sql`DELETE FROM ${table} WHERE ${minutes}`.execute(trx);
    return Number(deleted.numAffectedRows ?? 0);
  });
}

async function oldest(db: Kysely<Database>, spec: StatsTable, steps: string, before: number): Promise<number | null> {
  const { rows } = await sql<{
    b: unknown;
  }>`SELECT MIN(bucket) AS b FROM ${sql.table(spec.table)} WHERE step IN (${sql.raw(steps)}) AND bucket < ${before}`.execute(db);
  const b = rows[0]?.b;
  return b === null || b === undefined ? null : Number(b);
}

export interface StatsRetentionOptions {
  /** Minute rows older than this many hours are rolled up. */
  minutesHours: number;
  /** Rows older than this many days are deleted. */
  retentionDays: number;
}

export interface StatsRetentionReport {
  /** Minute rows moved into hour rows. */
  rolledUp: number;
  /** Rows deleted past retention. */
  deleted: number;
}

const yieldToFlushes = () => new Promise((resolve) => setImmediate(resolve));

/** One pass of rollup and deletion over the three statistics tables, at most `maxChunks` transactions each. */
export async function statsRetentionOnce(
  db: Kysely<Database>,
  options: StatsRetentionOptions,
  now: number,
  maxChunks = 500,
): Promise<StatsRetentionReport> {
  const mysql = isMysql(db);
  const report: StatsRetentionReport = { rolledUp: 0, deleted: 0 };
  const expired = now - options.retentionDays * DAY;
  // Whole hours only: the hour being written to stays in minutes.
  const rollBefore = Math.floor((now - options.minutesHours * HOUR) / HOUR) * HOUR;
  for (const spec of STATS_TABLES) {
    for (let chunk = 0; chunk < maxChunks; chunk++) {
      const first = await oldest(db, spec, '60, 3600', expired);
      if (first === null) break;
      const until = Math.min(expired, first + DAY);
      const result = await sql`DELETE FROM ${sql.table(spec.table)} WHERE step IN (60, 3600) AND bucket < ${until}`.execute(db);
      report.deleted += Number(result.numAffectedRows ?? 0);
      await yieldToFlushes();
    }
    for (let chunk = 0; chunk < maxChunks; chunk++) {
      const first = await oldest(db, spec, '60', rollBefore);
      if (first === null) break;
      report.rolledUp += await rollupHour(db, spec, Math.floor(first / HOUR) * HOUR, mysql);
      await yieldToFlushes();
    }
  }
  return report;
}
