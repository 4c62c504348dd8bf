// `npm run migrate -- --print`: the SQL of the pending migrations, for a
// PlanetScale deploy request or a DBA, without running anything. Each
// migration's `up()` runs against a recording Kysely (recording.ts) for the
// database's dialect; what it would have executed is printed, one statement
// per line, each ending with `;`.
//
// A deploy request carries DDL only. So the bookkeeping rows (the INSERT into
// stalk_migrations) come last, in their own commented section, to be run
// separately if at all: `--migrate check` recognises applied migrations by
// their markers without those rows, and `--migrate auto` records them.

import type { CompiledQuery, Kysely } from 'kysely';
import type { SqlDialect } from '../../src/shared/schema';
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, MIGRATIONS, type StalkMigration } from './list';
import { tableExists } from './markers';
import { createRecorder } from './recording';
import { inlineParameters } from './sql-literal';
import { readMigrationStatus } from './status';

export interface PrintPlan {
  /** Migrations whose DDL is printed, in order. */
  migrations: readonly StalkMigration[];
  /** Bookkeeping tables to create first (those missing). */
  bookkeepingTables: readonly string[];
  /** Migrations to write stalk_migrations rows for. */
  record: readonly string[];
}

/** Everything, as for an empty database (`--print --all`); needs no database. */
export function fullPlan(): PrintPlan {
  return { migrations: MIGRATIONS, bookkeepingTables: [MIGRATION_TABLE, MIGRATION_LOCK_TABLE], record: MIGRATIONS.map((m) => m.name) };
}

/** What the connected database lacks, read with SELECTs only. */
export async function pendingPlan(db: Kysely<any>): Promise<PrintPlan> {
  const states = await readMigrationStatus(db);
  const pending = new Set(states.filter((s) => !s.recorded && !s.present).map((s) => s.name));
  const bookkeepingTables: string[] = [];
  for (const name of [MIGRATION_TABLE, MIGRATION_LOCK_TABLE]) if (!(await tableExists(db, name))) bookkeepingTables.push(name);
  return {
    migrations: MIGRATIONS.filter((m) => pending.has(m.name)),
    bookkeepingTables,
    record: states.filter((s) => !s.recorded).map((s) => s.name),
  };
}

/** Kysely's Migrator creates these tables with exactly these columns (kysely/dist/esm/migration/migrator.js). */
async function createBookkeeping(db: Kysely<any>, name: string): Promise<void> {
  if (name === MIGRATION_TABLE) {
    await db.schema
      .createTable(name)
      .addColumn('name', 'varchar(255)', (c) => c.notNull().primaryKey())
      .addColumn('timestamp', 'varchar(255)', (c) => c.notNull())
      .execute();
  } else {
    await db.schema
      .createTable(name)
      .addColumn('id', 'varchar(255)', (c) => c.notNull().primaryKey())
      .addColumn('is_locked', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
  }
}

function statementText(query: CompiledQuery, dialect: SqlDialect): string {
  return `${inlineParameters(query.sql, query.parameters, dialect).trim().replace(/;+$/, '')};`;
}

/** The printed form of one captured statement; MySQL statements a deploy request cannot carry are flagged. */
function printed(query: CompiledQuery, dialect: SqlDialect, flagData: boolean): string {
  const text = statementText(query, dialect);
  if (dialect !== 'mysql') return text;
  const verb = /^\s*(\w+)/.exec(text)?.[1]?.toLowerCase();
  if (verb === 'set') {
    return [
      '-- Session setting, not schema: a deploy request cannot carry it (and PlanetScale may refuse it).',
      '-- Where the server allows it, run it in the same session just before the next statement.',
      `-- ${text}`,
    ].join('\n');
  }
  if (flagData && (verb === 'insert' || verb === 'update' || verb === 'delete' || verb === 'replace')) {
    return ['-- Data, not schema: a deploy request does not carry it; run it on the production branch after the deploy.', text].join('\n');
  }
  return text;
}

export async function printMigrations(dialect: SqlDialect, plan: PrintPlan, now = new Date()): Promise<string> {
  const product = dialect === 'mysql' ? 'MySQL 8.0 / PlanetScale / MariaDB' : 'SQLite';
  const lines = [
    `-- Stalk schema migrations for ${product}, printed by \`npm run migrate -- --print\`.`,
    '-- Nothing was run against any database.',
  ];
  if (plan.migrations.length === 0 && plan.record.length === 0) {
    lines.push('-- Nothing to apply: every migration is applied and recorded.');
    return `${lines.join('\n')}\n`;
  }
  if (plan.migrations.length === 0)
    lines.push('-- No DDL to apply: every migration is in the schema; only their bookkeeping rows are missing.');
  else {
    lines.push(`-- Pending: ${plan.migrations.map((m) => m.name).join(', ')}.`);
    if (dialect === 'mysql') {
      lines.push('-- PlanetScale: apply the DDL to a development branch, then open a deploy request.');
      lines.push('-- Once deployed, `--migrate check` passes, with or without the bookkeeping rows at the end.');
    }
  }

  const { db, statements } = createRecorder(dialect);
  const section = async (heading: string, run: () => Promise<void>, flagData = true) => {
    const from = statements.length;
    await run();
    lines.push('', heading, ...statements.slice(from).map((q) => printed(q, dialect, flagData)));
  };

  if (plan.bookkeepingTables.length > 0) {
    await section('-- Bookkeeping tables: Stalk records applied migrations in stalk_migrations.', async () => {
      for (const name of plan.bookkeepingTables) await createBookkeeping(db, name);
    });
  }
  for (const entry of plan.migrations) {
    await section(`-- Migration ${entry.name}`, () => entry.migration.up(db));
  }
  if (plan.record.length > 0) {
    const at = now.toISOString();
    const heading =
      dialect === 'mysql'
        ? [
            '-- Bookkeeping rows: data, not DDL, so a deploy request does not carry them. Optional:',
            '-- `--migrate check` finds applied migrations by their schema, and the next',
            '-- `npm run migrate` or `--migrate auto` records them. To record them now, run',
            '-- this separately against the migrated database (the production branch):',
          ]
        : ['-- Bookkeeping rows (optional: the next `npm run migrate` or `--migrate auto` records them):'];
    await section(
      heading.join('\n'),
      async () => {
        await db
          .insertInto(MIGRATION_TABLE)
          .values(plan.record.map((name) => ({ name, timestamp: at })))
          .execute();
      },
      false,
    );
  }
  await db.destroy();
  return `${lines.join('\n')}\n`;
}
