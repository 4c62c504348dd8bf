// Fresh databases for tests: a SQLite file in a temp dir, and a new database
// on the MariaDB/MySQL server at STALK_TEST_MYSQL_URL (default: local root).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { migrateToLatest } from '../../worker-collector/migrations';
import { MYSQL8_SQL_MODE, type OpenDatabase, openDatabase } from '../../worker-collector/store/db';

export const MYSQL_SERVER_URL = process.env.STALK_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';

/**
 * `npm run test:unit` (vitest's mode `unit`, see vitest.config.ts) sets
 * STALK_TEST_TIER=unit: no service is there, so only SQLite.
 */
export const UNIT_TIER = process.env.STALK_TEST_TIER === 'unit';

/** The databases a test file runs on: both in the full suite, SQLite alone in the unit tier. */
export const DIALECTS: readonly ('sqlite' | 'mariadb')[] = UNIT_TIER ? ['sqlite'] : ['sqlite', 'mariadb'];

export interface TestDatabase {
  name: 'sqlite' | 'mariadb';
  /** What `--db` would be given. */
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(kind: 'sqlite' | 'mariadb'): Promise<TestDatabase> {
  if (UNIT_TIER && kind !== 'sqlite')
    throw new Error(`the unit tier (STALK_TEST_TIER=unit) runs without services, so not on ${kind}: run this file with npm test`);
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'stalk-test-'));
    return { name: kind, url: join(dir, 'stalk.db'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `stalk_test_${randomBytes(4).toString('hex')}`;
  const admin = await createConnection(MYSQL_SERVER_URL);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await admin.end();
  return {
    name: kind,
    url: `${MYSQL_SERVER_URL.replace(/\/$/, '')}/${name}`,
    drop: async () => {
      const conn = await createConnection(MYSQL_SERVER_URL);
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    },
  };
}

/**
 * Open a test database. MariaDB sessions run with MySQL 8.0's default
 * sql_mode (ONLY_FULL_GROUP_BY and the rest), which production MySQL and
 * PlanetScale use and MariaDB's own default lacks.
 */
export function openTestConnection(url: string): Promise<OpenDatabase> {
  return openDatabase(url, { sqlMode: MYSQL8_SQL_MODE });
}

/** A migrated database, opened, plus its cleanup. */
export async function openTestDatabase(kind: 'sqlite' | 'mariadb'): Promise<OpenDatabase & { drop(): Promise<void> }> {
  const target = await createTestDatabase(kind);
  const database = await openTestConnection(target.url);
  await migrateToLatest(database.db);
  return {
    ...database,
    drop: async () => {
      await database.close();
      await target.drop();
    },
  };
}
