// Opening the database named by `--db`: a SQLite file (the default) or a
// MySQL/MariaDB/PlanetScale URL. Both come back as the same Kysely<Database>.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, MysqlDialect, SqliteDialect, sql } from 'kysely';
import { createPool } from 'mysql2';
import type { Database } from '../../src/shared/schema';

export type SqlDialect = 'sqlite' | 'mysql';

export interface OpenDatabase {
  db: Kysely<Database>;
  dialect: SqlDialect;
  /** Where the data lives, with any password masked. */
  description: string;
  close(): Promise<void>;
}

export interface DatabaseTarget {
  dialect: SqlDialect;
  /** File path (or ':memory:') for SQLite, URL for MySQL. */
  location: string;
}

/** `./data/stalk.db`, `sqlite:path`, `sqlite:///abs/path`, `:memory:` or `mysql://user:pass@host:3306/db`. */
export function parseDatabaseTarget(value: string): DatabaseTarget {
  if (/^mysql2?:\/\//i.test(value)) return { dialect: 'mysql', location: value.replace(/^mysql2:/i, 'mysql:') };
  if (/^sqlite:\/\//i.test(value)) return { dialect: 'sqlite', location: value.slice('sqlite://'.length) };
  if (/^sqlite:/i.test(value)) return { dialect: 'sqlite', location: value.slice('sqlite:'.length) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new Error(`--db: unsupported database URL scheme in '${maskPassword(value)}' (use a SQLite path or mysql://)`);
  }
  return { dialect: 'sqlite', location: value };
}

export function maskPassword(url: string): string {
  return url.replace(/\/\/([^:/@]*):([^@/]*)@/, '//$1:****@');
}

export interface SqliteTuning {
  /** Page cache in MiB (it counts toward the process's memory). */
  cacheMiB?: number;
}

export function openDatabase(value: string, tuning: SqliteTuning = {}): OpenDatabase {
  const target = parseDatabaseTarget(value);
  if (target.dialect === 'mysql') {
    const pool = createPool({
      uri: target.location,
      charset: 'utf8mb4',
      connectionLimit: 4,
      supportBigNumbers: true,
      bigNumberStrings: false,
      decimalNumbers: true,
      connectTimeout: 5_000,
      enableKeepAlive: true,
    });
    const db = new Kysely<Database>({ dialect: new MysqlDialect({ pool }) });
    return { db, dialect: 'mysql', description: maskPassword(target.location), close: () => db.destroy() };
  }

  if (target.location !== ':memory:') mkdirSync(dirname(target.location), { recursive: true });
  const sqlite = new SQLite(target.location);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('temp_store = MEMORY');
  sqlite.pragma(`cache_size = -${Math.round((tuning.cacheMiB ?? 32) * 1024)}`);
  sqlite.pragma('foreign_keys = OFF');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, dialect: 'sqlite', description: target.location, close: () => db.destroy() };
}

/** Cheap liveness probe for /healthcheck and for telling an outage from a bad row. */
export async function pingDatabase(db: Kysely<Database>): Promise<void> {
  await sql`select 1`.execute(db);
}
