// Control forms on the pages, through app.request(): what htmx gets back for
// refused input, and the limits tab once Celery reports a task's limits.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlClient, type ControlCommand, outcomeFor } from '../../src/shared/control';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { EventBatch } from '../../worker-collector/fold/batch';
import { registeredTask } from '../../templates/partials/worker-actions';
import { workerEvent } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T0 = 1_900_000_000;

describe('registered task entries', () => {
  it('splits the limits Celery appends from the task name', () => {
    expect(registeredTask('stalk.add [rate_limit=10/s]')).toEqual({ name: 'stalk.add', limits: 'rate_limit=10/s' });
    expect(registeredTask('a.b [rate_limit=1/m time_limit=(1, 2)]')).toEqual({ name: 'a.b', limits: 'rate_limit=1/m time_limit=(1, 2)' });
    expect(registeredTask('plain.task')).toEqual({ name: 'plain.task', limits: '' });
  });
});

describe.each(DIALECTS)('control forms on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: ReturnType<typeof testApp>;
  const commands: ControlCommand[] = [];

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    batch.add(workerEvent('worker-online', 'w1@host', T0), workers);
    await store(database, batch, workers);
    const replies = { timestamp: T0, registered: ['stalk.add [rate_limit=10/s]', 'stalk.echo'] };
    await database.db
      .insertInto('worker_inspect')
      .values({ hostname: 'w1@host', replies: JSON.stringify(replies), inspected_at: T0 })
      .execute();
    const control: ControlClient = {
      run: async (command) => {
        commands.push(command);
        return outcomeFor(command, { ok: true, result: 'ok' });
      },
    };
    app = testApp(database, { now: T0 + 1, control });
  });
  afterAll(async () => database.close());

  it('answers refused form input inline for htmx, and as JSON 400 for scripts', async () => {
    const form = new URLSearchParams({ workername: 'w1@host', ratelimit: 'fast' });
    const post = (headers: Record<string, string>) =>
      app.request('/api/task/rate-limit/stalk.add', {
        method: 'POST',
        body: form,
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      });
    const htmx = await post({ 'HX-Request': 'true' });
    expect(htmx.status).toBe(200);
    const html = await htmx.text();
    expect(html).toMatch(/^<output class="outcome bad">Invalid rate limit &#39;fast&#39;/);
    const script = await post({});
    expect(script.status).toBe(400);
    expect(((await script.json()) as { error: string }).error).toMatch(/Invalid rate limit 'fast'/);
    expect(commands).toHaveLength(0);
  });

  it('posts limits for the task name, not for the name with its current limits', async () => {
    const page = await (await app.request('/worker/w1@host')).text();
    expect(page).toContain('data-task-name="stalk.add"');
    expect(page).toContain('/api/task/rate-limit/stalk.add"');
    expect(page).not.toContain('rate-limit/stalk.add%20');
    // The limits in force, in their own column.
    expect(page).toContain('<td class="col-limits"><span class="current-limits">rate 10/s</span></td>');
  });
});
