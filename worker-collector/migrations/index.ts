// The migrations and what runs them: the list (list.ts), applying (apply.ts),
// reading and checking the state without DDL (status.ts), and printing the
// SQL for a deploy request (print.ts).

export { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, MIGRATIONS, type StalkMigration } from './list';
export { migrateToLatest, type MigrationReport } from './apply';
export { checkMigrations, pendingMigrations, readMigrationStatus, SchemaBehindError, type MigrationState } from './status';
