// Live panels' polls: the fragment carries an ETag (a hash of its body) and a
// poll naming it gets 304 with no body; a change, or a full page, gets 200.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { received, succeedingTask, workerEvent } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T0 = 1_900_000_000;
const HX = { 'HX-Request': 'true' };

describe.each(DIALECTS)('fragment ETags on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    for (const e of succeedingTask({ uuid: 'etag-1', name: 'billing.charge' }, T0)) batch.add(e, workers);
    batch.add(workerEvent('worker-online', 'w1@host', T0 + 1), workers);
    await store(database, batch, workers);
    await database.db
      .insertInto('queues')
      .values({ name: 'celery', messages: 3, ready: null, unacked: null, consumers: null, measured_at: T0 + 1 })
      .execute();
  });
  afterAll(async () => {
    await database?.drop();
  });

  async function get(app: ReturnType<typeof testApp>, path: string, headers: Record<string, string> = {}) {
    const response = await app.request(path, { headers });
    return { status: response.status, body: await response.text(), headers: response.headers };
  }

  it.each(['/tasks', '/tasks?state=SUCCESS', '/broker', '/workers', '/', '/stats', '/stats/x.y?period=1h'])(
    '%s: an unchanged fragment is answered 304 to its ETag',
    async (path) => {
      const app = testApp(database, { now: T0 + 2 });
      const first = await get(app, path, HX);
      expect(first.status).toBe(200);
      const tag = first.headers.get('etag');
      expect(tag).toMatch(/^"[0-9a-f]{40}"$/);
      const again = await get(app, path, { ...HX, 'If-None-Match': tag ?? '' });
      expect(again.status).toBe(304);
      expect(again.body).toBe('');
      expect(again.headers.get('etag')).toBe(tag);
      expect(again.headers.get('vary')).toContain('HX-Request');
      // Another tag (what an older render showed) gets the body.
      const other = await get(app, path, { ...HX, 'If-None-Match': '"0000000000000000000000000000000000000000"' });
      expect(other.status).toBe(200);
      expect(other.body).toBe(first.body);
    },
  );

  it('leaves full pages without an ETag, and answers them whole whatever If-None-Match says', async () => {
    const app = testApp(database, { now: T0 + 2 });
    const tag = (await get(app, '/tasks', HX)).headers.get('etag') ?? '';
    const page = await get(app, '/tasks', { 'If-None-Match': tag });
    expect(page.status).toBe(200);
    expect(page.headers.get('etag')).toBeNull();
    expect(page.body).toMatch(/^<html/);
  });

  it('workers panel: a later render of the same workers keeps its ETag though its "Updated" time moved', async () => {
    const earlier = await get(testApp(database, { now: T0 + 2 }), '/workers', HX);
    const later = testApp(database, { now: T0 + 3 });
    const whole = await get(later, '/workers', HX);
    expect(whole.body).not.toBe(earlier.body); // the time differs
    expect(whole.body.replace(/data-updated="[^"]*" datetime="[^"]*">[^<]*/, '')).toBe(
      earlier.body.replace(/data-updated="[^"]*" datetime="[^"]*">[^<]*/, ''),
    );
    expect(whole.headers.get('etag')).toBe(earlier.headers.get('etag'));
    const poll = await get(later, '/workers', { ...HX, 'If-None-Match': earlier.headers.get('etag') ?? '' });
    expect(poll.status).toBe(304);
  });

  it('a new task changes the tasks fragment and its ETag: the old tag gets 200 with the new row', async () => {
    const app = testApp(database, { now: T0 + 2 });
    const before = await get(app, '/tasks', HX);
    const batch = new EventBatch();
    batch.add(received({ uuid: 'etag-2', name: 'mail.send' }, T0 + 3), new Map());
    await store(database, batch);
    const after = await get(app, '/tasks', { ...HX, 'If-None-Match': before.headers.get('etag') ?? '' });
    expect(after.status).toBe(200);
    expect(after.body).toContain('data-task="etag-2"');
    expect(after.headers.get('etag')).not.toBe(before.headers.get('etag'));
  });

  it('panels swap by morphing', async () => {
    const app = testApp(database, { now: T0 + 2 });
    for (const path of ['/tasks', '/workers', '/broker']) {
      const { body } = await get(app, path, HX);
      expect(body).toMatch(/^<section id="\w+-panel" hx-get="[^"]*" hx-trigger="every 3s" hx-swap="morph:outerHTML"/);
    }
    const page = await get(app, '/tasks');
    expect(page.body).toContain('<body hx-ext="morph"');
    expect(page.body).toContain('src="/static/vendor/idiomorph-ext-');
  });
});
