// Opening the database named by `--db`: a SQLite file (the default) or a
// MySQL/MariaDB/PlanetScale URL. Both come back as the same Kysely<Database>.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type SQLite from 'better-sqlite3';
import { CompiledQuery, type DatabaseConnection, Kysely, MysqlDialect, SqliteDialect, type SqliteDatabase, sql } from 'kysely';
import type { Database, SqlDialect } from '../../src/shared/schema';

export interface OpenDatabase {
  db: Kysely<Database>;
  dialect: SqlDialect;
  /** Where the data lives, with any password masked. */
  description: string;
  /** What was opened (`--db`). */
  url: string;
  /** SQLite: the connection Kysely runs on, for the store's synchronous bulk writes (store/upsert.ts). */
  sqlite?: SQLite.Database;
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

export interface DatabaseTuning {
  /** SQLite: page cache in MiB (it counts toward the process's memory). */
  cacheMiB?: number;
  /**
   * MySQL: the sql_mode of every pooled connection, set as it is created.
   * Tests use MySQL 8.0's default on MariaDB, whose own default is laxer
   * (no ONLY_FULL_GROUP_BY), so SQL that production MySQL would refuse fails
   * here too. Unset: the server's default.
   */
  sqlMode?: string;
}

/** MySQL 8.0's (and 8.4's) default sql_mode. */
export const MYSQL8_SQL_MODE =
  'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

/** Drivers load on first use: a SQLite deployment never loads mysql2, and the reverse. */
export async function openDatabase(value: string, tuning: DatabaseTuning = {}): Promise<OpenDatabase> {
  const target = parseDatabaseTarget(value);
  if (target.dialect === 'mysql') {
    const { sqlMode } = tuning;
    if (sqlMode !== undefined && !/^[A-Z_,]*$/.test(sqlMode)) throw new Error(`sql_mode '${sqlMode}' is not a list of mode names`);
    const { createPool } = await import('mysql2');
    const pool = createPool({
      uri: target.location,
      charset: 'utf8mb4',
      connectionLimit: 4,
      supportBigNumbers: true,
      bigNumberStrings: false,
      decimalNumbers: true,
      connectTimeout: 5_000,
      enableKeepAlive: true,
      // Notice a vanished database host in seconds, not after the 2 h kernel default.
      keepAliveInitialDelay: 10_000,
    });
    const setMode = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw(`SET SESSION sql_mode = '${sqlMode}'`));
    };
    const db = new Kysely<Database>({
      dialect: new MysqlDialect({ pool, ...(sqlMode === undefined ? {} : { onCreateConnection: setMode }) }),
    });
    return { db, dialect: 'mysql', description: maskPassword(target.location), url: value, close: () => db.destroy() };
  }

  if (target.location !== ':memory:') mkdirSync(dirname(target.location), { recursive: true });
  let Sqlite: typeof import('better-sqlite3');
  try {
    ({ default: Sqlite } = await import('better-sqlite3'));
  } catch (error) {
    // The collector image leaves SQLite out unless built with SQLITE=1.
    throw new Error(
      `SQLite support (the better-sqlite3 package) is not installed: give --db mysql://..., or install it (collector image: --build-arg SQLITE=1) (${(error as Error).message})`,
    );
  }
  const sqlite = new Sqlite(target.location);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('temp_store = MEMORY');
  sqlite.pragma(`cache_size = -${Math.round((tuning.cacheMiB ?? 32) * 1024)}`);
  sqlite.pragma('foreign_keys = OFF');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  return { db, dialect: 'sqlite', description: target.location, url: value, sqlite, close: () => db.destroy() };
}

/**
 * Kysely prepares every statement it runs; a flush runs the same few bulk
 * statements again and again (store/upsert.ts), and preparing a 500-row
 * upsert costs about as much as running it. Keep the most recent ones.
 */
function withStatementCache(sqlite: SQLite.Database, size = 64): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      let statement = cache.get(text);
      if (statement) {
        cache.delete(text);
      } else {
        statement = sqlite.prepare(text);
        if (cache.size >= size) cache.delete(cache.keys().next().value as string);
      }
      cache.set(text, statement);
      return statement;
    },
  };
}

/** Cheap liveness probe for /healthcheck and for telling an outage from a bad row. */
export async function pingDatabase(db: Kysely<Database>): Promise<void> {
  await sql`select 1`.execute(db);
}

/** SQLite's "another connection holds the write lock" (SQLITE_BUSY and its extended codes). */
export function isBusyError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && /^SQLITE_BUSY/.test(String((error as { code?: unknown }).code));
}

/**
 * Run a write from the collector's own thread, where SQLite must never wait
 * long for the store thread's lock (the broker socket is read there): the
 * connection gives up after a few milliseconds (COLLECTOR_BUSY_TIMEOUT_MS)
 * and the write is tried again after a pause, for up to `withinMs`.
 */
export async function retryWhileBusy<T>(write: () => Promise<T>, withinMs = 10_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (let pause = 10; ; pause = Math.min(pause * 2, 250)) {
    try {
      return await write();
    } catch (error) {
      if (!isBusyError(error) || Date.now() + pause > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause * (0.5 + Math.random())));
    }
  }
}

/** How long the collector thread's own SQLite connection waits for a lock before retryWhileBusy takes over. */
export const COLLECTOR_BUSY_TIMEOUT_MS = 20;
