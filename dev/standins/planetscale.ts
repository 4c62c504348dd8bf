// A local stand-in for PlanetScale's HTTP API, as @planetscale/database 1.20.2
// (and kysely-planetscale on top of it) calls it: POST /psdb.v1alpha1.Database/
// Execute and /CreateSession with Basic auth. SQL goes to a real MySQL/MariaDB
// server through a mysql2 pool. The role of PlanetScale's ps-http-sim, which
// cannot be built here. For development and tests only, never production.

import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPool, type FieldPacket, type PoolConnection, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';

export interface PlanetScaleStandInOptions {
  /** mysql://user:pass@host:port/database: the server and database every query runs against. */
  mysqlUrl: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The credentials clients must present (they are the URL's user and password). */
  username: string;
  password: string;
  /** A session whose transaction is left open this long is rolled back and its connection dropped. Default 5 minutes. */
  sessionIdleTimeoutMs?: number;
  /**
   * Added to each Execute before it is answered (milliseconds, default 0):
   * the round trip to a PlanetScale region, so that queries run one after another
   * show up in a page's wall time (bench/edge-pages.ts). Settable later with
   * `setLatency`.
   */
  latencyMs?: number;
  /** Told of every statement once it is answered, with when it arrived and when it was answered (performance.now()). */
  onStatement?: (statement: ExecutedStatement) => void;
}

/** One Execute as the stand-in saw it. */
export interface ExecutedStatement {
  sql: string;
  /** performance.now() when the request arrived, and when its answer was sent. */
  startedAt: number;
  endedAt: number;
}

/** The running stand-in. */
export interface PlanetScaleStandIn {
  /** The URL clients connect to, credentials included. */
  url: string;
  /** Statements answered so far (a counter, never reset). */
  statements(): number;
  /** Changes the latency added to each Execute from now on. */
  setLatency(ms: number): void;
  close(): Promise<void>;
}

/** The opaque session the client echoes back; ours carries an id and whether a connection is pinned to it. */
interface Session {
  vitessSession?: { sessionUUID?: string; inTransaction?: boolean };
}
interface Pinned {
  conn: PoolConnection;
  lastUsed: number;
}

const BINARY_CHARSET = 63;
const UNSIGNED_FLAG = 32;
const ENUM_FLAG = 256;
const SET_FLAG = 2048;

const INTEGERS: Record<number, string> = { 1: 'INT8', 2: 'INT16', 9: 'INT24', 3: 'INT32', 8: 'INT64' };
const OTHERS: Record<number, string> = {
  0: 'DECIMAL',
  246: 'DECIMAL',
  4: 'FLOAT32',
  5: 'FLOAT64',
  7: 'TIMESTAMP',
  10: 'DATE',
  14: 'DATE',
  11: 'TIME',
  12: 'DATETIME',
  13: 'YEAR',
  16: 'BIT',
  245: 'JSON',
  247: 'ENUM',
  248: 'SET',
  255: 'GEOMETRY',
};

/** MySQL column type, flags and charset -> the Vitess type name PlanetScale reports (and the client casts by). */
function vitessType(field: FieldPacket): string | undefined {
  const code = field.columnType ?? field.type ?? 253;
  const flags = Number(field.flags);
  const binary = field.characterSet === BINARY_CHARSET;
  if (code === 6) return undefined; // NULL_TYPE, left out as protobuf JSON does; the client reads it as 'NULL'
  // MariaDB's JSON is a LONGTEXT; mysql2 sees the "json" format in MariaDB's extended metadata.
  if (field.extendedFormat === 'json') return 'JSON';
  const integer = INTEGERS[code];
  if (integer) return flags & UNSIGNED_FLAG ? `U${integer}` : integer;
  if (OTHERS[code]) return OTHERS[code];
  if (flags & ENUM_FLAG) return 'ENUM';
  if (flags & SET_FLAG) return 'SET';
  if (code >= 249 && code <= 252) return binary ? 'BLOB' : 'TEXT';
  if (code === 254) return binary ? 'BINARY' : 'CHAR';
  return binary ? 'VARBINARY' : 'VARCHAR';
}

const toField = (f: FieldPacket) => ({
  name: f.name,
  type: vitessType(f),
  table: f.table,
  orgTable: f.orgTable,
  database: f.schema,
  orgName: f.orgName,
  columnLength: f.columnLength,
  charset: f.characterSet,
  decimals: f.decimals,
  flags: Number(f.flags),
});

/** A row as PlanetScale sends it: byte lengths (-1 for NULL) and the concatenated raw text-protocol values in base64. */
const toRow = (row: (Buffer | null)[]) => ({
  lengths: row.map((v) => (v === null ? '-1' : String(v.length))),
  values: Buffer.concat(row.filter((v): v is Buffer => v !== null)).toString('base64'),
});

const session = (id: string, inTransaction: boolean): Session => ({ vitessSession: { sessionUUID: id, inTransaction } });

function sqlError(e: unknown, code = 'UNKNOWN') {
  const err = e as { message?: string; sqlMessage?: string; errno?: number; sqlState?: string };
  // Vitess's wording: "<message> (errno 1146) (sqlstate 42S02)".
  const message = err.errno ? `${err.sqlMessage ?? err.message} (errno ${err.errno}) (sqlstate ${err.sqlState})` : String(err.message ?? e);
  return { code, message };
}

export async function startPlanetScaleStandIn(options: PlanetScaleStandInOptions): Promise<PlanetScaleStandIn> {
  const idleMs = options.sessionIdleTimeoutMs ?? 5 * 60_000;
  let latencyMs = Math.max(0, options.latencyMs ?? 0);
  let answered = 0;
  const pool = createPool({
    uri: options.mysqlUrl,
    charset: 'utf8mb4',
    supportBigNumbers: true,
    bigNumberStrings: true,
    connectionLimit: 20,
  });
  // PlanetScale runs in UTC; so does every connection here (NOW(), TIMESTAMP columns).
  pool.on('connection', (conn) => void conn.query("SET time_zone = '+00:00'"));
  // Connections pinned to a session id while it has a transaction open (BEGIN ... COMMIT through one client Connection).
  const sessions = new Map<string, Pinned>();
  const expected = `${options.username}:${options.password}`;

  async function execute(sql: string, given: Session | null) {
    const id = given?.vitessSession?.sessionUUID ?? randomUUID();
    const pinned = sessions.get(id);
    if (!pinned && given?.vitessSession?.inTransaction) {
      return {
        session: session(id, false),
        error: {
          code: 'ABORTED',
          message: `transaction of session ${id} was rolled back (idle over ${idleMs / 1000}s, or the stand-in restarted)`,
        },
      };
    }
    let conn: PoolConnection;
    try {
      conn = pinned?.conn ?? (await pool.getConnection());
    } catch (e) {
      return { session: session(id, false), error: sqlError(e, 'UNAVAILABLE') };
    }
    if (pinned) pinned.lastUsed = Infinity; // in use: never reaped
    const started = performance.now();
    let body: { result?: object; error?: object };
    try {
      const [rows, fields] = await conn.query({ sql, rowsAsArray: true, typeCast: (f) => f.buffer() });
      body = Array.isArray(rows)
        ? { result: { fields: (fields ?? []).map(toField), rows: (rows as unknown as (Buffer | null)[][]).map(toRow) } }
        : {
            result: { rowsAffected: String((rows as ResultSetHeader).affectedRows), insertId: String((rows as ResultSetHeader).insertId) },
          };
    } catch (e) {
      body = { error: sqlError(e) };
    }
    const timing = (performance.now() - started) / 1000;
    let keep: boolean;
    try {
      const [[state]] = await conn.query<RowDataPacket[]>('SELECT @@in_transaction AS t');
      // SET TRANSACTION (no GLOBAL/SESSION) sets up the next transaction on this connection: keep it for the BEGIN that follows.
      keep = Number(state?.t) === 1 || (!body.error && /^\s*SET\s+TRANSACTION\b/i.test(sql));
    } catch {
      sessions.delete(id); // the connection is gone, and its transaction with it
      conn.destroy();
      return { session: session(id, false), ...body, timing };
    }
    if (keep) sessions.set(id, { conn, lastUsed: Date.now() });
    else {
      sessions.delete(id);
      conn.release();
    }
    return { session: session(id, keep), ...body, timing };
  }

  const reaper = setInterval(
    () => {
      for (const [id, s] of sessions) {
        if (Date.now() - s.lastUsed < idleMs) continue;
        sessions.delete(id);
        s.conn.destroy(); // closing the connection makes the server roll back, and drops any session state
      }
    },
    Math.min(30_000, Math.max(idleMs / 2, 10)),
  ).unref();

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => send(res, 500, { code: 'internal', message: String((e as Error)?.message ?? e) }));
  });
  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (!authorized(req.headers.authorization, expected))
      return send(res, 401, { code: 'unauthenticated', message: 'invalid username or password' });
    const method = req.url?.split('?')[0];
    if (req.method !== 'POST' || (method !== '/psdb.v1alpha1.Database/Execute' && method !== '/psdb.v1alpha1.Database/CreateSession')) {
      return send(res, 404, { code: 'not_found', message: `${req.method} ${req.url}: not part of the PlanetScale HTTP API` });
    }
    let body: { query?: unknown; session?: Session | null };
    try {
      body = JSON.parse((await readBody(req)) || '{}');
    } catch {
      return send(res, 400, { code: 'invalid_argument', message: 'request body is not JSON' });
    }
    if (method.endsWith('/CreateSession')) {
      return send(res, 200, { branch: 'standin', user: { username: options.username }, session: session(randomUUID(), false) });
    }
    if (typeof body.query !== 'string') return send(res, 400, { code: 'invalid_argument', message: 'query must be a string' });
    const startedAt = performance.now();
    const answer = await execute(body.query, body.session ?? null);
    if (latencyMs > 0) await sleep(latencyMs);
    send(res, 200, answer);
    answered++;
    options.onStatement?.({ sql: body.query, startedAt, endedAt: performance.now() });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const credentials = `${encodeURIComponent(options.username)}:${encodeURIComponent(options.password)}`;
  return {
    url: `http://${credentials}@${urlHost(options.host)}:${port}`,
    statements: () => answered,
    setLatency(ms: number) {
      latencyMs = Math.max(0, ms);
    },
    async close() {
      clearInterval(reaper);
      for (const s of sessions.values()) s.conn.destroy();
      sessions.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.end();
    },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Basic auth; the client sends the URL's user and password still percent-encoded, so accept both forms. */
function authorized(header: string | undefined, expected: string): boolean {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1], 'base64').toString('utf8');
  let decoded = given;
  try {
    decoded = given.split(':').map(decodeURIComponent).join(':');
  } catch {}
  return safeEqual(given, expected) || safeEqual(decoded, expected);
}

const safeEqual = (a: string, b: string) => timingSafeEqual(sha256(a), sha256(b));
const sha256 = (s: string) => createHash('sha256').update(s).digest();

function urlHost(host = '127.0.0.1'): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
