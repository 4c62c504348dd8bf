// Migrations run by the collector (and the local all-in-one mode) at start.
// They are listed here rather than read from disk so that a bundled build
// carries them. Add a file, then add it below; names sort in apply order.

import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';
import type { Database } from '../../src/shared/schema';
import * as initial from './2026-11-24-001-initial';
import * as queues from './2026-11-24-002-queues';
import * as search from './2026-11-24-003-search';
import * as control from './2026-11-24-004-control';

const MIGRATIONS: Record<string, Migration> = {
  '2026-11-24-001-initial': initial,
  '2026-11-24-002-queues': queues,
  '2026-11-24-003-search': search,
  '2026-11-24-004-control': control,
};

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

export interface MigrationReport {
  applied: string[];
}

/** Bring the schema up to date; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationReport> {
  const migrator = new Migrator({ db, provider, migrationTableName: 'stalk_migrations', migrationLockTableName: 'stalk_migrations_lock' });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const detail = error instanceof Error ? error.message : String(error ?? '');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${detail}`);
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
