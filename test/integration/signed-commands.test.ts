// The real collector (worker-collector/main.ts, a child process) on the
// edge's command channel, over TCP and over the Upstash REST stand-in:
// commands pushed straight into Redis by someone holding the token but not
// the cookie secret (unsigned, altered, replayed, expired, from the future,
// signed with another key, not JSON) are refused, each with an audit row
// that does not take the claimed user at its word, and answered (signed)
// where the id allows; a correctly signed command runs and is audited under
// its verified user. Stopping the collector does not wait for the blocking
// pop, and without a cookie secret it does not start at all.

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstashStandIn } from '../../dev/standins/upstash';
import { UpstashControlClient } from '../../src/edge/control-client';
import {
  deriveCommandKey,
  NonceCache,
  type SignedCommandRequest,
  signCommand,
  signReply,
  verifyCommand,
  verifyReply,
} from '../../src/shared/command-signing';
import { upstashRest } from '../../src/shared/upstash-rest';
import { COMMAND_QUEUE_KEY, type CommandOutcome, type CommandRequest, REPLY_KEY_PREFIX, REPLY_TTL_SECONDS } from '../../src/shared/control';
import { type OpenDatabase, openDatabase } from '../../worker-collector/store/db';
import { createTestDatabase, type TestDatabase } from '../support/databases';
import { type ManagedProcess, printLogsOnFailure, spawnManaged, stopAllProcesses, waitFor } from '../support/processes';
import { REPO_ROOT } from '../support/stalk';

/** The command channel's Redis database, this file's alone (the list name is fixed). */
const CHANNEL_REDIS = 'redis://127.0.0.1:6379/12';
/** The collector needs a broker to start; nobody else uses this one. */
const BROKER = 'redis://localhost:6379/13';
const SECRET = `signed-commands-test-${randomBytes(16).toString('hex')}`;
const OTHER_SECRET = `someone-else-entirely-${randomBytes(16).toString('hex')}`;

printLogsOnFailure();

function collectorEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('STALK_') || key.startsWith('UPSTASH_') || key.startsWith('FLOWER_') || key === 'CELERY_BROKER_URL') delete env[key];
  }
  return env;
}

function startCollector(db: string, stateUrl: string, token: string, extra: string[] = []): ManagedProcess {
  return spawnManaged(
    'collector',
    process.execPath,
    [
      '--import',
      'tsx',
      'worker-collector/main.ts',
      '--db',
      db,
      '--broker',
      BROKER,
      '--state-url',
      stateUrl,
      '--state-token',
      token,
      '--queue-poll-interval',
      '0',
      ...extra,
    ],
    { cwd: REPO_ROOT, env: collectorEnv() },
  );
}

afterAll(async () => {
  await stopAllProcesses();
});

describe.each(['tcp', 'rest'] as const)('the collector on the command channel over %s', (mode) => {
  const redis = new Redis(CHANNEL_REDIS, { lazyConnect: true });
  let key: CryptoKey;
  let database: TestDatabase;
  let store: OpenDatabase;
  let collector: ManagedProcess;
  let closeStandIn: (() => Promise<void>) | undefined;
  const run = randomBytes(4).toString('hex');

  beforeAll(async () => {
    key = await deriveCommandKey(SECRET);
    await redis.connect();
    await redis.del(COMMAND_QUEUE_KEY);
    database = await createTestDatabase('sqlite');
    let stateUrl = CHANNEL_REDIS;
    let token = '';
    if (mode === 'rest') {
      const standIn = await startUpstashStandIn({ redisUrl: CHANNEL_REDIS, token: randomBytes(12).toString('hex') });
      closeStandIn = () => standIn.close();
      stateUrl = standIn.url;
      token = standIn.token;
    }
    collector = startCollector(database.url, stateUrl, token, ['--cookie-secret', SECRET]);
    await collector.waitForOutput(/command channel: taking signed commands/, 30_000);
    store = await openDatabase(database.url);
  });

  afterAll(async () => {
    await collector?.stop(10_000);
    await store?.close();
    await closeStandIn?.();
    await database?.drop();
    await redis.del(COMMAND_QUEUE_KEY).catch(() => undefined);
    redis.disconnect();
  });

  const revoke = (task: string): CommandRequest['command'] => ({ kind: 'revoke', task, terminate: false, signal: 'SIGTERM' });
  const request = (id: string, command: CommandRequest['command'], user = 'alice@example.com'): CommandRequest => ({
    id,
    user,
    deadline: Date.now() / 1000 + 30,
    command,
  });

  async function push(entry: unknown): Promise<void> {
    await redis.lpush(COMMAND_QUEUE_KEY, typeof entry === 'string' ? entry : JSON.stringify(entry));
  }

  /** The collector's reply to `id`, checked against the command key (a refusal is signed too). */
  async function reply(id: string): Promise<CommandOutcome> {
    const popped = await redis.blpop(`${REPLY_KEY_PREFIX}${id}`, 15);
    if (!popped) throw new Error(`no reply to ${id} within 15 s`);
    const outcome = await verifyReply(key, id, popped[1]);
    if (!outcome) throw new Error(`the reply to ${id} is not signed with the command key: ${popped[1]}`);
    return outcome;
  }

  async function auditRows(): Promise<
    { user: string; action: string; target: string | null; arguments: string | null; ok: number; result: string | null }[]
  > {
    return store.db.selectFrom('audit_log').select(['user', 'action', 'target', 'arguments', 'ok', 'result']).orderBy('id').execute();
  }

  /** The refusal row whose arguments mention `marker`. */
  async function refusalRow(marker: string) {
    return waitFor(
      async () => (await auditRows()).find((row) => row.action === 'refused' && (row.arguments ?? '').includes(marker)),
      10_000,
      `the audit row of ${marker}`,
    );
  }

  let legit: SignedCommandRequest;

  it('runs a correctly signed command, answers it signed on its own reply list, and audits it under the verified user', async () => {
    const task = `legit-${run}`;
    legit = await signCommand(key, request(`ok-${run}`, revoke(task)), Date.now() / 1000);
    await push(legit);
    expect(await reply(legit.id)).toEqual({ ok: true, result: `Revoked '${task}'` });
    // The reply list is gone once popped: nothing for anybody to delete.
    expect(await redis.exists(`${REPLY_KEY_PREFIX}${legit.id}`)).toBe(0);
    const row = await waitFor(
      async () => (await auditRows()).find((r) => r.action === 'revoke' && r.target === task),
      10_000,
      'the revoke in the audit log',
    );
    expect(row).toMatchObject({ user: 'alice@example.com', ok: 1 });
  });

  it('refuses the same command pushed again (a replay), without running it twice or answering over the genuine reply', async () => {
    await push(legit);
    const row = await refusalRow(legit.id);
    expect(row).toMatchObject({ user: '(unverified)', ok: 0 });
    expect(JSON.parse(row.result!)).toBe(`command ${legit.id} refused: replayed (its nonce was used already)`);
    // The id is the genuine command's: a refusal there could pass for its outcome. (Replies follow the audit row within milliseconds.)
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await redis.exists(`${REPLY_KEY_PREFIX}${legit.id}`)).toBe(0);
    expect(JSON.parse(row.arguments!)).toMatchObject({ id: legit.id, claimed_user: 'alice@example.com' });
    expect((await auditRows()).filter((r) => r.action === 'revoke').length).toBe(1);
  });

  it('refuses an unsigned command (the old format), auditing the claimed user only as a claim', async () => {
    const id = `unsigned-${run}`;
    await push({ id, user: 'mallory', deadline: Date.now() / 1000 + 30, command: revoke(`forged-${run}`) });
    const outcome = await reply(id);
    expect(outcome).toMatchObject({ ok: false, status: 403 });
    expect(!outcome.ok && outcome.error).toMatch(/^unsigned command refused/);
    const row = await refusalRow(id);
    expect(row.user).toBe('(unverified)');
    expect(JSON.parse(row.arguments!)).toEqual({ id, claimed_user: 'mallory', command: revoke(`forged-${run}`) });
    expect(JSON.parse(row.result!)).toMatch(/^unsigned command refused/);
  });

  it('refuses a signed command that was altered on the way', async () => {
    const signed = await signCommand(key, request(`altered-${run}`, revoke(`altered-task-${run}`)), Date.now() / 1000);
    await push({ ...signed, user: 'mallory' });
    const outcome = await reply(signed.id);
    expect(!outcome.ok && outcome.error).toMatch(/^bad signature/);
    expect(JSON.parse((await refusalRow(signed.id)).arguments!)).toMatchObject({ claimed_user: 'mallory' });
  });

  it('refuses a command signed with another key', async () => {
    const signed = await signCommand(
      await deriveCommandKey(OTHER_SECRET),
      request(`wrong-key-${run}`, revoke(`wrong-key-task-${run}`)),
      Date.now() / 1000,
    );
    await push(signed);
    const outcome = await reply(signed.id);
    expect(!outcome.ok && outcome.error).toMatch(/^bad signature/);
    expect((await refusalRow(signed.id)).user).toBe('(unverified)');
  });

  it('refuses a command issued more than a minute ago, and one issued in the future', async () => {
    const old = await signCommand(
      key,
      { ...request(`old-${run}`, revoke(`old-task-${run}`)), deadline: Date.now() / 1000 + 600 },
      Date.now() / 1000 - 120,
    );
    await push(old);
    expect(await reply(old.id)).toMatchObject({ ok: false, status: 504, error: expect.stringMatching(/expired: issued 12\d s ago/) });
    const future = await signCommand(
      key,
      { ...request(`future-${run}`, revoke(`future-task-${run}`)), deadline: Date.now() / 1000 + 600 },
      Date.now() / 1000 + 120,
    );
    await push(future);
    expect(await reply(future.id)).toMatchObject({ ok: false, status: 403, error: expect.stringMatching(/in the future/) });
    await refusalRow(old.id);
    await refusalRow(future.id);
  });

  it('refuses a line that is not JSON (no id to answer) and keeps going', async () => {
    const marker = `garbage-${run}`;
    await push(`not json ${marker}`);
    await waitFor(
      async () => (await auditRows()).some((row) => row.action === 'refused' && row.result?.includes('not JSON')),
      10_000,
      'the garbage refused in the audit log',
    );
    const task = `after-garbage-${run}`;
    const signed = await signCommand(key, request(`after-${run}`, revoke(task)), Date.now() / 1000);
    await push(signed);
    expect(await reply(signed.id)).toEqual({ ok: true, result: `Revoked '${task}'` });
  });

  it('ran only what was properly signed, and never audited a claimed user as verified', async () => {
    const rows = await auditRows();
    expect(rows.filter((r) => r.action === 'revoke').map((r) => [r.user, r.target])).toEqual([
      ['alice@example.com', `legit-${run}`],
      ['alice@example.com', `after-garbage-${run}`],
    ]);
    expect(rows.filter((r) => r.user !== '(unverified)').every((r) => r.action === 'revoke')).toBe(true);
    expect(rows.filter((r) => r.action === 'refused').length).toBe(7);
  });

  it('leaves replies nobody collects to expire', async () => {
    const signed = await signCommand(key, request(`uncollected-${run}`, revoke(`uncollected-${run}`)), Date.now() / 1000);
    await push(signed);
    const replyKey = `${REPLY_KEY_PREFIX}${signed.id}`;
    await waitFor(async () => (await redis.exists(replyKey)) === 1, 10_000, 'the reply list');
    const ttl = await redis.ttl(replyKey);
    expect(ttl).toBeGreaterThan(REPLY_TTL_SECONDS - 10);
    expect(ttl).toBeLessThanOrEqual(REPLY_TTL_SECONDS);
  });

  it('stops without waiting for the blocking pop to time out', async () => {
    const started = Date.now();
    const exit = await collector.stop(30_000);
    expect(exit).toEqual({ code: 0, signal: null });
    // The pop blocks for 25 s; stopping abandons it.
    expect(Date.now() - started).toBeLessThan(8_000);
  });
});

describe('the collector without the cookie secret', () => {
  it('refuses to start with --state-url, in one clear line', async () => {
    const database = await createTestDatabase('sqlite');
    try {
      const collector = startCollector(database.url, CHANNEL_REDIS, '');
      const exit = await collector.exited;
      expect(exit.code).toBe(2);
      const lines = collector.output().trim().split('\n');
      expect(lines).toEqual([
        "stalk-collector: --state-url needs --cookie-secret (or FLOWER_COOKIE_SECRET): the Worker's COOKIE_SECRET, which signs the commands it sends",
      ]);
      const short = startCollector(database.url, CHANNEL_REDIS, '', ['--cookie-secret', 'too-short']);
      expect((await short.exited).code).toBe(2);
      expect(short.output().trim()).toBe("stalk-collector: --cookie-secret must be at least 32 characters (the Worker's COOKIE_SECRET)");
    } finally {
      await database.drop();
    }
  });
});

describe("the Worker's control client (src/edge/control-client.ts) against the Upstash stand-in", () => {
  const redis = new Redis(CHANNEL_REDIS, { lazyConnect: true });
  let standIn: Awaited<ReturnType<typeof startUpstashStandIn>>;
  beforeAll(async () => {
    await redis.connect();
    await redis.del(COMMAND_QUEUE_KEY);
    standIn = await startUpstashStandIn({ redisUrl: CHANNEL_REDIS, token: randomBytes(12).toString('hex') });
  });
  afterAll(async () => {
    await standIn?.close();
    await redis.del(COMMAND_QUEUE_KEY).catch(() => undefined);
    redis.disconnect();
  });

  it('pushes a signed command, ignores replies that are not signed for it, and returns the one that is', async () => {
    const key = await deriveCommandKey(SECRET);
    const client = new UpstashControlClient(upstashRest(standIn.url, standIn.token), Promise.resolve(key));
    const running = client.run({ kind: 'queues' }, 'alice@example.com', 10);
    // Playing the channel's other end: take the command, check it as the collector would.
    const popped = await redis.brpop(COMMAND_QUEUE_KEY, 10);
    expect(popped).not.toBeNull();
    const verdict = await verifyCommand(popped![1], key, Date.now() / 1000, new NonceCache());
    expect(verdict).toMatchObject({ ok: true, request: { user: 'alice@example.com', command: { kind: 'queues' } } });
    const id = verdict.ok ? verdict.request.id : '';
    const replyKey = `${REPLY_KEY_PREFIX}${id}`;
    // Forged answers first: unsigned, signed with another key, and signed for another command.
    await redis.rpush(replyKey, JSON.stringify({ ok: true, result: 'forged' }));
    await redis.rpush(replyKey, JSON.stringify(await signReply(await deriveCommandKey(OTHER_SECRET), id, { ok: true, result: 'forged' })));
    await redis.rpush(replyKey, JSON.stringify(await signReply(key, 'another-id', { ok: true, result: 'forged' })));
    await redis.rpush(replyKey, JSON.stringify(await signReply(key, id, { ok: true, result: 'genuine' })));
    expect(await running).toEqual({ ok: true, result: 'genuine' });
    // Each reply was taken by a blocking pop; nothing is left behind.
    expect(await redis.exists(replyKey)).toBe(0);
  });

  it('answers 504 when nobody replies within the wait, and sends nothing without a key', async () => {
    const client = new UpstashControlClient(upstashRest(standIn.url, standIn.token), deriveCommandKey(SECRET));
    const started = Date.now();
    expect(await client.run({ kind: 'queues' }, 'alice@example.com', 1)).toMatchObject({ ok: false, status: 504 });
    // The wait plus the grace for a late refusal.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
    await redis.del(COMMAND_QUEUE_KEY);
    const keyless = new UpstashControlClient(upstashRest(standIn.url, standIn.token), null);
    expect(await keyless.run({ kind: 'queues' }, 'alice@example.com', 1)).toEqual({
      ok: false,
      status: 503,
      error: 'COOKIE_SECRET is not set, so commands to the collector cannot be signed',
    });
    expect(await redis.llen(COMMAND_QUEUE_KEY)).toBe(0);
  });

  it('answers 503 when Upstash cannot be reached', async () => {
    const client = new UpstashControlClient(upstashRest('http://127.0.0.1:9', 'token'), deriveCommandKey(SECRET));
    expect(await client.run({ kind: 'queues' }, 'alice@example.com', 1)).toMatchObject({
      ok: false,
      status: 503,
      error: expect.stringMatching(/^command channel unavailable/),
    });
  });
});
