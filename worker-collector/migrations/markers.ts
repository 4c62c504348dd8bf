// A migration's marker: one object it creates (the last one, so that a
// half-applied migration does not count), looked up in the catalog. It is how
// Stalk tells that a migration's DDL was applied outside Stalk (a PlanetScale
// deploy request carries DDL, never the stalk_migrations row), and it is read
// with plain SELECTs, so `--migrate check` can use it on a production branch.

import { type Kysely, sql } from 'kysely';
import { isMysql } from './dialect';

export type Marker = { kind: 'table'; name: string } | { kind: 'index'; name: string; table: string } | { kind: 'trigger'; name: string };

export const table = (name: string): Marker => ({ kind: 'table', name });
export const index = (tableName: string, name: string): Marker => ({ kind: 'index', name, table: tableName });
export const trigger = (name: string): Marker => ({ kind: 'trigger', name });

/** One marker for both dialects, or one each when they build different objects (SQLite FTS5 vs a MySQL FULLTEXT index). */
export type Markers = Marker | { mysql: Marker; sqlite: Marker };

export function markerFor(markers: Markers, mysql: boolean): Marker {
  return 'kind' in markers ? markers : mysql ? markers.mysql : markers.sqlite;
}

export function describeMarker(marker: Marker): string {
  return marker.kind === 'index' ? `index ${marker.name} on ${marker.table}` : `${marker.kind} ${marker.name}`;
}

/** Whether the marker's object exists in the connected database (MySQL: the current schema). */
export async function markerPresent(db: Kysely<any>, marker: Marker): Promise<boolean> {
  const query = isMysql(db) ? mysqlLookup(marker) : sqliteLookup(marker);
  const { rows } = await query.execute(db);
  return rows.length > 0;
}

export async function tableExists(db: Kysely<any>, name: string): Promise<boolean> {
  return markerPresent(db, table(name));
}

function mysqlLookup(marker: Marker) {
  switch (marker.kind) {
    case 'table':
      return sql`select 1 from information_schema.tables where table_schema = database() and table_name = ${marker.name}`;
    case 'index':
      return sql`select 1 from information_schema.statistics where table_schema = database() and table_name = ${marker.table} and index_name = ${marker.name} limit 1`;
    case 'trigger':
      return sql`select 1 from information_schema.triggers where trigger_schema = database() and trigger_name = ${marker.name}`;
  }
}

function sqliteLookup(marker: Marker) {
  // FTS5 tables are type 'table' too.
  const type = marker.kind;
  const on = marker.kind === 'index' ? sql` and tbl_name = ${marker.table}` : sql``;
  return sql`select 1 from sqlite_master where type = ${type} and name = ${marker.name}${on}`;
}
