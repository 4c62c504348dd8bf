// A local stand-in for Upstash's Redis REST API, as @upstash/redis 1.39.0
// calls it: POST / with a JSON command array, POST /pipeline and /multi-exec
// with arrays of them, and path-style GET|POST /cmd/arg/... (Bearer token or
// ?_token=). Commands go to a real Redis through ioredis. The role of Upstash's
// serverless-redis-http, which cannot be built here. For development and tests
// only, never production.
//
// Blocking commands (BLPOP, BRPOP, ...) are held as Upstash holds them: the
// HTTP request stays open until the reply. Each runs on a connection of its
// own, opened for it and closed after, so it never holds up the shared one;
// a client that goes away mid-wait takes its connection (and Redis's blocked
// client) with it, so a pop nobody waits for any more cannot swallow an element.

import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';

export interface UpstashStandInOptions {
  /** redis://[:password@]host[:port][/db] */
  redisUrl: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The token clients must present (UPSTASH_REDIS_REST_TOKEN). */
  token: string;
  /** Told the (lower-case) names of the commands in each authorised request, before they run: for counting what clients cost. */
  onCommands?: (names: string[]) => void;
  /** The client name (CLIENT SETNAME) of the connections blocking commands run on, so that Redis's CLIENT LIST tells them apart. */
  blockingConnectionName?: string;
}

type Arg = string | Buffer;
type Reply = Buffer | string | number | null | Error | Reply[];
type Outcome = { result: unknown } | { error: string };

/** Commands that block until data arrives or their timeout passes: run one by one on a connection of their own. */
const BLOCKING = new Set(['blpop', 'brpop', 'brpoplpush', 'blmove', 'blmpop', 'bzpopmin', 'bzpopmax', 'bzmpop']);

/**
 * Commands that would change the state of the one shared connection, or
 * stream. Upstash's REST API has no such commands either (it streams
 * subscribe over SSE, which this stand-in does not do).
 */
const REFUSED = new Set([
  'wait',
  'waitaof',
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'unsubscribe',
  'punsubscribe',
  'sunsubscribe',
  'monitor',
  'multi',
  'exec',
  'discard',
  'watch',
  'unwatch',
  'select',
  'auth',
  'hello',
  'quit',
  'reset',
]);

/** Blocking connections open at once, at most; past that a blocking request is refused (503) rather than exhaust Redis. */
const MAX_BLOCKING = 64;

function isBlocking(command: Arg[]): boolean {
  const name = String(command[0]).toLowerCase();
  return BLOCKING.has(name) || ((name === 'xread' || name === 'xreadgroup') && command.some((a) => String(a).toLowerCase() === 'block'));
}

/** Why a command cannot run here; `alone` is false inside /pipeline and /multi-exec, where a blocking command would hold up the rest. */
function refusal(command: Arg[], alone: boolean): string | undefined {
  const name = String(command[0]).toLowerCase();
  if (REFUSED.has(name)) {
    return `ERR '${name}' is not supported by the Upstash stand-in (pub/sub and connection-state commands would tie up its shared Redis connection)`;
  }
  if (!alone && isBlocking(command))
    return `ERR blocking command '${name}' is not supported in a pipeline or transaction by the Upstash stand-in; send it alone`;
}

/** A JSON command array -> Redis arguments. The client sends numbers and booleans as JSON values; Redis wants strings. */
function toCommand(value: unknown): Arg[] {
  if (!Array.isArray(value) || value.length === 0) throw new Error('ERR a command must be a non-empty JSON array');
  return value.map((v) => {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new Error(`ERR command arguments must be strings, numbers or booleans, got ${JSON.stringify(v)}`);
  });
}

/** A RESP reply as JSON: bulk strings base64-encoded under `Upstash-Encoding: base64` ("OK" stays as it is, as Upstash does), arrays stay flat arrays. */
function encode(reply: Reply, base64: boolean): unknown {
  if (reply === null || typeof reply === 'number') return reply;
  if (Array.isArray(reply)) return reply.map((r) => encode(r, base64));
  const bytes = reply instanceof Error ? Buffer.from(reply.message) : Buffer.from(reply);
  if (!base64) return bytes.toString('utf8');
  return bytes.length === 2 && bytes.toString() === 'OK' ? 'OK' : bytes.toString('base64');
}

export async function startUpstashStandIn(options: UpstashStandInOptions): Promise<{ url: string; token: string; close(): Promise<void> }> {
  // RESP2 replies are what Upstash's REST API returns (maps as flat arrays, doubles as strings).
  const redis = new Redis(options.redisUrl, { protocol: 2, lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  // Upper-case names bypass ioredis's per-command argument and reply transformers (keyed by
  // lower-case name; hgetall would become an object), so replies keep their raw shape.
  // callBuffer keeps values binary-safe.
  const call = (command: Arg[]) => redis.callBuffer(String(command[0]).toUpperCase(), command.slice(1)) as Promise<Reply>;

  const observe = (commands: Arg[][]) => options.onCommands?.(commands.map((command) => String(command[0]).toLowerCase()));
  let blocking = 0;
  const dedicated = new Set<Redis>();

  /** A blocking command on a fresh connection, dropped as soon as the reply is in or the client leaves. */
  async function callBlocking(command: Arg[], clientGone: AbortSignal): Promise<Reply> {
    if (blocking >= MAX_BLOCKING)
      throw Object.assign(new Error(`ERR the Upstash stand-in holds ${MAX_BLOCKING} blocking requests already`), { name: 'Busy' });
    blocking += 1;
    const connection = new Redis(options.redisUrl, {
      protocol: 2,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      ...(options.blockingConnectionName ? { connectionName: options.blockingConnectionName } : {}),
    });
    connection.on('error', () => undefined);
    dedicated.add(connection);
    const drop = () => connection.disconnect();
    clientGone.addEventListener('abort', drop, { once: true });
    try {
      await connection.connect();
      if (clientGone.aborted) throw new Error('ERR the client went away');
      return (await connection.callBuffer(String(command[0]).toUpperCase(), command.slice(1))) as Reply;
    } finally {
      clientGone.removeEventListener('abort', drop);
      dedicated.delete(connection);
      blocking -= 1;
      connection.disconnect();
    }
  }

  async function single(command: Arg[], clientGone: AbortSignal): Promise<[number, Outcome]> {
    const refused = refusal(command, true);
    if (refused) return [400, { error: refused }];
    try {
      return [200, { result: await (isBlocking(command) ? callBlocking(command, clientGone) : call(command)) }];
    } catch (e) {
      if ((e as Error).name === 'Busy') return [503, { error: (e as Error).message }];
      // Redis refused the command (400, as Upstash answers); anything else is the stand-in's problem (500).
      return [(e as Error).name === 'ReplyError' ? 400 : 500, { error: (e as Error).message }];
    }
  }

  /** Non-atomic: each command answers for itself. */
  async function pipeline(commands: Arg[][]): Promise<Outcome[]> {
    const batch = redis.pipeline();
    for (const command of commands) if (!refusal(command, false)) batch.callBuffer(String(command[0]).toUpperCase(), command.slice(1));
    const replies = batch.length > 0 ? ((await batch.exec()) ?? []) : [];
    let next = 0;
    return commands.map((command): Outcome => {
      const refused = refusal(command, false);
      if (refused) return { error: refused };
      const [error, result] = replies[next++] ?? [new Error('ERR no reply')];
      return error ? { error: error.message } : { result };
    });
  }

  /** MULTI ... EXEC in one write on the shared connection, so nothing interleaves. A command Redis refuses to queue aborts all of them (400). */
  async function multiExec(commands: Arg[][]): Promise<[number, Outcome[] | Outcome]> {
    const refused = commands.map((command) => refusal(command, false)).find(Boolean);
    if (refused) return [400, { error: refused }];
    const batch = redis.pipeline().callBuffer('MULTI');
    for (const command of commands) batch.callBuffer(String(command[0]).toUpperCase(), command.slice(1));
    const replies = (await batch.callBuffer('EXEC').exec()) ?? [];
    const queueError = replies.slice(1, -1).find(([error]) => error)?.[0];
    const [execError, results] = replies[replies.length - 1] ?? [new Error('ERR no reply to EXEC')];
    if (queueError || execError) return [400, { error: (queueError ?? execError)!.message }];
    return [200, (results as Reply[]).map((r): Outcome => (r instanceof Error ? { error: r.message } : { result: r }))];
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    // Aborted when the client closes the connection before the answer went out.
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const url = new URL(req.url ?? '/', 'http://standin');
    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? url.searchParams.get('_token');
    if (token === null || !safeEqual(token, options.token)) return send(res, 401, { error: 'Unauthorized' });
    if (req.method !== 'GET' && req.method !== 'POST') return send(res, 405, { error: `ERR method ${req.method} not allowed` });
    const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
    const respond = (status: number, body: Outcome | Outcome[]) => {
      const out = (o: Outcome) => ('error' in o ? o : { result: encode(o.result as Reply, base64) });
      send(res, status, Array.isArray(body) ? body.map(out) : out(body));
    };
    const raw = await readBody(req);
    const path = url.pathname.replace(/\/+$/, '');
    if (req.method === 'POST' && (path === '' || path === '/pipeline' || path === '/multi-exec')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
        if (path === '') {
          const command = toCommand(parsed);
          observe([command]);
          return respond(...(await single(command, gone.signal)));
        }
        if (!Array.isArray(parsed) || parsed.length === 0) throw new Error(`ERR ${path.slice(1)} takes a non-empty JSON array of commands`);
        const commands = parsed.map(toCommand);
        observe(commands);
        if (path === '/pipeline') return respond(200, await pipeline(commands));
        return respond(...(await multiExec(commands)));
      } catch (e) {
        return respond(400, { error: e instanceof SyntaxError ? 'ERR request body is not JSON' : (e as Error).message });
      }
    }
    // Path style: /set/foo/bar; a POST body is one more (last) argument, sent as is.
    const command: Arg[] = path.split('/').slice(1).map(decodeURIComponent);
    if (command.length === 0) return respond(400, { error: 'ERR no command given' });
    if (req.method === 'POST' && raw.length > 0) command.push(raw);
    observe([command]);
    return respond(...(await single(command, gone.signal)));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => send(res, 500, { error: `ERR stand-in: ${(e as Error)?.message ?? e}` }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  }).catch((e) => {
    redis.disconnect();
    throw e;
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${urlHost(options.host)}:${port}`,
    token: options.token,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of dedicated) connection.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

const safeEqual = (a: string, b: string) => timingSafeEqual(sha256(a), sha256(b));
const sha256 = (s: string) => createHash('sha256').update(s).digest();

function urlHost(host = '127.0.0.1'): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
