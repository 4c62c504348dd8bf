// Inserts and upserts that read the same in SQLite (`ON CONFLICT ... DO
// UPDATE`) and MySQL (`ON DUPLICATE KEY UPDATE`), including the task merge
// rules. Kysely builds each statement's SQL once per row count; flushes then
// run it with new parameters (rows as arrays in column order), so a flush
// pays neither query building nor, on SQLite, statement preparation again.

import type SQLite from 'better-sqlite3';
import { CompiledQuery, type Kysely, type RawBuilder, sql } from 'kysely';
import type { Database } from '../../src/shared/schema';
import { TASK_COLUMNS, TASK_MERGE_RULES } from '../fold/merge';
import type { SqlDialect } from '../../src/shared/schema';

type Table = keyof Database;
export type Refs = {
  /** The value the statement tried to insert. */
  incoming(column: string): RawBuilder<unknown>;
  /** The value already stored (MySQL: as updated by earlier assignments in the same statement). */
  stored(column: string): RawBuilder<unknown>;
};
export type Assignments = (refs: Refs) => Record<string, RawBuilder<unknown>>;

function refs(dialect: SqlDialect, table: Table): Refs {
  return {
    incoming: (column) => (dialect === 'mysql' ? sql`VALUES(${sql.ref(column)})` : sql`${sql.ref(`excluded.${column}`)}`),
    stored: (column) => sql`${sql.ref(`${table}.${column}`)}`,
  };
}

/** Row counts statements are built for: full chunks, then powers of two for the rest. */
function chunkSizes(total: number, max: number): number[] {
  const sizes: number[] = [];
  let left = total;
  while (left >= max) {
    sizes.push(max);
    left -= max;
  }
  for (let size = 2 ** Math.floor(Math.log2(Math.max(1, max))); left > 0; size /= 2) {
    while (left >= size) {
      sizes.push(size);
      left -= size;
    }
  }
  return sizes;
}

/** Estimated bytes of a row once sent (MySQL packets stay well under the 16 MiB default). */
function rowBytes(row: unknown[]): number {
  let size = 16;
  for (const value of row) size += typeof value === 'string' ? value.length * 3 : 8;
  return size;
}

export interface BulkWriteOptions {
  /** Largest statement, in estimated bytes. */
  maxBytes?: number;
  /**
   * SQLite: the connection's own handle. Rows then run through one prepared
   * statement synchronously, inside whatever transaction the Kysely executor
   * has open on that same connection: a promise per row costs as much as
   * the row itself (bench/store.ts).
   */
  sqlite?: SQLite.Database | undefined;
}

export class BulkWrite {
  private readonly statements = new Map<number, string>();
  private readonly maxRows: number;
  private readonly maxBytes: number;
  private readonly sqlite: SQLite.Database | undefined;
  private prepared: SQLite.Statement | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: SqlDialect,
    private readonly table: Table,
    readonly columns: readonly string[],
    private readonly conflict?: { columns: string[]; assignments: Assignments },
    options: BulkWriteOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
    this.sqlite = options.sqlite;
    // SQLite runs a prepared one-row statement faster than a multi-row one
    // (measured: 15 vs 28 us a task row), and there is no network to save.
    // MySQL gets up to 500 rows a statement, fewer for wide rows.
    this.maxRows = dialect === 'sqlite' ? 1 : Math.max(1, Math.min(500, Math.floor(30_000 / columns.length)));
  }

  private sqlFor(rows: number): string {
    let text = this.statements.get(rows);
    if (text !== undefined) return text;
    const placeholder = Object.fromEntries(this.columns.map((c) => [c, 0]));
    const insert = this.db.insertInto(this.table).values(Array.from({ length: rows }, () => placeholder) as never);
    if (!this.conflict) text = insert.compile().sql;
    else {
      const set = this.conflict.assignments(refs(this.dialect, this.table));
      text =
        this.dialect === 'mysql'
          ? insert.onDuplicateKeyUpdate(set as never).compile().sql
          : insert.onConflict((oc) => oc.columns(this.conflict!.columns as never).doUpdateSet(set as never)).compile().sql;
    }
    this.statements.set(rows, text);
    return text;
  }

  /** Write rows (arrays in `columns` order) through `executor` (a transaction). */
  async run(executor: Kysely<Database>, rows: unknown[][]): Promise<void> {
    if (this.sqlite) {
      const statement = (this.prepared ??= this.sqlite.prepare(this.sqlFor(1)));
      for (const row of rows) statement.run(row);
      return;
    }
    let start = 0;
    while (start < rows.length) {
      // Take as many rows as fit the byte budget, then the largest prepared size.
      let end = start;
      let bytes = 0;
      while (end < rows.length && end - start < this.maxRows) {
        bytes += rowBytes(rows[end]!);
        if (bytes > this.maxBytes && end > start) break;
        end += 1;
      }
      const [size] = chunkSizes(end - start, this.maxRows);
      const chunk = rows.slice(start, start + size!);
      await executor.executeQuery(CompiledQuery.raw(this.sqlFor(chunk.length), chunk.flat()));
      start += chunk.length;
    }
  }
}

/** The SQL form of mergeTaskRowInto (fold/merge.ts), column by column, state_key last. */
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
    else if (rule === 'own') set[column] = sql`CASE WHEN ${newKey} > ${oldKey} THEN ${n} ELSE ${o} END`;
  }
  return set;
}

/** Counters and histograms add what a flush counted to what is stored. */
export function addAssignments(columns: string[]): Assignments {
  return ({ incoming, stored }) => Object.fromEntries(columns.map((c) => [c, sql`${stored(c)} + ${incoming(c)}`]));
}

/**
 * The incoming row replaces the stored one only when it is at least as new by
 * `timeColumn` (a slow broadcast must not overwrite a newer answer). The time
 * column is assigned last: MySQL reads earlier assignments' results.
 */
export function newerAssignments(timeColumn: string, columns: string[]): Assignments {
  return ({ incoming, stored }) => {
    const newer = sql`${incoming(timeColumn)} >= ${stored(timeColumn)}`;
    const pick = (c: string) => sql`case when ${newer} then ${incoming(c)} else ${stored(c)} end`;
    return Object.fromEntries([...columns.filter((c) => c !== timeColumn), timeColumn].map((c) => [c, pick(c)]));
  };
}

/** Each column keeps the larger of the stored and the incoming value. */
export function maxAssignments(columns: string[]): Assignments {
  return ({ incoming, stored }) =>
    Object.fromEntries(columns.map((c) => [c, sql`CASE WHEN ${incoming(c)} > ${stored(c)} THEN ${incoming(c)} ELSE ${stored(c)} END`]));
}

/** The incoming row replaces the stored one (rows the collector owns, like workers). */
export function replaceAssignments(columns: string[]): Assignments {
  return ({ incoming }) => Object.fromEntries(columns.map((c) => [c, incoming(c)]));
}
