// With auth on, every route of the app (read from Hono's own route table,
// so a route added later is walked too) answers a request without
// credentials with a redirect to sign in (pages) or 401 (API, metrics, and
// every POST). Only the routes in PUBLIC, a short explicit list, answer.

import { describe, expect, it } from 'vitest';
import type { AuthInput } from '../../src/auth/config';
import { SESSION_COOKIE } from '../../src/auth/middleware';
import { testApp } from '../support/app';
import type { openTestDatabase } from '../support/databases';
import type { FakeOAuthServer } from '../support/fake-oauth';
import {
  type App,
  BASIC,
  basicHeader,
  concretePath,
  handlerRoutes,
  oauthInput,
  recordingControl,
  useDatabaseAndFakeOAuth,
} from './support';

/** Served without credentials when auth is on ('/static/*' too, see headers.test.ts; '/metrics' only with --metrics-open, see metrics-access.test.ts). */
// /favicon.ico only redirects to the icon among the static files, which need no login either.
const PUBLIC = ['GET /healthcheck', 'GET /login', 'GET /favicon.ico'];

const ORIGIN = 'http://stalk.test';
let database: Awaited<ReturnType<typeof openTestDatabase>>;
let fake: FakeOAuthServer;

useDatabaseAndFakeOAuth((d, f) => ([database, fake] = [d, f]));

const isApi = (path: string) => path.startsWith('/api/') || path === '/metrics';

/** What a request without (good) credentials gets, for every route; returns how many were walked. */
async function walk(app: App, prefix: string, mode: 'oauth' | 'basic', headers: Record<string, string> = {}) {
  const control = recordingControl();
  const routes = handlerRoutes(app);
  const keys = routes.map((r) => `${r.method} ${r.path.slice(prefix.length) || '/'}`);
  // The public list names real routes (it cannot go stale and hide a rename).
  for (const entry of PUBLIC) expect(keys, entry).toContain(entry);
  let walked = 0;
  for (const route of routes) {
    const bare = route.path.slice(prefix.length) || '/';
    if (PUBLIC.includes(`${route.method} ${bare}`)) continue;
    const methods = route.method === 'ALL' ? ['GET', 'POST'] : route.method === 'GET' ? ['GET', 'HEAD'] : [route.method];
    for (const method of methods) {
      const path = prefix + concretePath(bare);
      const response = await app.request(`${ORIGIN}${path}`, { method, headers });
      const label = `${method} ${route.path} (${path})`;
      if (mode === 'oauth' && !isApi(bare) && (method === 'GET' || method === 'HEAD')) {
        expect(response.status, label).toBe(302);
        expect(response.headers.get('location'), label).toBe(`${prefix}/login?next=${encodeURIComponent(path)}`);
      } else {
        expect(response.status, label).toBe(401);
        if (mode === 'basic') expect(response.headers.get('www-authenticate'), label).toMatch(/^Basic realm=/);
      }
      if (method !== 'HEAD') expect(await response.text(), label).not.toMatch(/<table|task-1|w1@host/);
      walked++;
    }
  }
  expect(control.commands).toHaveLength(0);
  return walked;
}

describe('every route without credentials', () => {
  it('OAuth on: pages redirect to sign in, the API and POSTs answer 401', async () => {
    const app = testApp(database, { control: recordingControl(), auth: oauthInput(fake, 'google') });
    // Not a tautology: the table holds the pages, the API and the actions.
    const walked = await walk(app, '', 'oauth');
    expect(walked).toBeGreaterThan(40);
  });

  it("OAuth on: a live panel's htmx poll gets 401 and HX-Redirect to sign in, back to the page it was on", async () => {
    const app = testApp(database, { auth: oauthInput(fake, 'google'), ui: { prefix: '/flower' } });
    const poll = await app.request(`${ORIGIN}/flower/workers`, {
      headers: { 'HX-Request': 'true', 'HX-Current-URL': `${ORIGIN}/flower/workers?x=1` },
    });
    expect(poll.status).toBe(401);
    expect(poll.headers.get('hx-redirect')).toBe(`/flower/login?next=${encodeURIComponent('/flower/workers?x=1')}`);
    const elsewhere = await app.request(`${ORIGIN}/flower/tasks`, {
      headers: { 'HX-Request': 'true', 'HX-Current-URL': 'https://evil.example/flower/tasks' },
    });
    expect(elsewhere.headers.get('hx-redirect')).toBe('/flower/login');
  });

  it('Basic auth on, under a URL prefix: everything answers 401 with a Basic challenge', async () => {
    const app = testApp(database, { auth: { basicAuth: BASIC }, ui: { prefix: '/flower' } });
    expect(handlerRoutes(app).every((r) => r.path === '/flower' || r.path.startsWith('/flower/'))).toBe(true);
    expect(await walk(app, '/flower', 'basic')).toBeGreaterThan(40);
  });

  it('with wrong credentials of every kind at once, nothing opens', async () => {
    const app = testApp(database, { auth: { basicAuth: BASIC } as Partial<AuthInput> });
    await walk(app, '', 'basic', { authorization: basicHeader('admin', 'wrong'), cookie: `${SESSION_COOKIE}=not.a.jwt` });
    await walk(app, '', 'basic', { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.' });
  });

  it('the public routes answer without credentials', async () => {
    const app = testApp(database, { auth: oauthInput(fake, 'google') });
    expect((await app.request(`${ORIGIN}/healthcheck`)).status).toBe(200);
    const icon = await app.request(`${ORIGIN}/favicon.ico`);
    expect([icon.status, icon.headers.get('location')]).toEqual([301, '/static/favicon.svg']);
    const login = await app.request(`${ORIGIN}/login`);
    expect(login.status).toBe(302);
    expect(login.headers.get('location')).toMatch(new RegExp(`^${fake.base('google')}/`));
  });

  // (A trailing slash is the same route: the app is not strict, and the check sees the path as the router does.)
  it('look-alike paths do not slip past the check', async () => {
    const app = testApp(database, { control: recordingControl(), auth: oauthInput(fake, 'google') });
    for (const path of [
      '/api/workers/',
      '/api//workers',
      '//api/workers',
      '/api/%77orkers',
      '/%61pi/workers',
      '/API/workers',
      '/static/../api/workers',
      '/static/%2e%2e/api/workers',
      '/static/..%2fapi/workers',
      '/healthcheck/../api/workers',
      '/login/../api/workers',
      '/login/',
      '/login%2f../api/workers',
      '/api/workers;/healthcheck',
      '/api/workers?/healthcheck',
      '/api/workers#/healthcheck',
      '/tasks/',
      '/task/x%2f..%2f..%2fhealthcheck',
    ]) {
      const response = await app.request(`${ORIGIN}${path}`);
      expect([302, 401, 404], `${path}: ${response.status}`).toContain(response.status);
      expect(await response.text(), path).not.toMatch(/<table|"hostname"|"task-types"/);
    }
  });
});
