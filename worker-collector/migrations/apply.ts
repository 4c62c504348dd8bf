// `--migrate auto` and `npm run migrate`: Kysely's Migrator brings the schema
// up to date, with one addition. A pending migration whose marker is already
// in the database (a deploy request applied its DDL, which never carries the
// stalk_migrations row) is recorded instead of run: its `up` is skipped, and
// the Migrator writes the row as for any migration, inside its own lock
// (GET_LOCK on MySQL), so two processes starting at once cannot both act.

import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, MIGRATIONS, type StalkMigration } from './list';
import { isMysql } from './dialect';
import { markerFor, markerPresent } from './markers';

export interface MigrationReport {
  /** Migrations run now. */
  applied: string[];
  /** Migrations found applied outside Stalk (by their marker) and recorded now. */
  recorded: string[];
}

function reconciling(entry: StalkMigration, recorded: Set<string>): Migration {
  return {
    up: async (db) => {
      if (await markerPresent(db, markerFor(entry.marker, isMysql(db)))) {
        recorded.add(entry.name);
        return;
      }
      await entry.migration.up(db);
    },
    ...(entry.migration.down ? { down: entry.migration.down } : {}),
  };
}

export function stalkMigrator(db: Kysely<any>, migrations: readonly StalkMigration[], recorded = new Set<string>()): Migrator {
  const provider: MigrationProvider = {
    getMigrations: async () => Object.fromEntries(migrations.map((entry) => [entry.name, reconciling(entry, recorded)])),
  };
  return new Migrator({ db, provider, migrationTableName: MIGRATION_TABLE, migrationLockTableName: MIGRATION_LOCK_TABLE });
}

/** Bring the schema up to date; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<any>, migrations: readonly StalkMigration[] = MIGRATIONS): Promise<MigrationReport> {
  const recorded = new Set<string>();
  const { error, results } = await stalkMigrator(db, migrations, recorded).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const detail = error instanceof Error ? error.message : String(error ?? '');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${detail}`);
  }
  const done = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  return { applied: done.filter((name) => !recorded.has(name)), recorded: done.filter((name) => recorded.has(name)) };
}
