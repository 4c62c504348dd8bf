// Requests that change something are POST, and with a session they carry the
// session's CSRF token (X-CSRF-Token from htmx, or the _csrf form field);
// a cross-site Origin or Sec-Fetch-Site is refused whoever is asking. Every
// POST route of the app is walked, so a new action cannot skip the check.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/auth/middleware';
import { testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { type FakeOAuthServer, startFakeOAuth } from '../support/fake-oauth';
import {
  type App,
  BASIC,
  basicHeader,
  concretePath,
  handlerRoutes,
  oauthInput,
  type RecordingControl,
  recordingControl,
  type SignedIn,
  signIn,
} from './support';

const ORIGIN = 'http://stalk.test';
let database: Awaited<ReturnType<typeof openTestDatabase>>;
let fake: FakeOAuthServer;
let app: App;
let control: RecordingControl;
let alice: SignedIn;
let bob: SignedIn;

beforeAll(async () => {
  [database, fake] = await Promise.all([openTestDatabase('sqlite'), startFakeOAuth()]);
  control = recordingControl();
  app = testApp(database, { control, auth: oauthInput(fake, 'google') });
  alice = await signIn(app, fake, ORIGIN, { email: 'alice@example.com' });
  bob = await signIn(app, fake, ORIGIN, { email: 'bob@example.com' });
});
afterAll(async () => {
  await Promise.all([fake?.close(), database?.drop()]);
});

const post = (path: string, headers: Record<string, string>, body?: BodyInit) =>
  app.request(`${ORIGIN}${path}`, { method: 'POST', headers, ...(body ? { body } : {}) });

describe('every POST route', () => {
  const postRoutes = () =>
    handlerRoutes(app)
      .filter((r) => r.method === 'POST')
      .map((r) => concretePath(r.path));

  it('has routes to check (the walk is not empty)', () => {
    expect(postRoutes()).toEqual(
      expect.arrayContaining([
        '/logout',
        '/api/worker/pool/grow/w1@host',
        '/tasks/send',
        '/worker/w1@host/inspect',
        '/api/task/revoke/task-1',
      ]),
    );
  });

  it('refuses a session without the CSRF token, or with another session’s, and runs nothing', async () => {
    const before = control.commands.length;
    for (const path of postRoutes()) {
      for (const [label, headers] of [
        ['no token', { cookie: alice.cookie }],
        ['empty token', { cookie: alice.cookie, 'X-CSRF-Token': '' }],
        ['another session’s token', { cookie: alice.cookie, 'X-CSRF-Token': bob.csrf }],
        [
          'a token one character off',
          { cookie: alice.cookie, 'X-CSRF-Token': alice.csrf.slice(0, -1) + (alice.csrf.endsWith('A') ? 'B' : 'A') },
        ],
      ] as const) {
        const response = await post(path, headers);
        expect(response.status, `${path}: ${label}`).toBe(403);
        expect(response.headers.getSetCookie().join(), `${path} keeps the session`).not.toContain(`${SESSION_COOKIE}=;`);
      }
      const form = await post(
        path,
        { cookie: alice.cookie, 'content-type': 'application/x-www-form-urlencoded' },
        new URLSearchParams({ _csrf: bob.csrf, n: '1' }),
      );
      expect(form.status, `${path}: another session’s form token`).toBe(403);
    }
    expect(control.commands.length).toBe(before);
  });

  it('passes the session with its token (header), so the request reaches its handler', async () => {
    for (const path of postRoutes()) {
      if (path === '/logout') continue;
      const response = await post(path, { cookie: alice.cookie, 'X-CSRF-Token': alice.csrf, 'HX-Request': 'true' });
      expect([401, 403], `${path}: ${response.status} ${await response.clone().text()}`).not.toContain(response.status);
    }
    expect(control.commands.some((c) => c.user === 'alice@example.com' && c.command.kind === 'revoke')).toBe(true);
  });
});

describe('control actions', () => {
  it('take the token as the _csrf form field (url-encoded and multipart), and run as the signed-in user', async () => {
    const grow = await post(
      '/api/worker/pool/grow/w1@host',
      { cookie: alice.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      new URLSearchParams({ _csrf: alice.csrf, n: '3' }),
    );
    expect(grow.status).toBe(200);
    expect(control.commands.at(-1)).toMatchObject({
      user: 'alice@example.com',
      command: { kind: 'worker', action: 'pool_grow', worker: 'w1@host', args: { n: 3 } },
    });

    const multipart = new FormData();
    multipart.set('_csrf', alice.csrf);
    multipart.set('name', 'billing.charge');
    multipart.set('args', '[1]');
    const send = await post('/tasks/send', { cookie: alice.cookie }, multipart);
    expect(send.status).toBe(200);
    expect(await send.text()).toContain('Sent');
    expect(control.commands.at(-1)).toMatchObject({
      user: 'alice@example.com',
      command: { kind: 'send', name: 'billing.charge', args: [1] },
    });
  });

  it('refuse a cross-site request even with the right token: Origin of another host, Origin null, Sec-Fetch-Site cross-site', async () => {
    const before = control.commands.length;
    for (const extra of <Record<string, string>[]>[
      { origin: 'http://evil.example' },
      { origin: 'http://stalk.test.evil.example' },
      { origin: 'http://stalk.test:8080' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: 'http://sub.stalk.test' },
    ]) {
      const response = await post('/api/worker/pool/grow/w1@host', { cookie: alice.cookie, 'X-CSRF-Token': alice.csrf, ...extra });
      expect(response.status, JSON.stringify(extra)).toBe(403);
    }
    expect(control.commands.length).toBe(before);
    // The same request from our own pages passes.
    const own = await post('/api/worker/pool/grow/w1@host', {
      cookie: alice.cookie,
      'X-CSRF-Token': alice.csrf,
      origin: ORIGIN,
      'sec-fetch-site': 'same-origin',
    });
    expect(own.status).toBe(200);
  });

  it('refuse a cross-site request carrying Basic credentials (a browser would send them by itself)', async () => {
    const basicApp = testApp(database, { control, auth: { basicAuth: BASIC } });
    const authorization = basicHeader('admin', 's3cret-Pass');
    const crossSite = await basicApp.request(`${ORIGIN}/api/worker/pool/shrink/w1@host`, {
      method: 'POST',
      headers: { authorization, origin: 'http://evil.example' },
    });
    expect(crossSite.status).toBe(403);
    const script = await basicApp.request(`${ORIGIN}/api/worker/pool/shrink/w1@host`, { method: 'POST', headers: { authorization } });
    expect(script.status).toBe(200);
    expect(control.commands.at(-1)).toMatchObject({ user: 'admin', command: { action: 'pool_shrink' } });
  });

  it('are not reachable by GET (or HEAD), even signed in', async () => {
    const before = control.commands.length;
    const postOnly = handlerRoutes(app)
      .filter((r) => r.method === 'POST' && !handlerRoutes(app).some((g) => g.method === 'GET' && g.path === r.path))
      .map((r) => concretePath(r.path));
    expect(postOnly.length).toBeGreaterThan(10);
    for (const path of postOnly) {
      for (const method of ['GET', 'HEAD']) {
        const response = await app.request(`${ORIGIN}${path}`, { method, headers: { cookie: alice.cookie } });
        expect(response.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
        expect(response.headers.getSetCookie().join(), `${method} ${path}`).not.toContain(`${SESSION_COOKIE}=;`);
      }
      const query = await app.request(`${ORIGIN}${path}?_csrf=${alice.csrf}&n=1`, { headers: { cookie: alice.cookie } });
      expect(query.status, `GET ${path} with the token in the query`).toBeGreaterThanOrEqual(400);
    }
    expect(control.commands.length).toBe(before);
  });

  it('do not take the token from the query string', async () => {
    const response = await post(`/api/worker/pool/grow/w1@host?_csrf=${alice.csrf}`, { cookie: alice.cookie });
    expect(response.status).toBe(403);
  });
});
