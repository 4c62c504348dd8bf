// Where the schema stands, read with plain SELECTs only: no DDL, no lock, no
// write. `--migrate check` (PlanetScale production, where direct DDL is
// refused), `npm run migrate -- --status` and `--print` use it.

import { type Kysely, sql } from 'kysely';
import { MIGRATION_TABLE, MIGRATIONS, type StalkMigration } from './list';
import { isMysql } from './dialect';
import { markerFor, markerPresent, tableExists } from './markers';

export interface MigrationState {
  name: string;
  /** It has a row in stalk_migrations. */
  recorded: boolean;
  /** Its marker is in the database (checked only when it is not recorded). */
  present: boolean;
}

/** Names recorded in stalk_migrations; none when the table does not exist yet. */
export async function recordedMigrations(db: Kysely<any>): Promise<Set<string>> {
  if (!(await tableExists(db, MIGRATION_TABLE))) return new Set();
  const { rows } = await sql<{ name: string }>`select ${sql.ref('name')} from ${sql.table(MIGRATION_TABLE)}`.execute(db);
  return new Set(rows.map((row) => row.name));
}

export async function readMigrationStatus(db: Kysely<any>, migrations: readonly StalkMigration[] = MIGRATIONS): Promise<MigrationState[]> {
  const recorded = await recordedMigrations(db);
  const mysql = isMysql(db);
  const states: MigrationState[] = [];
  for (const { name, marker } of migrations) {
    const isRecorded = recorded.has(name);
    states.push({ name, recorded: isRecorded, present: isRecorded ? false : await markerPresent(db, markerFor(marker, mysql)) });
  }
  return states;
}

/** Migrations neither recorded nor visible by their marker: their DDL still has to run. */
export function pendingMigrations(states: MigrationState[]): string[] {
  return states.filter((s) => !s.recorded && !s.present).map((s) => s.name);
}

export class SchemaBehindError extends Error {
  constructor(readonly pending: string[]) {
    super(
      `database schema is behind: ${pending.length === 1 ? 'migration' : 'migrations'} ${pending.join(', ')} not applied, and --migrate check runs no DDL; ` +
        'print the SQL for a deploy request with `npm run migrate -- --print`, or apply it with `npm run migrate` or by starting once with `--migrate auto`',
    );
    this.name = 'SchemaBehindError';
  }
}

/** `--migrate check`: throws SchemaBehindError naming what is pending. */
export async function checkMigrations(db: Kysely<any>, migrations: readonly StalkMigration[] = MIGRATIONS): Promise<MigrationState[]> {
  const states = await readMigrationStatus(db, migrations);
  const pending = pendingMigrations(states);
  if (pending.length > 0) throw new SchemaBehindError(pending);
  return states;
}
