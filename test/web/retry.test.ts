// The retry routes in-process: read-only mode refuses them before any
// command and hides the buttons; a refusal from the collector is a 409 with
// its reason (or an inline message for htmx); a bulk retry that matches
// nothing sends no command; an over-long bulk is refused up front.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlClient, ControlCommand } from '../../src/shared/control';
import { outcomeFor } from '../../src/shared/control';
import { failed, received } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';

const T0 = 1_900_000_000;

describe('retry routes', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  const commands: ControlCommand[] = [];
  const control: ControlClient = {
    run: async (command) => {
      commands.push(command);
      const tasks = command.kind === 'retry' ? command.tasks : [];
      return outcomeFor(command, {
        ok: true,
        result: {
          tasks: {},
          refused: Object.fromEntries(tasks.map((t) => [t, 'arguments are not recoverable exactly: args it holds bytes'])),
        },
      });
    },
  };

  beforeAll(async () => {
    database = await openTestDatabase('sqlite');
    const story = { uuid: 'bad-1', name: 'billing.charge' };
    await store(database, [received(story, T0), failed(story, T0 + 1)]);
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('read-only mode refuses both routes with 403 before any command, and shows no retry button', async () => {
    const app = testApp(database, { now: T0 + 5, readOnly: true, control });
    expect((await app.request('/api/task/retry/bad-1', { method: 'POST' })).status).toBe(403);
    expect((await app.request('/api/tasks/retry?state=FAILURE&limit=5', { method: 'POST' })).status).toBe(403);
    expect(commands).toEqual([]);
    expect(await (await app.request('/task/bad-1')).text()).not.toContain('task-retry');
    expect(await (await app.request('/tasks?state=FAILURE')).text()).not.toContain('bulk-retry');
  });

  it('answers a refusal with 409 and the reason, or inline for htmx', async () => {
    const app = testApp(database, { now: T0 + 5, control });
    const api = await app.request('/api/task/retry/bad-1', { method: 'POST' });
    expect(api.status).toBe(409);
    expect(await api.json()).toEqual({ error: 'arguments are not recoverable exactly: args it holds bytes' });
    const htmx = await app.request('/api/task/retry/bad-1', { method: 'POST', headers: { 'HX-Request': 'true' } });
    expect(await htmx.text()).toContain('<output class="outcome bad">arguments are not recoverable exactly');
    expect(commands.at(-1)).toEqual({ kind: 'retry', tasks: ['bad-1'], dryRun: false, chunk: 1, pauseMs: 0 });
    expect((await app.request('/api/task/retry/unknown-1', { method: 'POST' })).status).toBe(404);
  });

  it('bulk: no command when nothing matches; refuses a run whose pauses would be too long', async () => {
    const app = testApp(database, { now: T0 + 5, control });
    const before = commands.length;
    const none = await app.request('/api/tasks/retry?state=FAILURE&taskname=nothing.here&limit=5', { method: 'POST' });
    expect(await none.json()).toEqual({ retried: 0, refused: {}, tasks: {} });
    expect(commands.length).toBe(before);
    const slow = await app.request('/api/tasks/retry?state=FAILURE&limit=10000&chunk=1&pause=1', { method: 'POST' });
    expect(slow.status).toBe(400);
    expect(await slow.text()).toMatch(/too long/);
    const some = await app.request('/api/tasks/retry?state=FAILURE&limit=5&dry_run=1', { method: 'POST' });
    expect(await some.json()).toMatchObject({ retried: 0, dry_run: true, refused: { 'bad-1': expect.stringMatching(/bytes/) } });
    expect(commands.at(-1)).toMatchObject({
      kind: 'retry',
      tasks: ['bad-1'],
      dryRun: true,
      chunk: 100,
      pauseMs: 100,
      filters: { state: 'FAILURE' },
    });
  });
});
