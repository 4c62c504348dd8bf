// Task data is user data: with auth on (a signed-in page carries the user's
// name, a form with the CSRF token and htmx headers) task args, kwargs and
// results still render inert, and so does a hostile-looking signed-in name.
// The full no-auth check of every page is test/web/pages.test.ts ("renders
// task args, results and worker names inert"); this one is the auth-on case.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { received, succeeded } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { type FakeOAuthServer, startFakeOAuth } from '../support/fake-oauth';
import { oauthInput, signIn } from './support';

const ORIGIN = 'http://stalk.test';
const HOSTILE = '<script>alert(1)</script>';
const T0 = 1_900_000_000;
let database: Awaited<ReturnType<typeof openTestDatabase>>;
let fake: FakeOAuthServer;

beforeAll(async () => {
  [database, fake] = await Promise.all([openTestDatabase('sqlite'), startFakeOAuth()]);
  await store(database, [
    received(
      {
        uuid: 'xss-1',
        name: 'web.render',
        args: `('${HOSTILE}', '<img src=x onerror=alert(2)>')`,
        kwargs: `{'html': '"><svg onload=alert(3)>'}`,
      },
      T0,
    ),
    succeeded({ uuid: 'xss-1' }, T0 + 1, `'${HOSTILE}'`),
  ]);
});
afterAll(async () => {
  await Promise.all([fake?.close(), database?.drop()]);
});

it('renders task args, kwargs, results and the signed-in name inert, with auth on', async () => {
  const app = testApp(database, { now: T0 + 2, auth: oauthInput(fake, 'github') });
  // --auth '.*@example\.com' lets this verified address in; it must still render as text.
  const signed = await signIn(app, fake, ORIGIN, { email: '"><script>alert(4)</script>@example.com' });
  for (const path of ['/task/xss-1', '/tasks']) {
    const response = await app.request(`${ORIGIN}${path}`, { headers: { cookie: signed.cookie } });
    expect(response.status, path).toBe(200);
    const html = await response.text();
    expect(html, path).toContain(`<span class="muted">&quot;&gt;&lt;script&gt;alert(4)&lt;/script&gt;@example.com</span>`);
    expect(html, path).not.toMatch(/<script>alert|<img src=x|<svg onload/);
    expect(html, path).not.toMatch(/<[^>]*\son(error|load)=/);
    if (path === '/task/xss-1') {
      expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(html).toContain('&lt;img src=x onerror=alert(2)&gt;');
    }
  }
});
