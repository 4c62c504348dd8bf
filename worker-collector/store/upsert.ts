// Multi-row upserts that read the same in SQLite (`ON CONFLICT ... DO UPDATE`)
// and MySQL (`ON DUPLICATE KEY UPDATE`), including the task merge rules.

import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Database } from '../../src/shared/schema';
import { TASK_COLUMNS, TASK_MERGE_RULES } from '../../src/shared/task-merge';
import type { SqlDialect } from './db';

type Table = keyof Database;
type Refs = {
  /** The value the statement tried to insert. */
  incoming(column: string): RawBuilder<unknown>;
  /** The value already stored (MySQL: as updated by earlier assignments in the same statement). */
  stored(column: string): RawBuilder<unknown>;
};

function refs(dialect: SqlDialect, table: Table): Refs {
  return {
    incoming: (column) =>
      dialect === 'mysql' ? sql`VALUES(${sql.ref(column)})` : sql`${sql.ref(`excluded.${column}`)}`,
    stored: (column) => sql`${sql.ref(`${table}.${column}`)}`,
  };
}

/**
 * Rows per statement: bounded by SQLite's 32,766 bound parameters and by a
 * byte budget that keeps a MySQL packet well under the default 16 MiB.
 */
export function chunkRows<T extends object>(rows: T[], maxRows: number, maxBytes = 4 * 1024 * 1024): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const row of rows) {
    let size = 16;
    for (const value of Object.values(row)) size += typeof value === 'string' ? value.length * 3 : 8;
    if (current.length > 0 && (current.length >= maxRows || bytes + size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(row);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

export async function upsertRows<T extends Table>(
  db: Kysely<Database>,
  dialect: SqlDialect,
  table: T,
  rows: object[],
  conflictColumns: string[],
  assignments: (r: Refs) => Record<string, RawBuilder<unknown>>,
): Promise<void> {
  if (rows.length === 0) return;
  const columnCount = Object.keys(rows[0] as object).length;
  const set = assignments(refs(dialect, table));
  for (const chunk of chunkRows(rows, Math.floor(30_000 / columnCount))) {
    // The row types are checked where the rows are built; Kysely's per-table
    // insert types cannot follow a generic table name.
    const insert = db.insertInto(table).values(chunk as never);
    if (dialect === 'mysql') await insert.onDuplicateKeyUpdate(set as never).execute();
    else await insert.onConflict((oc) => oc.columns(conflictColumns as never).doUpdateSet(set as never)).execute();
  }
}

/** The SQL form of mergeTaskRows (src/shared/task-merge.ts), column by column, state_key last. */
export function taskMergeAssignments({ incoming, stored }: Refs): Record<string, RawBuilder<unknown>> {
  const newKey = incoming('state_key');
  const oldKey = stored('state_key');
  const set: Record<string, RawBuilder<unknown>> = {};
  for (const column of TASK_COLUMNS) {
    const rule = TASK_MERGE_RULES[column];
    const n = incoming(column);
    const o = stored(column);
    if (rule === 'max') set[column] = sql`COALESCE(CASE WHEN ${n} > ${o} THEN ${n} ELSE ${o} END, ${n})`;
    else if (rule === 'winner') set[column] = sql`CASE WHEN ${newKey} > ${oldKey} THEN COALESCE(${n}, ${o}) ELSE COALESCE(${o}, ${n}) END`;
  }
  return set;
}

/** Counters and histograms add what a flush counted to what is stored. */
export function addAssignments(columns: string[]) {
  return ({ incoming, stored }: Refs): Record<string, RawBuilder<unknown>> =>
    Object.fromEntries(columns.map((c) => [c, sql`${stored(c)} + ${incoming(c)}`]));
}

/** The incoming row replaces the stored one (rows the collector owns, like workers). */
export function replaceAssignments(columns: string[]) {
  return ({ incoming }: Refs): Record<string, RawBuilder<unknown>> =>
    Object.fromEntries(columns.map((c) => [c, incoming(c)]));
}
