// The task page's actions and live part, through app.request(): Abort only
// with a result backend, what the page's actions say they did, and the live
// fragment that polls until the task is final.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlClient, type ControlCommand, outcomeFor } from '../../src/shared/control';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { received, revoked, started } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T0 = 1_900_000_000;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const HTMX = { 'HX-Request': 'true' };

describe.each(DIALECTS)('task page actions and live part on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  const commands: ControlCommand[] = [];
  const control: ControlClient = {
    run: async (command) => {
      commands.push(command);
      return outcomeFor(command, { ok: true, result: command.kind === 'abort' ? `Aborted '${command.task}'` : 'done' });
    },
  };

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    for (const e of [
      received({ uuid: 'run-1', name: 'slow.job' }, T0),
      started({ uuid: 'run-1' }, T0 + 1),
      received({ uuid: 'gone-1', name: 'slow.job' }, T0),
      started({ uuid: 'gone-1' }, T0 + 1),
      revoked({ uuid: 'gone-1' }, T0 + 2, true),
    ])
      batch.add(e, workers);
    await store(database, batch, workers);
  });
  afterAll(async () => database.close());

  const abortForm = 'action="/api/task/abort/run-1"';

  it('offers Abort on a running task only when the collector has a result backend (or it cannot tell)', async () => {
    const withBackend = await (await testApp(database, { control, resultBackend: true }).request('/task/run-1')).text();
    expect(withBackend).toContain(abortForm);
    const unknown = await (await testApp(database, { control }).request('/task/run-1')).text();
    expect(unknown).toContain(abortForm);
    const without = await (await testApp(database, { control, resultBackend: false }).request('/task/run-1')).text();
    expect(without).not.toContain(abortForm);
    // Terminate and Revoke stay.
    expect(without).toContain('action="/api/task/revoke/run-1"');
    expect(without).toContain('name="signal"');
  });

  it('says what abort and terminate really did on the page; the API keeps Flower’s messages', async () => {
    const app = testApp(database, { control, resultBackend: true });
    const post = (path: string, body: Record<string, string>, headers: Record<string, string>) =>
      app.request(path, { method: 'POST', body: new URLSearchParams(body), headers: { ...FORM, ...headers } });

    const abort = await post('/api/task/abort/run-1', {}, HTMX);
    expect(await abort.text()).toBe(
      '<output class="outcome ok">Abort requested: the task stops if it checks is_aborted() (AbortableTask)</output>',
    );
    const kill = await post('/api/task/revoke/run-1', { terminate: 'true', signal: 'SIGKILL' }, HTMX);
    expect(await kill.text()).toBe('<output class="outcome ok">Terminated (SIGKILL)</output>');
    const term = await post('/api/task/revoke/run-1', { terminate: 'true' }, HTMX);
    expect(await term.text()).toBe('<output class="outcome ok">Terminated (SIGTERM)</output>');
    const revoke = await post('/api/task/revoke/run-1', { terminate: 'false' }, HTMX);
    expect(await revoke.text()).toBe('<output class="outcome ok">Revoked: workers will discard the task</output>');

    expect(await (await post('/api/task/abort/run-1', {}, {})).json()).toEqual({ message: "Aborted 'run-1'" });
    expect(await (await post('/api/task/revoke/run-1', { terminate: 'true' }, {})).json()).toEqual({ message: "Revoked 'run-1'" });
    expect(commands.map((c) => c.kind)).toEqual(['abort', 'revoke', 'revoke', 'revoke', 'abort', 'revoke']);
  });

  it('answers its poll with the live part alone: polling while running, not once final', async () => {
    const app = testApp(database, { control, ui: { refreshSeconds: 2 } });
    const running = await app.request('/task/run-1', { headers: HTMX });
    const html = await running.text();
    expect(html).toMatch(/^<div id="task-live" hx-get="\/task\/run-1" hx-trigger="every 2s" hx-swap="morph:outerHTML"/);
    expect(html).not.toContain('<html');
    expect(html).toContain('id="task-results"');
    expect(html).toContain('id="timeline"');
    // Unchanged: 304 for the ETag it carried.
    const tag = running.headers.get('ETag');
    expect(tag).toBeTruthy();
    const again = await app.request('/task/run-1', { headers: { ...HTMX, 'If-None-Match': tag ?? '' } });
    expect(again.status).toBe(304);

    const final = await (await app.request('/task/gone-1', { headers: HTMX })).text();
    expect(final).toMatch(/^<div id="task-live" hx-get="\/task\/gone-1" hx-swap="morph:outerHTML"/);
    expect(final).not.toContain('hx-trigger');
    expect(final).not.toContain('id="task-actions"');

    const page = await (await app.request('/task/run-1')).text();
    expect(page).toContain('<html');
    expect(page).toContain('hx-trigger="every 2s"');
  });

  it('does not poll with live refresh off', async () => {
    const html = await (await testApp(database, { control, ui: { refreshSeconds: 0 } }).request('/task/run-1', { headers: HTMX })).text();
    expect(html).not.toContain('hx-trigger');
  });
});
