// Property: every page and API route answers (no 5xx) over ANY rows the
// tables can hold, written straight into them (bypassing decode): rows from
// before decode sanitized, from another writer, or damaged. Times beyond
// Date's range, infinities (SQLite keeps them), negative runtimes and counts,
// lone surrogates in every text and name, 64 Ki texts, nulls wherever
// allowed, JSON columns holding anything. On SQLite and MariaDB.

import fc from 'fast-check';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Database } from '../../src/shared/schema';
import { testApp } from '../support/app';
import { DIALECTS, openTestDatabase, UNIT_TIER } from '../support/databases';
import { NOW } from './arbitraries';
import { type TableRows, tableRows } from './rows';
import { expectEveryRouteAnswers, storedKeys } from './walk';

// About 0.2 s a run on SQLite and 0.5 s on MariaDB (clear, insert, ~60 requests).
// The unit tier (SQLite alone) takes a smaller sample; npm test the whole one.
const RUNS = { sqlite: UNIT_TIER ? 10 : 30, mariadb: 15 } as const;

async function writeRows(db: Kysely<Database>, rows: TableRows): Promise<void> {
  for (const table of Object.keys(rows) as (keyof TableRows)[]) {
    await sql`DELETE FROM ${sql.table(table)}`.execute(db);
    const values = rows[table];
    if (values.length > 0)
      await db
        .insertInto(table)
        .values(values as never)
        .execute();
  }
}

describe.each(DIALECTS)('any stored row on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('renders on every page and API route', async () => {
    await fc.assert(
      fc.asyncProperty(tableRows(dialect), async (rows) => {
        await writeRows(database.db, rows);
        const logs: string[] = [];
        const app = testApp(database, { now: NOW, logs, auth: { metricsOpen: true } });
        await expectEveryRouteAnswers(app, await storedKeys(database.db), logs);
      }),
      { numRuns: RUNS[dialect] },
    );
  }, 120_000);
});
