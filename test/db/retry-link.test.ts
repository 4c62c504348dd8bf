// The retry's link (tasks.retried_from) against real databases: written when
// the retry is sent, whether the new task's events were stored before or
// arrive after, and never undone by the event upsert. The task picked for a
// retry, and what is refused, come from the stored row (TaskRetrier with a
// recording publisher; the broker side is test/integration/retry.test.ts).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskRetrier } from '../../worker-collector/control/retry';
import type { OutgoingTask, ResultBackend } from '../../worker-collector/control/types';
import { failed, received, started, succeeded } from '../fixtures/events';
import { store } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T0 = 1_900_000_000;

describe.each(DIALECTS)('retry link on %s', (kind) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  const sent: OutgoingTask[] = [];
  let nextId = '';
  const publisher = {
    send: async (task: OutgoingTask) => {
      sent.push(task);
      return nextId;
    },
    close: async () => undefined,
  };
  const row = (uuid: string) =>
    database.db
      .selectFrom('tasks')
      .select(['uuid', 'state', 'name', 'retried_from', 'received'])
      .where('uuid', '=', uuid)
      .executeTakeFirst();

  beforeAll(async () => {
    database = await openTestDatabase(kind);
    const story = (uuid: string, args = '(1, 2)') => ({ uuid, name: 'billing.charge', args, kwargs: "{'n': 1.0}" });
    await store(database, [
      received(story('orig-a'), T0),
      failed(story('orig-a'), T0 + 1),
      received(story('orig-b'), T0),
      failed(story('orig-b'), T0 + 1),
      received(story('orig-cut', "('a', ...)"), T0),
      failed(story('orig-cut', "('a', ...)"), T0 + 1),
      received(story('running'), T0),
      started(story('running'), T0 + 1),
    ]);
  }, 60_000);

  afterAll(async () => {
    await database?.drop();
  });

  it('links a new task whose events arrive after the retry, and the events keep the link', async () => {
    const retrier = new TaskRetrier(database.db, database.dialect, publisher, undefined, () => T0 + 5);
    nextId = 'new-after';
    const report = await retrier.run({ kind: 'retry', tasks: ['orig-a'], dryRun: false, chunk: 10, pauseMs: 0 });
    expect(report).toEqual({ tasks: { 'orig-a': 'new-after' }, refused: {} });
    expect(sent.at(-1)).toMatchObject({
      name: 'billing.charge',
      args: [1, 2],
      kwargs: { n: 1 },
      exactJson: { args: '[1,2]', kwargs: '{"n":1.0}' },
    });
    expect(await row('new-after')).toMatchObject({ state: 'PENDING', name: 'billing.charge', retried_from: 'orig-a' });
    const story = { uuid: 'new-after', name: 'billing.charge' };
    await store(database, [received(story, T0 + 6), succeeded(story, T0 + 7)]);
    expect(await row('new-after')).toMatchObject({ state: 'SUCCESS', retried_from: 'orig-a', received: T0 + 6 });
  });

  it('links a new task whose events were stored first, leaving its state alone', async () => {
    const story = { uuid: 'new-before', name: 'billing.charge' };
    await store(database, [received(story, T0 + 6), succeeded(story, T0 + 7)]);
    const retrier = new TaskRetrier(database.db, database.dialect, publisher, undefined, () => T0 + 8);
    nextId = 'new-before';
    await retrier.run({ kind: 'retry', tasks: ['orig-b'], dryRun: false, chunk: 10, pauseMs: 0 });
    expect(await row('new-before')).toMatchObject({ state: 'SUCCESS', retried_from: 'orig-b', received: T0 + 6 });
  });

  it('refuses unknown, unfinished and unrecoverable tasks with their reasons; a dry run sends nothing', async () => {
    const retrier = new TaskRetrier(database.db, database.dialect, publisher, undefined, () => T0 + 9);
    const before = sent.length;
    const report = await retrier.run({
      kind: 'retry',
      tasks: ['orig-a', 'running', 'orig-cut', 'nope'],
      dryRun: true,
      chunk: 2,
      pauseMs: 0,
    });
    expect(sent.length).toBe(before);
    expect(report.tasks).toEqual({ 'orig-a': null });
    expect(report.refused).toEqual({
      running: 'the task is STARTED: only a finished task is retried',
      'orig-cut': expect.stringMatching(/^arguments are not recoverable exactly: args .*cut/),
      nope: "unknown task 'nope'",
    });
  });

  it('a broker that fails mid-way: what was sent is reported and linked, the rest refused; failing at once is an error', async () => {
    let sends = 0;
    const flaky = {
      send: async () => {
        sends += 1;
        if (sends > 1) throw new Error('broker redis://x unavailable: ECONNREFUSED');
        return 'sent-before-outage';
      },
      close: async () => undefined,
    };
    const retrier = new TaskRetrier(database.db, database.dialect, flaky, undefined, () => T0 + 11);
    const report = await retrier.run({ kind: 'retry', tasks: ['orig-a', 'orig-b'], dryRun: false, chunk: 1, pauseMs: 1 });
    expect(report).toEqual({
      tasks: { 'orig-a': 'sent-before-outage' },
      refused: { 'orig-b': 'not sent: broker redis://x unavailable: ECONNREFUSED' },
    });
    expect(await row('sent-before-outage')).toMatchObject({ retried_from: 'orig-a' });
    await expect(retrier.run({ kind: 'retry', tasks: ['orig-b'], dryRun: false, chunk: 1, pauseMs: 0 })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('takes the result backend meta over the repr when result_extended stored one, and refuses a big integer there', async () => {
    const metas: Record<string, string> = {
      'orig-a':
        '{"status": "FAILURE", "name": "billing.charge", "args": [1.0, {"x": [true]}], "kwargs": {}, "queue": "payments", "result": NaN}',
      'orig-b': '{"status": "FAILURE", "name": "billing.charge", "args": [12345678901234567890], "kwargs": {}, "queue": null}',
    };
    const results = { raw: async (id: string) => metas[id] ?? null } as unknown as ResultBackend;
    const retrier = new TaskRetrier(database.db, database.dialect, publisher, results, () => T0 + 10);
    nextId = 'from-meta';
    const report = await retrier.run({ kind: 'retry', tasks: ['orig-a', 'orig-b'], dryRun: false, chunk: 10, pauseMs: 0 });
    expect(report.tasks).toEqual({ 'orig-a': 'from-meta' });
    expect(report.refused['orig-b']).toMatch(/^arguments are not recoverable exactly: args in the result backend: .*2\^53/);
    expect(sent.at(-1)).toMatchObject({ queue: 'payments', exactJson: { args: '[1.0,{"x":[true]}]', kwargs: '{}' } });
  });
});
