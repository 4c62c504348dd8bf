// Column types that mean the same thing in SQLite and MySQL.

import { type ColumnDataType, type Expression, type Kysely, MysqlAdapter, sql } from 'kysely';

export interface ColumnTypes {
  mysql: boolean;
  /** An indexed string of at most n characters. */
  key(n: number): ColumnDataType | Expression<unknown>;
  /** Long user text (args, results, tracebacks). */
  text: ColumnDataType | Expression<unknown>;
  double: ColumnDataType | Expression<unknown>;
  int: ColumnDataType;
  bigint: ColumnDataType;
  /** Table options (MySQL: InnoDB, utf8mb4, binary collation like SQLite's default). */
  tableEnd: Expression<unknown>;
}

/** Whether `db` speaks MySQL (MySQL, MariaDB, PlanetScale, the printing recorder's MySQL mode) rather than SQLite. */
export function isMysql(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof MysqlAdapter;
}

export function columnTypes(db: Kysely<unknown>): ColumnTypes {
  const mysql = isMysql(db);
  return {
    mysql,
    key: (n) => (mysql ? sql.raw(`varchar(${n})`) : 'text'),
    text: mysql ? sql.raw('mediumtext') : 'text',
    // Plain DOUBLE on MySQL: Vitess (PlanetScale) reserves PRECISION without
    // parsing it, so `double precision` fails there; the column is the same.
    double: mysql ? sql.raw('double') : 'double precision',
    int: 'integer',
    bigint: 'bigint',
    tableEnd: mysql ? sql.raw('ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin') : sql.raw(''),
  };
}
