// Retry and bulk retry (issue 12) through the real local entry (src/node.ts)
// against real Celery workers (Debian's python3-celery): tasks fail, are
// retried through POST /api/task/retry and /api/tasks/retry, and the new
// tasks run with exactly the same arguments (test/celery/retry_tasks.py
// answers with the repr of what it was called with, Python types included).
// One worker has Celery's result_extended on (arguments from the Redis
// result backend), one has it off (arguments from the events' argsrepr,
// refused when that cannot be read back exactly). Redis with SQLite, then
// RabbitMQ with MariaDB (the link's upsert in each dialect).

import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisResultBackend } from '../../worker-collector/control/result-backend';
import {
  AMQP_BROKER,
  CELERY_DIR,
  type CeleryWorker,
  celeryEnv,
  DEFAULT_RESULT_BACKEND,
  PYTHON,
  REDIS_BROKER,
  runPython,
} from '../support/celery';
import { createTestDatabase, type TestDatabase, UNIT_TIER } from '../support/databases';
import { printLogsOnFailure, spawnManaged, stopAllProcesses, waitFor } from '../support/processes';
import { type Stalk, startStalk } from '../support/stalk';
import { auditRows, deleteQueues, deleteResults, get, post, waitForTaskState } from './control-support';

const CASES = [
  { broker: 'redis', brokerUrl: REDIS_BROKER, db: 'sqlite' as const },
  ...(UNIT_TIER ? [] : [{ broker: 'amqp', brokerUrl: AMQP_BROKER, db: 'mariadb' as const }]),
];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function startRetryWorker(brokerUrl: string, queue: string, hostname: string, extended: boolean): Promise<CeleryWorker> {
  const env = { ...celeryEnv({ broker: brokerUrl, queue }), STALK_RESULT_EXTENDED: extended ? '1' : '0' };
  const args = [
    '-m',
    'celery',
    '-A',
    'retry_tasks',
    'worker',
    '-n',
    hostname,
    '-c',
    '1',
    '-E',
    '--loglevel=INFO',
    '--without-gossip',
    '--without-mingle',
    '--purge',
  ];
  const proc = spawnManaged(`celery worker ${hostname}`, PYTHON, args, { cwd: CELERY_DIR, env });
  await proc.waitForOutput(new RegExp(`${hostname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ready\\.`), 30_000);
  return { hostname, process: proc, stop: (graceMs = 20_000) => proc.stop(graceMs) };
}

describe.each(CASES)('retry through Stalk: $broker broker, $db', ({ broker, brokerUrl, db }) => {
  const run = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const extendedQueue = `stalk-retry-ext-${broker}-${run}`;
  const plainQueue = `stalk-retry-plain-${broker}-${run}`;
  const flag = join(tmpdir(), `stalk-retry-flag-${run}`);
  const backend = new RedisResultBackend(DEFAULT_RESULT_BACKEND);
  let database: TestDatabase | undefined;
  let stalk: Stalk | undefined;
  let extended: CeleryWorker | undefined;
  let plain: CeleryWorker | undefined;
  const taskIds: string[] = [];

  printLogsOnFailure();

  beforeAll(async () => {
    rmSync(flag, { force: true });
    database = await createTestDatabase(db);
    [stalk, extended, plain] = await Promise.all([
      startStalk({ broker: brokerUrl, db: database.url, extraArgs: ['--result-backend', DEFAULT_RESULT_BACKEND] }),
      startRetryWorker(brokerUrl, extendedQueue, `retry-ext-${run}@stalktest`, true),
      startRetryWorker(brokerUrl, plainQueue, `retry-plain-${run}@stalktest`, false),
    ]);
  }, 90_000);

  afterAll(async () => {
    await stopAllProcesses();
    rmSync(flag, { force: true });
    await deleteQueues(brokerUrl, [extendedQueue, plainQueue]).catch((error: unknown) => console.warn(`queue cleanup: ${String(error)}`));
    await deleteResults(DEFAULT_RESULT_BACKEND, taskIds).catch((error: unknown) => console.warn(`result cleanup: ${String(error)}`));
    await backend.close();
    await database?.drop();
  }, 60_000);

  function running(): Stalk {
    if (!stalk || !extended || !plain) throw new Error('Stalk or the workers did not start (see beforeAll)');
    return stalk;
  }

  /** Send tasks from a Python producer: each `call` is `(args, kwargs)` Python source; resolves with their ids. */
  async function send(task: 'probe' | 'bulk_probe', queue: string, calls: string[]): Promise<string[]> {
    const code = [
      'import datetime',
      `from retry_tasks import ${task} as t`,
      ...calls.map((call) => `a, k = ${call}\nprint(t.apply_async(args=a, kwargs=dict(k, flag=${JSON.stringify(flag)})).id)`),
    ].join('\n');
    const out = await runPython(`send ${task}`, ['-c', code], { broker: brokerUrl, queue }, 30_000);
    const ids = out.trim().split('\n').slice(-calls.length);
    for (const id of ids) expect(id).toMatch(UUID);
    taskIds.push(...ids);
    return ids;
  }

  /** The repr the original failed with (its exception message). */
  async function failedWith(id: string): Promise<string> {
    const result = await backend.wait(id, 20_000);
    expect(result?.status).toBe('FAILURE');
    const message = ((result?.result ?? {}) as { exc_message?: unknown[] }).exc_message?.[0];
    expect(typeof message).toBe('string');
    return message as string;
  }

  async function failed(task: 'probe' | 'bulk_probe', queue: string, calls: string[]): Promise<{ id: string; seen: string }[]> {
    rmSync(flag, { force: true });
    const ids = await send(task, queue, calls);
    const out = [];
    for (const id of ids) {
      const seen = await failedWith(id);
      // Stalk has the failure from the events (the retry reads the stored row).
      await waitForTaskState(running(), id, ['FAILURE'], 20_000);
      out.push({ id, seen });
    }
    return out;
  }

  it('retries a failure with exactly its arguments from the result backend (result_extended): nested, unicode, floats, big-but-safe ints, quotes', async () => {
    const stalk = running();
    const [original] = await failed('probe', extendedQueue, [
      `((1, 2.0, -0.0, 1e300, 2**53 - 1, "it's \\"quoted\\"\\n\\\\n é 😀", None, True, (1, [2, {"deep": {"er": [3.5]}}])), {"kw": {"a": [], "b": {}}, "x": 0.1})`,
    ]);
    writeFileSync(flag, 'ok');
    const answer = await post(stalk, `/api/task/retry/${original!.id}`);
    expect(answer.status, answer.text).toBe(200);
    const body = answer.json<{ 'task-id': string; 'retried-from': string }>();
    expect(body['retried-from']).toBe(original!.id);
    expect(body['task-id']).toMatch(UUID);
    expect(body['task-id']).not.toBe(original!.id);
    taskIds.push(body['task-id']);
    const result = await backend.wait(body['task-id'], 20_000);
    expect(result).toMatchObject({ status: 'SUCCESS', result: original!.seen });
    // The link, on the API and both pages.
    const info = await waitForTaskState(stalk, body['task-id'], ['SUCCESS'], 20_000);
    expect((info as unknown as { retried_from: string }).retried_from).toBe(original!.id);
    expect((await get(stalk, `/api/task/info/${original!.id}`)).json<{ retried_from: unknown }>()).not.toHaveProperty('retried_from');
    const newPage = (await get(stalk, `/task/${body['task-id']}`)).text;
    expect(newPage).toContain('Retry of');
    expect(newPage).toContain(`/task/${original!.id}"`);
    const originalPage = (await get(stalk, `/task/${original!.id}`)).text;
    expect(originalPage).toContain('Retried as');
    expect(originalPage).toContain(`/task/${body['task-id']}"`);
    // Audited with who and what.
    const audit = auditRows((await get(stalk, '/audit')).text).find((r) => r.action === 'retry' && r.target === original!.id);
    expect(audit?.ok).toBe(true);
    expect(audit?.outcome).toContain(body['task-id']);
  });

  it('without result_extended, retries from the argsrepr when it reads back exactly, and refuses with 409 when it does not', async () => {
    const stalk = running();
    const [exact, cut, dated, backslash] = await failed('probe', plainQueue, [
      `((1, 2.5, "a\\\\b\\nc", [None, False], {"k": (1,)}), {"n": -7})`,
      `(("x " * 600,), {})`,
      `((datetime.datetime(2020, 1, 2, 3, 4),), {})`,
      `((), {"s": "ends in a backslash\\\\"})`,
    ]);
    writeFileSync(flag, 'ok');
    const ok = await post(stalk, `/api/task/retry/${exact!.id}`);
    expect(ok.status, ok.text).toBe(200);
    const retried = ok.json<{ 'task-id': string }>()['task-id'];
    taskIds.push(retried);
    expect(await backend.wait(retried, 20_000)).toMatchObject({ status: 'SUCCESS', result: exact!.seen });

    const refusedCut = await post(stalk, `/api/task/retry/${cut!.id}`);
    expect(refusedCut.status).toBe(409);
    expect(refusedCut.json<{ error: string }>().error).toMatch(/^arguments are not recoverable exactly: args .*cut/);
    // A string ending in a backslash prints like an escaped quote in saferepr: ambiguous, refused.
    const refusedQuote = await post(stalk, `/api/task/retry/${backslash!.id}`);
    expect(refusedQuote.status).toBe(409);
    expect(refusedQuote.json<{ error: string }>().error).toMatch(/^arguments are not recoverable exactly: kwargs .*backslash/);
    // The worker got a datetime as an ISO string (kombu's JSON), the event shows the object: not exact, refused.
    const refusedDate = await post(stalk, `/api/task/retry/${dated!.id}`);
    expect(refusedDate.status).toBe(409);
    expect(refusedDate.json<{ error: string }>().error).toMatch(/^arguments are not recoverable exactly: args .*datetime/);
    // Unknown tasks are 404, unfinished ones 409.
    expect((await post(stalk, `/api/task/retry/no-such-task-${run}`)).status).toBe(404);
  });

  it('bulk retry: the filters pick the failures, a dry run sends nothing, then each is sent once and audited as one action', async () => {
    const stalk = running();
    const originals = await failed('bulk_probe', extendedQueue, [`((1,), {})`, `(("two",), {"n": 2})`, `(([3.0],), {})`]);
    writeFileSync(flag, 'ok');
    const filters = `state=FAILURE&taskname=retry.bulk_probe&workername=${encodeURIComponent(extended!.hostname)}`;
    const refused = await post(stalk, `/api/tasks/retry?${filters}`);
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('limit');

    const dry = await post(stalk, `/api/tasks/retry?${filters}&limit=10&dry_run=true`);
    expect(dry.status, dry.text).toBe(200);
    const dryBody = dry.json<{ retried: number; refused: object; tasks: Record<string, string | null>; dry_run: boolean }>();
    expect(dryBody).toMatchObject({ retried: 3, refused: {}, dry_run: true });
    expect(Object.keys(dryBody.tasks).sort()).toEqual(originals.map((o) => o.id).sort());
    expect(Object.values(dryBody.tasks)).toEqual([null, null, null]);

    const real = await post(stalk, `/api/tasks/retry?${filters}&limit=10&chunk=2&pause=0.2`);
    expect(real.status, real.text).toBe(200);
    const body = real.json<{ retried: number; refused: object; tasks: Record<string, string> }>();
    expect(body.retried).toBe(3);
    expect(body.refused).toEqual({});
    for (const original of originals) {
      const sent = body.tasks[original.id]!;
      expect(sent).toMatch(UUID);
      taskIds.push(sent);
      expect(await backend.wait(sent, 20_000)).toMatchObject({ status: 'SUCCESS', result: original.seen });
    }
    const audit = auditRows((await get(stalk, '/audit')).text).filter((r) => r.action === 'retry' && r.target === '3 tasks');
    expect(audit).toHaveLength(1);
    expect(audit[0]!.outcome).toContain('"retried":3');
    expect(audit[0]!.arguments).toContain('retry.bulk_probe');
    // The filter found only failures: retrying again picks the same three originals, never the new successes.
    const again = await post(stalk, `/api/tasks/retry?${filters}&limit=10&dry_run=1`);
    expect(Object.keys(again.json<{ tasks: object }>().tasks).sort()).toEqual(originals.map((o) => o.id).sort());
    expect(existsSync(flag)).toBe(true);
  });

  it('the failure list offers "Retry N failed tasks" with the count in its confirmation', async () => {
    const stalk = running();
    await waitFor(
      async () => {
        const page = (await get(stalk, `/tasks?state=FAILURE&name=retry.bulk_probe&worker=${encodeURIComponent(extended!.hostname)}`)).text;
        return page.includes('Retry 3 failed tasks') && page.includes('hx-confirm="Send 3 failed tasks again') ? page : null;
      },
      10_000,
      'the bulk retry button',
    );
    expect((await get(stalk, '/tasks?state=SUCCESS')).text).not.toContain('id="bulk-retry"');
  });
});
