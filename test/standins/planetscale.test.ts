// The PlanetScale stand-in, driven by the real clients (@planetscale/database,
// kysely-planetscale) and forwarding to the real MariaDB: what the Worker
// build relies on when it runs locally.

import { randomBytes } from 'node:crypto';
import { connect, DatabaseError } from '@planetscale/database';
import { type Generated, Kysely, sql } from 'kysely';
import { PlanetScaleDialect } from 'kysely-planetscale';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlanetScaleStandIn } from '../../dev/standins/planetscale';
import { waitFor } from '../support/processes';

const MYSQL_SERVER_URL = (process.env.STALK_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306').replace(/\/$/, '');
const DATABASE = `stalk_standin_${randomBytes(4).toString('hex')}`;
// Characters that must survive the URL (percent-encoding) and Basic auth.
const USER = 'tester';
const PASSWORD = 'p@ss:w/rd%20?';

async function admin<T>(fn: (conn: Awaited<ReturnType<typeof createConnection>>) => Promise<T>): Promise<T> {
  const conn = await createConnection({ uri: MYSQL_SERVER_URL, charset: 'utf8mb4' });
  try {
    return await fn(conn);
  } finally {
    await conn.end();
  }
}

let standIn: Awaited<ReturnType<typeof startPlanetScaleStandIn>>;

/** information_schema.innodb_trx is a cache InnoDB refreshes at most every 0.1 s: wait that out before reading it. */
const settleInnodbTrx = () => new Promise((resolve) => setTimeout(resolve, 150));

beforeAll(async () => {
  await admin((c) => c.query(`CREATE DATABASE \`${DATABASE}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`));
  standIn = await startPlanetScaleStandIn({ mysqlUrl: `${MYSQL_SERVER_URL}/${DATABASE}`, username: USER, password: PASSWORD });
  const conn = connect({ url: standIn.url });
  await conn.execute(`CREATE TABLE kinds (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    big BIGINT, small INT, tiny TINYINT UNSIGNED, dbl DOUBLE, flt FLOAT, dec_ DECIMAL(14,4),
    at DATETIME(3), day DATE, dur TIME, yr YEAR, label VARCHAR(100), body TEXT, code CHAR(3),
    bytes VARBINARY(16), blob_ BLOB, choice ENUM('red','green'), flags SET('a','b'), doc JSON, nothing INT
  )`);
  await conn.execute(
    'CREATE TABLE accounts (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL, balance INT NOT NULL, opened DATETIME(3) NULL)',
  );
});

afterAll(async () => {
  await standIn?.close();
  await admin((c) => c.query(`DROP DATABASE IF EXISTS \`${DATABASE}\``));
});

describe('PlanetScale stand-in with @planetscale/database', () => {
  it('answers select 1', async () => {
    const result = await connect({ url: standIn.url }).execute('select 1');
    expect(result.rows).toEqual([{ 1: 1 }]);
    expect(result.types).toEqual({ 1: 'INT32' });
    expect(result.headers).toEqual(['1']);
  });

  it('round-trips column types the way PlanetScale types them', async () => {
    const conn = connect({ url: standIn.url });
    const text = `héllo 'quoted' "double" \\back 😀 — ünïcode`;
    const inserted = await conn.execute(
      `INSERT INTO kinds (big, small, tiny, dbl, flt, dec_, at, day, dur, yr, label, body, code, bytes, blob_, choice, flags, doc, nothing)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        '9007199254740993',
        -42,
        250,
        1.5,
        0.25,
        '12345678.9012',
        '2024-05-06 07:08:09.123',
        '2024-05-06',
        '12:34:56',
        2024,
        text,
        'long text 😀',
        'abc',
        new Uint8Array([0, 255, 16]),
        new Uint8Array([1, 2]),
        'green',
        'a,b',
        JSON.stringify({ a: [1, 'x'] }),
        null,
      ],
    );
    expect(inserted.rowsAffected).toBe(1);
    expect(Number(inserted.insertId)).toBeGreaterThan(0);

    const result = await conn.execute('SELECT * FROM kinds WHERE id = ?', [inserted.insertId]);
    expect(result.types).toEqual({
      id: 'UINT64',
      big: 'INT64',
      small: 'INT32',
      tiny: 'UINT8',
      dbl: 'FLOAT64',
      flt: 'FLOAT32',
      dec_: 'DECIMAL',
      at: 'DATETIME',
      day: 'DATE',
      dur: 'TIME',
      yr: 'YEAR',
      label: 'VARCHAR',
      body: 'TEXT',
      code: 'CHAR',
      bytes: 'VARBINARY',
      blob_: 'BLOB',
      choice: 'ENUM',
      flags: 'SET',
      doc: 'JSON',
      nothing: 'INT32',
    });
    const row = result.rows[0] as Record<string, unknown>;
    expect(row).toMatchObject({
      id: inserted.insertId,
      big: '9007199254740993', // INT64 stays a string, beyond 2^53 intact
      small: -42,
      tiny: 250,
      dbl: 1.5,
      flt: 0.25,
      dec_: '12345678.9012',
      at: '2024-05-06 07:08:09.123',
      day: '2024-05-06',
      dur: '12:34:56',
      yr: 2024,
      label: text,
      body: 'long text 😀',
      code: 'abc',
      choice: 'green',
      flags: 'a,b',
      doc: { a: [1, 'x'] },
      nothing: null,
    });
    expect(row.bytes).toBeInstanceOf(Uint8Array);
    expect([...(row.bytes as Uint8Array)]).toEqual([0, 255, 16]);
    expect([...(row.blob_ as Uint8Array)]).toEqual([1, 2]);
  });

  it('passes positional and named parameters with quotes intact', async () => {
    const conn = connect({ url: standIn.url });
    const tricky = `O'Brien said "hi" \\ ; -- not a comment ' OR '1'='1`;
    const positional = await conn.execute('SELECT ? AS a, ? AS b, ? AS c', [tricky, 7, null]);
    expect(positional.rows).toEqual([{ a: tricky, b: 7, c: null }]);
    const named = await conn.execute('SELECT :first AS a, :second AS b', { first: tricky, second: 'plain' });
    expect(named.rows).toEqual([{ a: tricky, b: 'plain' }]);
    // As array rows, too.
    const arrays = await conn.execute('SELECT ? AS a', ['x'], { as: 'array' });
    expect(arrays.rows).toEqual([['x']]);
  });

  it('turns SQL errors into DatabaseError with the MySQL errno', async () => {
    const error = await connect({ url: standIn.url })
      .execute('SELECT * FROM no_such_table')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    const dbError = error as DatabaseError;
    expect(dbError.message).toMatch(/no_such_table' doesn't exist \(errno 1146\) \(sqlstate 42S02\)/);
    expect(dbError.status).toBe(400);
    expect(dbError.body).toMatchObject({ code: 'UNKNOWN' });
    // The stand-in keeps working after an error.
    expect((await connect({ url: standIn.url }).execute('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
  });

  it('rejects a wrong password or no credentials with 401', async () => {
    const url = new URL(standIn.url);
    url.password = 'wrong';
    const error = await connect({ url: url.toString() })
      .execute('SELECT 1')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as DatabaseError).status).toBe(401);

    const bare = new URL(standIn.url);
    const response = await fetch(`http://${bare.host}/psdb.v1alpha1.Database/Execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'SELECT 1', session: null }),
    });
    expect(response.status).toBe(401);
    await response.body?.cancel();
  });

  it('creates sessions (Connection.refresh)', async () => {
    const conn = connect({ url: standIn.url });
    await conn.refresh();
    expect((await conn.execute('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
  });

  it('commits a client transaction, invisible to others until then', async () => {
    const conn = connect({ url: standIn.url });
    const other = connect({ url: standIn.url });
    let seenInside: unknown;
    let seenOutside: unknown;
    await conn.transaction(async (tx) => {
      await tx.execute('INSERT INTO accounts (name, balance) VALUES (?, ?)', ['commit-me', 10]);
      await tx.execute('UPDATE accounts SET balance = balance + 5 WHERE name = ?', ['commit-me']);
      seenInside = (await tx.execute('SELECT balance FROM accounts WHERE name = ?', ['commit-me'])).rows;
      seenOutside = (await other.execute('SELECT balance FROM accounts WHERE name = ?', ['commit-me'])).rows;
    });
    expect(seenInside).toEqual([{ balance: 15 }]);
    expect(seenOutside).toEqual([]);
    expect((await other.execute('SELECT balance FROM accounts WHERE name = ?', ['commit-me'])).rows).toEqual([{ balance: 15 }]);
  });

  it('rolls back a client transaction that throws, and BEGIN/ROLLBACK on one Connection', async () => {
    const conn = connect({ url: standIn.url });
    await expect(
      conn.transaction(async (tx) => {
        await tx.execute('INSERT INTO accounts (name, balance) VALUES (?, ?)', ['roll-me-back', 1]);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect((await conn.execute('SELECT * FROM accounts WHERE name = ?', ['roll-me-back'])).rows).toEqual([]);

    await conn.execute('BEGIN');
    await conn.execute('INSERT INTO accounts (name, balance) VALUES (?, ?)', ['manual', 1]);
    expect((await conn.execute('SELECT COUNT(*) AS n FROM accounts WHERE name = ?', ['manual'])).rows).toEqual([{ n: '1' }]);
    await conn.execute('ROLLBACK');
    expect((await conn.execute('SELECT COUNT(*) AS n FROM accounts WHERE name = ?', ['manual'])).rows).toEqual([{ n: '0' }]);
  });

  it('keeps SET TRANSACTION and the BEGIN after it on one connection, without leaking it to others', async () => {
    // A stand-in of its own, so its pool starts empty and connection reuse is predictable.
    const fresh = await startPlanetScaleStandIn({ mysqlUrl: `${MYSQL_SERVER_URL}/${DATABASE}`, username: USER, password: PASSWORD });
    const level = async (conn: ReturnType<typeof connect>, name: string) => {
      await conn.execute('INSERT INTO accounts (name, balance) VALUES (?, 0)', [name]); // starts the InnoDB transaction
      await settleInnodbTrx();
      const { rows } = await conn.execute(
        'SELECT trx_isolation_level AS level FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()',
      );
      return rows;
    };
    try {
      const serializable = connect({ url: fresh.url });
      const other = connect({ url: fresh.url });
      await serializable.execute('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE');
      await other.execute('BEGIN'); // would take the same connection if the stand-in had released it
      await serializable.execute('BEGIN');
      expect(await level(serializable, 'iso-serializable')).toEqual([{ level: 'SERIALIZABLE' }]);
      expect(await level(other, 'iso-other')).toEqual([{ level: 'REPEATABLE READ' }]);
      await serializable.execute('ROLLBACK');
      await other.execute('ROLLBACK');
    } finally {
      await fresh.close();
    }
  });

  it('rolls back a transaction abandoned for longer than the idle timeout', async () => {
    const quick = await startPlanetScaleStandIn({
      mysqlUrl: `${MYSQL_SERVER_URL}/${DATABASE}`,
      username: USER,
      password: PASSWORD,
      sessionIdleTimeoutMs: 200,
    });
    try {
      const conn = connect({ url: quick.url });
      await conn.execute('BEGIN');
      await conn.execute('INSERT INTO accounts (name, balance) VALUES (?, ?)', ['abandoned', 1]);
      // The uncommitted row, as another session reading uncommitted data sees it, until the rollback.
      const uncommitted = () =>
        admin(async (c) => {
          await c.query('SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
          const [rows] = await c.query(`SELECT COUNT(*) AS n FROM \`${DATABASE}\`.accounts WHERE name = 'abandoned'`);
          return Number((rows as { n: number }[])[0]?.n);
        });
      await waitFor(async () => (await uncommitted()) === 0, 10_000, 'the abandoned transaction rolled back');
      const error = await conn.execute('COMMIT').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as DatabaseError).message).toMatch(/rolled back/);
      const rows = await admin(async (c) => (await c.query(`SELECT * FROM \`${DATABASE}\`.accounts WHERE name = 'abandoned'`))[0]);
      expect(rows).toEqual([]);
      // The session starts afresh afterwards.
      expect((await conn.execute('SELECT 4 AS four')).rows).toEqual([{ four: 4 }]);
    } finally {
      await quick.close();
    }
  });
});

interface Tables {
  accounts: { id: Generated<number>; name: string; balance: number; opened: Date | null };
}

describe('PlanetScale stand-in with kysely-planetscale', () => {
  let db: Kysely<Tables>;
  beforeAll(() => {
    db = new Kysely<Tables>({ dialect: new PlanetScaleDialect({ url: standIn.url }) });
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('inserts, selects and updates', async () => {
    const opened = new Date('2024-01-02T03:04:05.678Z');
    const inserted = await db.insertInto('accounts').values({ name: 'kysely', balance: 3, opened }).executeTakeFirstOrThrow();
    expect(typeof inserted.insertId).toBe('bigint');
    expect(inserted.insertId! > 0n).toBe(true);

    const row = await db.selectFrom('accounts').selectAll().where('id', '=', Number(inserted.insertId)).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ name: 'kysely', balance: 3 });
    expect(row.opened).toBeInstanceOf(Date);
    expect(row.opened?.toISOString()).toBe(opened.toISOString());

    const updated = await db.updateTable('accounts').set({ balance: 4 }).where('name', '=', 'kysely').executeTakeFirstOrThrow();
    expect(updated.numUpdatedRows).toBe(1n);
    const { balance } = await db.selectFrom('accounts').select('balance').where('name', '=', 'kysely').executeTakeFirstOrThrow();
    expect(balance).toBe(4);
  });

  it('commits and rolls back transactions', async () => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('accounts').values({ name: 'kysely-tx', balance: 1 }).execute();
      await trx.updateTable('accounts').set({ balance: 2 }).where('name', '=', 'kysely-tx').execute();
    });
    expect(await db.selectFrom('accounts').select('balance').where('name', '=', 'kysely-tx').execute()).toEqual([{ balance: 2 }]);

    await expect(
      db
        .transaction()
        .setIsolationLevel('serializable')
        .execute(async (trx) => {
          await trx.insertInto('accounts').values({ name: 'kysely-undone', balance: 1 }).execute();
          // SET TRANSACTION and BEGIN arrive as two requests: both must reach the same connection.
          await settleInnodbTrx();
          const { rows } = await sql<{
            level: string;
          }>`SELECT trx_isolation_level AS level FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()`.execute(
            trx,
          );
          expect(rows).toEqual([{ level: 'SERIALIZABLE' }]);
          throw new Error('undo');
        }),
    ).rejects.toThrow('undo');
    expect(await db.selectFrom('accounts').select('id').where('name', '=', 'kysely-undone').execute()).toEqual([]);

    const { n } = await db
      .selectFrom('accounts')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(n)).toBeGreaterThanOrEqual(2);
  });
});
