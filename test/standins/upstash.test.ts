// The Upstash stand-in, driven by the real @upstash/redis client and
// forwarding to the real Redis: what the Worker build relies on when it runs
// locally. Every client test runs with both response encodings, and with the
// client's auto-pipelining (on by default: commands go to /pipeline in
// batches) and without it (one POST / per command).

import { randomBytes } from 'node:crypto';
import { errors, Redis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startUpstashStandIn } from '../../dev/standins/upstash';
import { waitFor } from '../support/processes';
import { AT_ONCE_MS, NEVER_MS } from '../support/timing';

const REDIS_URL = process.env.STALK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const PREFIX = `stalk-standin-test:${randomBytes(4).toString('hex')}:`;
const TOKEN = 'test-token-123';
/** The name of the stand-in's blocking connections in Redis (CLIENT LIST): this file's own. */
const BLOCKING_NAME = `stalk-standin-test-blocking-${randomBytes(4).toString('hex')}`;

let standIn: Awaited<ReturnType<typeof startUpstashStandIn>>;

beforeAll(async () => {
  standIn = await startUpstashStandIn({ redisUrl: REDIS_URL, token: TOKEN, blockingConnectionName: BLOCKING_NAME });
});

afterAll(async () => {
  const direct = new IORedis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await direct.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
      if (keys.length > 0) await direct.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    direct.disconnect();
    await standIn?.close();
  }
});

function client(responseEncoding: 'base64' | false, enableAutoPipelining: boolean, token = TOKEN) {
  return new Redis({ url: standIn.url, token, responseEncoding, enableAutoPipelining, retry: false, enableTelemetry: false });
}

describe.each([
  ['base64', 'base64' as const, true],
  ['plain', false as const, true],
  ['base64', 'base64' as const, false],
  ['plain', false as const, false],
])('Upstash stand-in with @upstash/redis, %s responses, auto-pipelining %s', (name, encoding, autoPipelining) => {
  const k = (key: string) => `${PREFIX}${name}-${autoPipelining}:${key}`;
  let redis: Redis;
  beforeAll(() => {
    redis = client(encoding, autoPipelining);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it(`sends single commands to ${autoPipelining ? '/pipeline' : '/'}`, async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    expect(await redis.set(k('route'), 'r')).toBe('OK');
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    expect(String(fetchSpy.mock.calls[0]?.[0])).toBe(autoPipelining ? `${standIn.url}/pipeline` : standIn.url);
  });

  it('sets and gets strings, JSON objects and unicode', async () => {
    expect(await redis.set(k('s'), 'hello world')).toBe('OK');
    expect(await redis.get(k('s'))).toBe('hello world');
    expect(await redis.set(k('obj'), { a: 1, nested: { b: [true, null, 'x'] } })).toBe('OK');
    expect(await redis.get(k('obj'))).toEqual({ a: 1, nested: { b: [true, null, 'x'] } });
    const unicode = 'héllo 😀 日本語 \u0000 "quotes" \\';
    await redis.set(k('u'), unicode);
    expect(await redis.get(k('u'))).toBe(unicode);
    expect(await redis.get(k('missing'))).toBeNull();
  });

  it('sets with nx and ex, and reports the ttl', async () => {
    expect(await redis.set(k('nx'), 'first', { nx: true, ex: 100 })).toBe('OK');
    expect(await redis.set(k('nx'), 'second', { nx: true, ex: 100 })).toBeNull();
    expect(await redis.get(k('nx'))).toBe('first');
    const ttl = await redis.ttl(k('nx'));
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
    expect(await redis.ttl(k('missing'))).toBe(-2);
  });

  it('increments', async () => {
    expect(await redis.incr(k('n'))).toBe(1);
    expect(await redis.incrby(k('n'), 41)).toBe(42);
    expect(await redis.incrby(k('n'), -2)).toBe(40);
  });

  it('writes and reads hashes', async () => {
    expect(await redis.hset(k('h'), { name: 'ünï', count: 2, ratio: 1.5 })).toBe(3);
    expect(await redis.hget(k('h'), 'name')).toBe('ünï');
    // The client parses 2 back to a number but leaves 1.5 a string (its own quirk, not the stand-in's).
    expect(await redis.hgetall(k('h'))).toEqual({ name: 'ünï', count: 2, ratio: '1.5' });
    expect(await redis.hgetall(k('no-hash'))).toBeNull();
  });

  it('writes and reads sorted sets with scores', async () => {
    expect(await redis.zadd(k('z'), { score: 2.5, member: 'b' }, { score: 1, member: 'a' }, { score: 10, member: 'c' })).toBe(3);
    expect(await redis.zrange(k('z'), 0, -1, { withScores: true })).toEqual(['a', 1, 'b', 2.5, 'c', 10]);
    expect(await redis.zrange(k('z'), 0, 1)).toEqual(['a', 'b']);
    expect(await redis.zscore(k('z'), 'b')).toBe(2.5);
  });

  it('pushes to and reads lists', async () => {
    expect(await redis.lpush(k('l'), 'a', 'b', 'c')).toBe(3);
    expect(await redis.lrange(k('l'), 0, -1)).toEqual(['c', 'b', 'a']);
  });

  it('deletes, checks existence and scans', async () => {
    await redis.set(k('scan:1'), 'x');
    await redis.set(k('scan:2'), 'y');
    await redis.set(k('scan:3'), 'z');
    expect(await redis.exists(k('scan:1'), k('scan:2'), k('missing'))).toBe(2);
    const found: string[] = [];
    let cursor: string | number = 0;
    do {
      const [next, keys]: [string, string[]] = await redis.scan(cursor, { match: k('scan:*'), count: 100 });
      found.push(...keys);
      cursor = next;
    } while (String(cursor) !== '0');
    expect(found.sort()).toEqual([k('scan:1'), k('scan:2'), k('scan:3')]);
    expect(await redis.del(k('scan:1'), k('scan:2'))).toBe(2);
    expect(await redis.exists(k('scan:1'), k('scan:2'), k('scan:3'))).toBe(1);
  });

  it('runs pipelines', async () => {
    const results = await redis.pipeline().set(k('p'), 'v').get(k('p')).incr(k('pn')).hset(k('ph'), { f: 'v' }).hgetall(k('ph')).exec();
    expect(results).toEqual(['OK', 'v', 1, 1, { f: 'v' }]);
  });

  it('runs multi-exec transactions', async () => {
    const results = await redis.multi().set(k('m'), 'one').incr(k('mn')).incr(k('mn')).get(k('m')).exec();
    expect(results).toEqual(['OK', 1, 2, 'one']);
  });

  it('keeps per-command errors with exec({ keepErrors: true })', async () => {
    await redis.set(k('str'), 'not a hash');
    const pipelined = await redis.pipeline().set(k('ke'), 'v').hget(k('str'), 'f').get(k('ke')).exec({ keepErrors: true });
    expect(pipelined.map((r) => r.result)).toEqual(['OK', undefined, 'v']);
    expect(pipelined[0]?.error).toBeUndefined();
    expect(pipelined[1]?.error).toMatch(/^WRONGTYPE/);

    const transacted = await redis.multi().incr(k('ken')).hget(k('str'), 'f').incr(k('ken')).exec({ keepErrors: true });
    expect(transacted.map((r) => r.result)).toEqual([1, undefined, 2]);
    expect(transacted[1]?.error).toMatch(/^WRONGTYPE/);

    // Without keepErrors the client throws for the failed command.
    await expect(redis.pipeline().get(k('ke')).hget(k('str'), 'f').exec()).rejects.toThrow(/Command 2 \[ hget \] failed: WRONGTYPE/);
  });

  it('surfaces Redis errors as UpstashError', async () => {
    await redis.set(k('str2'), 'text');
    const error = await redis.hget(k('str2'), 'f').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(errors.UpstashError);
    expect((error as Error).message).toMatch(/WRONGTYPE Operation against a key holding the wrong kind of value/);
    await expect(redis.incr(k('str2'))).rejects.toThrow(/not an integer/);
  });

  it('rejects a bad token', async () => {
    const error = await client(encoding, autoPipelining, 'wrong-token')
      .get(k('s'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(errors.UpstashError);
    expect((error as Error).message).toMatch(/Unauthorized/);
  });
});

describe('Upstash stand-in over raw HTTP', () => {
  const k = (key: string) => `${PREFIX}raw:${key}`;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${standIn.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body),
    });

  it('accepts path-style commands with ?_token= or a Bearer token', async () => {
    const set = await fetch(`${standIn.url}/set/${encodeURIComponent(k('path'))}/hello%20there?_token=${TOKEN}`);
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({ result: 'OK' });
    const get = await fetch(`${standIn.url}/get/${encodeURIComponent(k('path'))}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await get.json()).toEqual({ result: 'hello there' });
    const encoded = await fetch(`${standIn.url}/get/${encodeURIComponent(k('path'))}`, {
      headers: { authorization: `Bearer ${TOKEN}`, 'upstash-encoding': 'base64' },
    });
    expect(await encoded.json()).toEqual({ result: Buffer.from('hello there').toString('base64') });
    const noToken = await fetch(`${standIn.url}/get/${encodeURIComponent(k('path'))}`);
    expect(noToken.status).toBe(401);
    await noToken.body?.cancel();
  });

  it('keeps binary values intact (a path-style POST body is the last argument)', async () => {
    const bytes = new Uint8Array([0, 255, 1, 128, 10]);
    const set = await post(`/set/${encodeURIComponent(k('bin'))}`, bytes);
    expect(await set.json()).toEqual({ result: 'OK' });
    const get = await post('', ['get', k('bin')], { 'upstash-encoding': 'base64' });
    expect(await get.json()).toEqual({ result: Buffer.from(bytes).toString('base64') });
    // Under base64 encoding, bulk strings are base64 but the OK status stays "OK", as Upstash sends it.
    expect(await (await post('', ['set', k('ok'), 'OK'], { 'upstash-encoding': 'base64' })).json()).toEqual({ result: 'OK' });
    expect(await (await post('', ['get', k('bin')], { 'upstash-encoding': 'base64' })).json()).not.toEqual({ result: 'OK' });
    const len = await post('', ['strlen', k('bin')]);
    expect(await len.json()).toEqual({ result: 5 });
  });

  it('answers RESP-style flat arrays, stringifies numbers and booleans, and reports errors with 400', async () => {
    await post('', ['hset', k('h'), 'a', 1, 'b', true]);
    expect(await (await post('', ['hgetall', k('h')])).json()).toEqual({ result: ['a', '1', 'b', 'true'] });
    const bad = await post('', ['nosuchcommand', 'x']);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/unknown command/);
    const notJson = await post('', 'this is not json');
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toEqual({ error: 'ERR request body is not JSON' });
  });

  it('refuses connection-state and pub/sub commands with a clear error, and blocking ones inside pipelines and transactions', async () => {
    for (const command of [['subscribe', 'chan'], ['select', '1'], ['monitor']]) {
      const response = await post('', command);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toMatch(/not supported by the Upstash stand-in/);
    }
    // In a pipeline only that command fails; in a transaction the whole request does.
    const pipelined = await post('/pipeline', [
      ['set', k('pl'), 'v'],
      ['blpop', k('l'), '0'],
      ['get', k('pl')],
    ]);
    const results = (await pipelined.json()) as { result?: unknown; error?: string }[];
    expect(results[0]).toEqual({ result: 'OK' });
    expect(results[1]?.error).toMatch(/blocking command 'blpop' is not supported in a pipeline/);
    expect(results[2]).toEqual({ result: 'v' });
    const transacted = await post('/multi-exec', [
      ['set', k('tx'), 'v'],
      ['brpop', k('l'), '0'],
    ]);
    expect(transacted.status).toBe(400);
    await transacted.body?.cancel();
    expect(await (await post('', ['exists', k('tx')])).json()).toEqual({ result: 0 });
  });

  it('aborts a transaction when Redis refuses to queue a command', async () => {
    const response = await post('/multi-exec', [
      ['set', k('abort'), 'v'],
      ['set', k('abort')],
    ]);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(/wrong number of arguments/);
    expect(await (await post('', ['exists', k('abort')])).json()).toEqual({ result: 0 });
  });
});

describe('Upstash stand-in: blocking commands', () => {
  const k = (key: string) => `${PREFIX}block:${key}`;
  const direct = new IORedis(REDIS_URL);
  afterAll(() => direct.disconnect());
  const post = (body: unknown, signal?: AbortSignal) =>
    fetch(standIn.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
  /** How many of the stand-in's connections Redis has blocked in a command right now. */
  async function blocked(): Promise<number> {
    const clients = String(await direct.client('LIST')).split('\n');
    return clients.filter((line) => line.includes(` name=${BLOCKING_NAME} `) && /\bflags=\w*b/.test(line)).length;
  }

  it('holds BLPOP until an element arrives, then answers with the key and the element', async () => {
    let answered = false;
    const waiting = post(['blpop', k('list'), NEVER_MS / 1000]).finally(() => (answered = true));
    await waitFor(async () => (await blocked()) === 1, 10_000, 'the BLPOP blocked in Redis');
    expect(answered).toBe(false);
    await direct.lpush(k('list'), 'hello');
    const response = await waiting;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ result: [k('list'), 'hello'] });
    expect(await direct.llen(k('list'))).toBe(0);
  });

  it('answers null when the timeout passes (fractional seconds too), and BRPOP path-style', async () => {
    const started = Date.now();
    expect(await (await post(['blpop', k('empty'), 0.5])).json()).toEqual({ result: null });
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    await direct.rpush(k('path'), 'a', 'b');
    const path = await fetch(`${standIn.url}/brpop/${encodeURIComponent(k('path'))}/1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await path.json()).toEqual({ result: [k('path'), 'b'] });
  });

  it('answers in base64 when asked, as for any command', async () => {
    await direct.rpush(k('b64'), 'x');
    const response = await fetch(standIn.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'upstash-encoding': 'base64' },
      body: JSON.stringify(['brpop', k('b64'), 1]),
    });
    expect(await response.json()).toEqual({ result: [Buffer.from(k('b64')).toString('base64'), Buffer.from('x').toString('base64')] });
  });

  it('runs each blocking command on its own connection: other commands are answered meanwhile', async () => {
    const pops = [1, 2, 3].map((i) => post(['brpop', k(`idle-${i}`), NEVER_MS / 1000]));
    await waitFor(async () => (await blocked()) === 3, 10_000, 'the three pops blocked in Redis');
    const started = Date.now();
    expect(await (await post(['set', k('meanwhile'), 'v'])).json()).toEqual({ result: 'OK' });
    expect(await (await post(['get', k('meanwhile')])).json()).toEqual({ result: 'v' });
    // Not after a pop's timeout.
    expect(Date.now() - started).toBeLessThan(AT_ONCE_MS);
    // Each blocked pop is served by the push to its own list.
    await direct.lpush(k('idle-2'), 'two');
    expect(await (await pops[1]!).json()).toEqual({ result: [k('idle-2'), 'two'] });
    await Promise.all([direct.lpush(k('idle-1'), 'one'), direct.lpush(k('idle-3'), 'three')]);
    expect(await (await pops[0]!).json()).toEqual({ result: [k('idle-1'), 'one'] });
    expect(await (await pops[2]!).json()).toEqual({ result: [k('idle-3'), 'three'] });
  });

  it('drops the blocked pop when the client goes away, so it cannot swallow a later element', async () => {
    const aborting = new AbortController();
    const waiting = post(['brpop', k('abandoned'), 20], aborting.signal).catch((error: unknown) => error);
    await waitFor(async () => (await blocked()) === 1, 10_000, 'the pop blocked in Redis');
    aborting.abort();
    expect(await waiting).toBeInstanceOf(Error);
    // Redis forgets a blocked client when its connection closes.
    await waitFor(async () => (await blocked()) === 0, 10_000, 'the stand-in to drop the blocked pop');
    // A pop still blocked would have taken the element as the push ran (Redis serves blocked clients then).
    await direct.lpush(k('abandoned'), 'kept');
    expect(await direct.lrange(k('abandoned'), 0, -1)).toEqual(['kept']);
  });

  it('reports Redis errors from a blocking command', async () => {
    await direct.set(k('not-a-list'), 'x');
    const response = await post(['blpop', k('not-a-list'), 1]);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(/WRONGTYPE/);
  });
});
