// A Kysely instance that runs nothing: every statement is compiled for the
// chosen dialect (the real adapter and query compiler, so migrations that ask
// `adapter instanceof MysqlAdapter` take their MySQL branch) and recorded, and
// every query answers with no rows. `npm run migrate -- --print` runs the
// migrations' `up()` against it to capture their SQL without a database.

import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  MysqlAdapter,
  MysqlIntrospector,
  MysqlQueryCompiler,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import type { SqlDialect } from '../../src/shared/schema';

class RecordingConnection implements DatabaseConnection {
  constructor(private readonly statements: CompiledQuery[]) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    this.statements.push(query);
    return { rows: [] };
  }

  streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('a migration being printed cannot stream a query');
  }
}

class RecordingDriver implements Driver {
  private readonly connection: RecordingConnection;

  constructor(statements: CompiledQuery[]) {
    this.connection = new RecordingConnection(statements);
  }

  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return this.connection;
  }
  // A printed script has no transaction to offer (MySQL DDL commits implicitly
  // anyway): a migration that needs one cannot be printed faithfully.
  async beginTransaction(): Promise<void> {
    throw new Error('a migration being printed cannot open a transaction');
  }
  async commitTransaction(): Promise<void> {}
  async rollbackTransaction(): Promise<void> {}
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

export interface Recorder {
  db: Kysely<any>;
  /** Everything run through `db` so far, in order. */
  statements: CompiledQuery[];
}

export function createRecorder(dialect: SqlDialect): Recorder {
  const statements: CompiledQuery[] = [];
  const mysql = dialect === 'mysql';
  const recording: Dialect = {
    createAdapter: () => (mysql ? new MysqlAdapter() : new SqliteAdapter()),
    createDriver: () => new RecordingDriver(statements),
    createQueryCompiler: () => (mysql ? new MysqlQueryCompiler() : new SqliteQueryCompiler()),
    createIntrospector: (db) => (mysql ? new MysqlIntrospector(db) : new SqliteIntrospector(db)),
  };
  return { db: new Kysely<any>({ dialect: recording }), statements };
}
