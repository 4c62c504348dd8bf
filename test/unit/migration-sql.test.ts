// Printing migrations without a database: parameters become literals safely,
// statements a deploy request cannot carry are flagged, and the list of
// migrations stays in apply order.

import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { assertMigrationOrder, MIGRATIONS, type StalkMigration } from '../../worker-collector/migrations/list';
import { table } from '../../worker-collector/migrations/markers';
import { printMigrations } from '../../worker-collector/migrations/print';
import { inlineParameters, sqlLiteral } from '../../worker-collector/migrations/sql-literal';

describe('inlineParameters', () => {
  it('replaces placeholders in order, leaving question marks in strings, identifiers and comments alone', () => {
    expect(inlineParameters('select \'?\', `a?`, "b?", ? -- ?\n, ? /* ? */', ['x', 2], 'mysql')).toBe(
      "select '?', `a?`, \"b?\", 'x' -- ?\n, 2 /* ? */",
    );
    expect(inlineParameters("select 'it''s ?', ?", [null], 'sqlite')).toBe("select 'it''s ?', NULL");
    expect(inlineParameters("select 'a\\'?', ?", [true], 'mysql')).toBe("select 'a\\'?', 1");
  });

  it('doubles quotes, and refuses what it cannot write safely', () => {
    expect(sqlLiteral("'; drop table tasks; --", 'mysql')).toBe("'''; drop table tasks; --'");
    expect(sqlLiteral(12n, 'sqlite')).toBe('12');
    expect(() => sqlLiteral('a\\', 'mysql')).toThrow(/backslash/);
    expect(sqlLiteral('a\\', 'sqlite')).toBe("'a\\'");
    expect(() => sqlLiteral('a\0', 'sqlite')).toThrow(/NUL/);
    expect(() => sqlLiteral(Number.NaN, 'mysql')).toThrow();
    expect(() => sqlLiteral({}, 'mysql')).toThrow();
    expect(() => inlineParameters('select ?, ?', [1], 'mysql')).toThrow(/placeholders/);
    expect(() => inlineParameters('select ?', [1, 2], 'mysql')).toThrow(/parameters/);
    expect(() => inlineParameters("select '?", [], 'mysql')).toThrow(/unterminated/);
  });
});

describe('printMigrations', () => {
  const entry = (up: StalkMigration['migration']['up']): StalkMigration => ({
    name: '2099-01-01-001-test',
    migration: { up },
    marker: table('t'),
  });
  const plan = (e: StalkMigration) => ({ migrations: [e], bookkeepingTables: [], record: [] });

  it('flags MySQL data statements (a deploy request carries DDL only) and comments out session settings, with parameters inlined', async () => {
    const text = await printMigrations(
      'mysql',
      plan(
        entry(async (db) => {
          await sql`SET SESSION innodb_ft_enable_stopword = OFF`.execute(db);
          await db.schema.createTable('t').addColumn('a', 'varchar(20)').addColumn('b', 'integer').execute();
          await db.insertInto('t').values({ a: "it's", b: 2 }).execute();
        }),
      ),
    );
    const lines = text.split('\n');
    expect(lines).toContain('-- SET SESSION innodb_ft_enable_stopword = OFF;');
    expect(lines).not.toContain('SET SESSION innodb_ft_enable_stopword = OFF;');
    expect(lines).toContain('create table `t` (`a` varchar(20), `b` integer);');
    const insert = lines.indexOf("insert into `t` (`a`, `b`) values ('it''s', 2);");
    expect(insert).toBeGreaterThan(0);
    expect(lines[insert - 1]).toMatch(/^-- Data, not schema/);
  });

  it('refuses to print a migration that needs a transaction', async () => {
    await expect(printMigrations('sqlite', plan(entry((db) => db.transaction().execute(async () => undefined))))).rejects.toThrow(
      /transaction/,
    );
  });
});

describe('the migration list', () => {
  it('is in apply order, and an out-of-order or repeated name is refused', () => {
    expect(() => assertMigrationOrder(MIGRATIONS)).not.toThrow();
    const [first, second] = MIGRATIONS;
    expect(() => assertMigrationOrder([second!, first!])).toThrow(/out of order/);
    expect(() => assertMigrationOrder([first!, first!])).toThrow(/repeated/);
  });
});
