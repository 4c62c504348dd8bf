// Migrations on real SQLite and MariaDB (sessions in MySQL 8.0's sql_mode):
// the printed SQL builds the same schema as applying; `check` refuses a
// database that is behind and accepts one whose DDL a deploy request applied
// without the bookkeeping rows; `auto` records those instead of re-running
// them; `off` runs nothing; and the programs (npm run migrate, npm start,
// npm run collector) behave so as child processes.

import { afterAll, describe, expect, it } from 'vitest';
import { MysqlAdapter, sql } from 'kysely';
import { listTasks } from '../../src/queries/tasks';
import { createLogger } from '../../src/shared/log';
import { parseSearch } from '../../src/shared/search';
import { checkMigrations, MIGRATIONS, migrateToLatest, readMigrationStatus, SchemaBehindError } from '../../worker-collector/migrations';
import { stalkMigrator } from '../../worker-collector/migrations/apply';
import { isMysql } from '../../worker-collector/migrations/dialect';
import { markerFor, markerPresent } from '../../worker-collector/migrations/markers';
import { fullPlan, pendingPlan, printMigrations } from '../../worker-collector/migrations/print';
import { openMigratedDatabase } from '../../worker-collector/setup';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { createTestDatabase, DIALECTS, openTestConnection, type TestDatabase } from '../support/databases';
import { freePort, printLogsOnFailure, spawnManaged, stopAllProcesses } from '../support/processes';
import { schemaOf, tableNames } from '../support/schema';

const quiet = createLogger('test', 'error');
const NAMES = MIGRATIONS.map((m) => m.name);

/** Test databases opened by this file, closed and dropped at the end. */
const opened: { database: OpenDatabase; target: TestDatabase }[] = [];

async function freshDatabase(kind: (typeof DIALECTS)[number]): Promise<OpenDatabase & { target: TestDatabase }> {
  const target = await createTestDatabase(kind);
  const database = await openTestConnection(target.url);
  opened.push({ database, target });
  return { ...database, target };
}

afterAll(async () => {
  await stopAllProcesses();
  for (const { database, target } of opened) {
    await database.close().catch(() => undefined);
    await target.drop();
  }
});

printLogsOnFailure();

/** The statements of a printed script: every line that is not a comment; each must end with `;`. */
function statementsOf(script: string): string[] {
  const lines = script.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('--'));
  for (const line of lines) expect(line.endsWith(';'), line).toBe(true);
  return lines.map((line) => line.slice(0, -1));
}

const isBookkeepingRow = (statement: string) => /^insert into [`"]stalk_migrations[`"]/i.test(statement);

/** Run a printed script statement by statement, as an operator would; without the bookkeeping rows unless asked. */
async function runScript(database: OpenDatabase, script: string, withRows = false): Promise<number> {
  const statements = statementsOf(script).filter((s) => withRows || !isBookkeepingRow(s));
  for (const statement of statements) await sql.raw(statement).execute(database.db);
  return statements.length;
}

async function recordedRows(database: OpenDatabase): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select name from stalk_migrations order by name`.execute(database.db);
  return rows.map((r) => r.name);
}

describe.each(DIALECTS)('migrations on %s', (dialect) => {
  it("--print's SQL, run statement by statement on an empty database, builds the schema auto builds; check then passes without the bookkeeping rows, and auto records them without re-running", async () => {
    const applied = await freshDatabase(dialect);
    const report = await migrateToLatest(applied.db);
    expect(report).toEqual({ applied: NAMES, recorded: [] });
    const expected = await schemaOf(applied);
    expect(expected.tables.length).toBeGreaterThan(10);

    const printedInto = await freshDatabase(dialect);
    const script = await printMigrations(printedInto.dialect, await pendingPlan(printedInto.db));
    // Printing read the database and changed nothing in it.
    expect(await tableNames(printedInto)).toEqual([]);
    for (const name of NAMES) expect(script).toContain(`-- Migration ${name}`);
    expect(statementsOf(script).filter(isBookkeepingRow)).toHaveLength(1);

    await runScript(printedInto, script);
    expect(await schemaOf(printedInto)).toEqual(expected);
    expect(await recordedRows(printedInto)).toEqual([]);

    // A deploy request applied the DDL, not the rows: check sees every marker.
    const states = await checkMigrations(printedInto.db);
    expect(states.map((s) => [s.name, s.recorded, s.present])).toEqual(NAMES.map((n) => [n, false, true]));

    // auto records them (running one again would fail: its tables exist).
    expect(await migrateToLatest(printedInto.db)).toEqual({ applied: [], recorded: NAMES });
    expect(await recordedRows(printedInto)).toEqual(NAMES);
    expect(await schemaOf(printedInto)).toEqual(expected);
    expect(await migrateToLatest(printedInto.db)).toEqual({ applied: [], recorded: [] });
    expect(await printMigrations(printedInto.dialect, await pendingPlan(printedInto.db))).toContain('Nothing to apply');
  });

  it('--print --all needs no database and equals --print on an empty one, bookkeeping rows included', async () => {
    const empty = await freshDatabase(dialect);
    const now = new Date('2026-12-01T00:00:00Z');
    const fromDatabase = await printMigrations(empty.dialect, await pendingPlan(empty.db), now);
    expect(await printMigrations(empty.dialect, fullPlan(), now)).toBe(fromDatabase);

    // With the rows, the printed script leaves nothing for auto to do.
    await runScript(empty, fromDatabase, true);
    expect(await recordedRows(empty)).toEqual(NAMES);
    expect(await migrateToLatest(empty.db)).toEqual({ applied: [], recorded: [] });
  });

  it('--print on a partly migrated database prints only what is pending, without recreating the bookkeeping tables', async () => {
    const partial = await freshDatabase(dialect);
    const { error } = await stalkMigrator(partial.db, MIGRATIONS).migrateTo(NAMES[1]!);
    expect(error).toBeUndefined();
    const script = await printMigrations(partial.dialect, await pendingPlan(partial.db));
    expect(script).toContain(`-- Pending: ${NAMES.slice(2).join(', ')}.`);
    expect(script).not.toContain(`-- Migration ${NAMES[0]}`);
    expect(script).not.toMatch(/create table [`"]stalk_migrations/);
    await runScript(partial, script);
    await checkMigrations(partial.db);
    expect(await migrateToLatest(partial.db)).toEqual({ applied: [], recorded: NAMES.slice(2) });
  });

  it('check refuses a database that is behind, naming the pending migrations and how to apply them, and runs no DDL', async () => {
    const database = await freshDatabase(dialect);
    const refusal = await checkMigrations(database.db).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(SchemaBehindError);
    const message = (refusal as Error).message;
    expect(message).not.toContain('\n');
    for (const name of NAMES) expect(message).toContain(name);
    expect(message).toContain('npm run migrate -- --print');
    expect(message).toContain('--migrate auto');
    expect(await tableNames(database)).toEqual([]);

    const { error } = await stalkMigrator(database.db, MIGRATIONS).migrateTo(NAMES[1]!);
    expect(error).toBeUndefined();
    const tablesBefore = await tableNames(database);
    const later = (await checkMigrations(database.db).catch((e: unknown) => e)) as SchemaBehindError;
    expect(later.pending).toEqual(NAMES.slice(2));
    expect(await tableNames(database)).toEqual(tablesBefore);

    await migrateToLatest(database.db);
    const states = await checkMigrations(database.db);
    expect(states.every((s) => s.recorded)).toBe(true);
  });

  it("each migration's marker appears exactly when that migration is applied", async () => {
    const database = await freshDatabase(dialect);
    const mysql = isMysql(database.db);
    for (let applied = -1; applied < MIGRATIONS.length; applied++) {
      if (applied >= 0) {
        const { error } = await stalkMigrator(database.db, MIGRATIONS).migrateTo(NAMES[applied]!);
        expect(error).toBeUndefined();
      }
      for (const [i, entry] of MIGRATIONS.entries()) {
        expect(await markerPresent(database.db, markerFor(entry.marker, mysql)), `${entry.name} after ${NAMES[applied] ?? 'none'}`).toBe(
          i <= applied,
        );
      }
    }
  });

  it('openMigratedDatabase: check refuses when behind, auto migrates, check then passes; off runs no query', async () => {
    const database = await freshDatabase(dialect);
    await expect(openMigratedDatabase(database.target.url, quiet, 'check')).rejects.toThrow(SchemaBehindError);
    expect(await tableNames(database)).toEqual([]);

    const off = await openMigratedDatabase(database.target.url, quiet, 'off');
    await off.close();
    expect(await tableNames(database)).toEqual([]);

    const auto = await openMigratedDatabase(database.target.url, quiet, 'auto');
    await auto.close();
    const checked = await openMigratedDatabase(database.target.url, quiet, 'check');
    await checked.close();
    expect((await readMigrationStatus(database.db)).every((s) => s.recorded)).toBe(true);
  });

  it('searches find stopwords and any capitalisation on an index built from the printed SQL (no session setting, as a deploy request builds it)', async () => {
    const database = await freshDatabase(dialect);
    await runScript(database, await printMigrations(database.dialect, fullPlan()));
    const base = { state: 'SUCCESS', state_key: '9', timestamp: 1000 };
    await database.db
      .insertInto('tasks')
      .values([
        { ...base, uuid: 'stop-1', name: 'tasks.wait', exception: 'waiting for godot' },
        { ...base, uuid: 'case-1', name: 'tasks.net', exception: 'Connection Refused' },
        { ...base, uuid: 'other-1', name: 'tasks.other', exception: 'nothing here' },
      ])
      .execute();
    const found = async (text: string) =>
      (await listTasks(database.db, database.dialect, { search: parseSearch(text) })).map((t) => t.uuid).sort();
    expect(await found('for')).toEqual(['stop-1']);
    expect(await found('with')).toEqual([]);
    expect(await found('refused')).toEqual(['case-1']);
    expect(await found('REFUSED')).toEqual(['case-1']);
    expect(await found('Refus')).toEqual(['case-1']);
  });
});

describe('migrations on mariadb, beside other processes', () => {
  it('check takes no migration lock: it answers while another session holds it', async () => {
    const database = await freshDatabase('mariadb');
    await migrateToLatest(database.db);
    const holder = await openTestConnection(database.target.url);
    try {
      await holder.db.connection().execute(async (connection) => {
        const adapter = new MysqlAdapter();
        const options = { lockTable: 'stalk_migrations_lock', lockRowId: 'migration_lock' };
        await adapter.acquireMigrationLock(connection, options);
        try {
          // Kysely waits up to an hour for that lock; check must not wait at all.
          const states = await Promise.race([
            checkMigrations(database.db),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error('check waited for the migration lock')), 5_000)),
          ]);
          expect(states).toHaveLength(MIGRATIONS.length);
        } finally {
          await adapter.releaseMigrationLock(connection, options);
        }
      });
    } finally {
      await holder.close();
    }
  });

  it("test sessions run in MySQL 8.0's default sql_mode, on every pooled connection", async () => {
    const database = await freshDatabase('mariadb');
    await migrateToLatest(database.db);
    const modes = await Promise.all(
      Array.from(
        { length: 6 },
        async () => (await sql<{ mode: string }>`select @@session.sql_mode as mode, sleep(0.05) as s`.execute(database.db)).rows[0]!.mode,
      ),
    );
    for (const mode of modes)
      expect(mode.split(',')).toEqual(expect.arrayContaining(['ONLY_FULL_GROUP_BY', 'STRICT_TRANS_TABLES', 'NO_ZERO_DATE']));
    await expect(sql`select hostname, type, sum(count) from event_counters group by hostname`.execute(database.db)).rejects.toThrow(
      /GROUP BY/i,
    );
  });
});

interface Run {
  code: number | null;
  stdout: string;
  output: string;
}

async function run(name: string, script: string, args: string[], timeoutMs = 30_000): Promise<Run> {
  const child = spawnManaged(name, process.execPath, ['--import', 'tsx', script, ...args], {
    env: { ...process.env, STALK_DB: '', STALK_MIGRATE: '' },
  });
  const timer = setTimeout(() => void child.stop(1_000), timeoutMs);
  const exit = await child.exited;
  clearTimeout(timer);
  return { code: exit.code, stdout: child.stdout(), output: child.output() };
}

const migrate = (args: string[]) => run('npm run migrate', 'worker-collector/migrate.ts', args);

describe.each(DIALECTS)('the programs on %s', (dialect) => {
  it('npm run migrate: --status, --print (running nothing), apply, then up to date; usage errors exit 2', async () => {
    const database = await freshDatabase(dialect);
    const db = ['--db', database.target.url];

    const before = await migrate(['--status', ...db]);
    expect(before.code, before.output).toBe(0);
    for (const name of NAMES) expect(before.stdout).toMatch(new RegExp(`^${name}\\s+pending$`, 'm'));

    const printed = await migrate(['--print', ...db]);
    expect(printed.code, printed.output).toBe(0);
    expect(printed.stdout).toContain(`-- Migration ${NAMES[0]}`);
    expect(await tableNames(database)).toEqual([]);

    const applied = await migrate(db);
    expect(applied.code, applied.output).toBe(0);
    expect(applied.stdout.trim().split('\n')).toEqual(NAMES.map((n) => `applied ${n}`));

    const after = await migrate(['--status', ...db]);
    expect(after.code, after.output).toBe(0);
    for (const name of NAMES) expect(after.stdout).toMatch(new RegExp(`^${name}\\s+applied$`, 'm'));
    expect(after.stdout).toContain('schema up to date');

    const again = await migrate(['--print', ...db]);
    expect(again.stdout).toContain('Nothing to apply');

    const usage = await migrate(['--status', '--print', ...db]);
    expect(usage.code).toBe(2);
    expect(usage.output).toContain('--status and --print do not go together');
  }, 120_000);

  it('npm run migrate records what a deploy request applied; npm start and npm run collector with --migrate check refuse a database that is behind with one clear line', async () => {
    const database = await freshDatabase(dialect);
    const url = database.target.url;

    for (const [name, script, extra] of [
      ['npm start', 'src/node.ts', ['--port', '0', '--no-collector']],
      ['npm run collector', 'worker-collector/main.ts', ['--broker', 'redis://127.0.0.1:9/0']],
    ] as const) {
      const refused = await run(name, script, ['--migrate', 'check', '--db', url, ...extra]);
      expect(refused.code, refused.output).toBe(1);
      const line = refused.output.split('\n').find((l) => l.includes('schema is behind'));
      expect(line, refused.output).toMatch(/^stalk(-collector)?: database schema is behind: migrations .+ not applied/);
      for (const n of NAMES) expect(line).toContain(n);
      expect(line).toContain('npm run migrate -- --print');
      expect(await tableNames(database)).toEqual([]);
    }

    // A deploy request applies the printed DDL, without the rows: check passes.
    await runScript(database, await printMigrations(database.dialect, await pendingPlan(database.db)));
    const web = spawnManaged(
      'npm start',
      process.execPath,
      ['--import', 'tsx', 'src/node.ts', '--migrate', 'check', '--db', url, '--port', '0', '--no-collector'],
      {
        env: { ...process.env, STALK_DB: '', STALK_MIGRATE: '' },
      },
    );
    await web.waitForOutput(/Stalk at http:\/\//, 30_000);
    expect(web.output()).not.toMatch(/applied migration|recorded migration/);
    expect(await web.stop()).toEqual({ code: 0, signal: null });

    const recorded = await migrate(['--db', url]);
    expect(recorded.code, recorded.output).toBe(0);
    expect(recorded.stdout.trim().split('\n')).toEqual(NAMES.map((n) => `recorded ${n} (its schema was already applied)`));
    expect(await recordedRows(database)).toEqual(NAMES);
  }, 120_000);
});

describe('npm run migrate without a database', () => {
  it('--print --all prints MySQL DDL from the URL alone, never connecting; a database that does not answer exits 1', async () => {
    const nothing = `mysql://root@127.0.0.1:${await freePort()}/stalk`;
    const all = await migrate(['--print', '--all', '--db', nothing]);
    expect(all.code, all.output).toBe(0);
    expect(all.stdout).toContain('ALTER TABLE `tasks` ADD FULLTEXT INDEX `tasks_search`');
    expect(all.stdout).toContain('-- SET SESSION innodb_ft_enable_stopword = OFF;');
    expect(all.stdout).toMatch(/^insert into `stalk_migrations` \(`name`, `timestamp`\) values \('2026-11-24-001-initial', '/m);

    const status = await migrate(['--status', '--db', nothing]);
    expect(status.code).toBe(1);
    expect(status.output).toMatch(/^stalk-migrate: .*ECONNREFUSED/m);
  }, 60_000);

  it('--migrate off sends no query: it opens a MySQL URL where nothing listens', async () => {
    const nothing = `mysql://root@127.0.0.1:${await freePort()}/stalk`;
    const database = await openMigratedDatabase(nothing, quiet, 'off');
    await database.close();
  });
});
