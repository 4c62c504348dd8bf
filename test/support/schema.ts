// A database's schema as comparable data: tables, columns with their types,
// and indexes, read from information_schema (MySQL/MariaDB) or sqlite_master
// and its pragmas (SQLite).

import { type Kysely, sql } from 'kysely';
import type { OpenDatabase } from '../../worker-collector/store/db';

export interface SchemaSnapshot {
  tables: string[];
  columns: string[];
  indexes: string[];
  /** SQLite only: triggers and virtual tables, by their SQL. */
  other: string[];
}

async function rows<T>(db: Kysely<any>, query: ReturnType<typeof sql>): Promise<T[]> {
  return (await query.execute(db)).rows as T[];
}

export async function schemaOf(database: OpenDatabase): Promise<SchemaSnapshot> {
  const db = database.db as Kysely<any>;
  if (database.dialect === 'mysql') {
    const tables = await rows<{ t: string }>(
      db,
      sql`select concat_ws(' ', table_name, engine, table_collation) as t from information_schema.tables where table_schema = database() order by table_name`,
    );
    const columns = await rows<{ c: string }>(
      db,
      sql`select concat_ws(' ', table_name, ordinal_position, column_name, column_type, is_nullable, coalesce(column_default, '-'), extra, coalesce(collation_name, '-')) as c
          from information_schema.columns where table_schema = database() order by table_name, ordinal_position`,
    );
    const indexes = await rows<{ i: string }>(
      db,
      sql`select concat_ws(' ', table_name, index_name, non_unique, index_type, seq_in_index, column_name, coalesce(sub_part, '-')) as i
          from information_schema.statistics where table_schema = database() order by table_name, index_name, seq_in_index`,
    );
    return { tables: tables.map((r) => r.t), columns: columns.map((r) => r.c), indexes: indexes.map((r) => r.i), other: [] };
  }
  const master = await rows<{ type: string; name: string; tbl_name: string; sql: string | null }>(
    db,
    sql`select type, name, tbl_name, sql from sqlite_master where name not like 'sqlite_%' order by type, name`,
  );
  // Kysely's Migrator creates its own tables "if not exists"; that is not part of the schema.
  const normal = (text: string | null) =>
    (text ?? '')
      .replace(/\s+if not exists\s+/i, ' ')
      .replace(/\s+/g, ' ')
      .trim();
  const tables = master.filter((m) => m.type === 'table').map((m) => m.name);
  const columns: string[] = [];
  const indexes: string[] = [];
  for (const table of tables) {
    const info = await rows<{ cid: number; name: string; type: string; notnull: number; dflt_value: string | null; pk: number }>(
      db,
      sql`select * from pragma_table_info(${table})`,
    );
    for (const c of info) columns.push(`${table} ${c.cid} ${c.name} ${c.type} ${c.notnull} ${c.dflt_value ?? '-'} ${c.pk}`);
    const list = await rows<{ name: string; unique: number; origin: string; partial: number }>(
      db,
      sql`select * from pragma_index_list(${table})`,
    );
    for (const ix of list) {
      const cols = await rows<{ name: string | null }>(db, sql`select name from pragma_index_info(${ix.name}) order by seqno`);
      indexes.push(`${table} ${ix.name} ${ix.unique} ${ix.origin} ${ix.partial} (${cols.map((c) => c.name).join(', ')})`);
    }
  }
  indexes.sort();
  return {
    tables,
    columns,
    indexes,
    other: master.map((m) => `${m.type} ${m.name} on ${m.tbl_name}: ${normal(m.sql)}`),
  };
}

/** Names of the tables in the database, Stalk's and the bookkeeping ones alike. */
export async function tableNames(database: OpenDatabase): Promise<string[]> {
  return (await schemaOf(database)).tables.map((t) => t.split(' ')[0]!);
}
