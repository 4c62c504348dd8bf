// Security headers on every response: pages, fragments, API, redirects,
// 401/403/404, errors, the sign-in flow, metrics and static files; HSTS
// only over https.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDatabase } from '../support/databases';
import { type FakeOAuthServer, startFakeOAuth } from '../support/fake-oauth';
import { type App, appWithStatic, BASIC, basicHeader, oauthInput } from './support';

const ORIGIN = 'http://stalk.test';
const ADMIN = basicHeader('admin', 's3cret-Pass');

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let fake: FakeOAuthServer;
let basic: App;
let oauth: App;
let prefixed: App;

beforeAll(async () => {
  [database, fake] = await Promise.all([openTestDatabase('sqlite'), startFakeOAuth()]);
  const failing = async () => {
    throw new Error('health check exploded');
  };
  basic = appWithStatic(database, { auth: { basicAuth: BASIC }, health: failing });
  oauth = appWithStatic(database, { auth: oauthInput(fake, 'github') });
  prefixed = appWithStatic(database, { auth: { basicAuth: BASIC }, prefix: '/flower' });
});
afterAll(async () => {
  await Promise.all([fake?.close(), database?.drop()]);
});

function expectSecurityHeaders(response: Response, label: string) {
  const h = response.headers;
  const csp = h.get('content-security-policy') ?? '';
  expect(csp, `${label}: CSP`).toContain("default-src 'self'");
  expect(csp, `${label}: CSP frame-ancestors`).toContain("frame-ancestors 'none'");
  expect(csp, `${label}: CSP object-src`).toContain("object-src 'none'");
  expect(csp, `${label}: CSP base-uri`).toMatch(/base-uri '(none|self)'/);
  // No inline script may run (task data is rendered, never executed).
  expect(/script-src[^;]*'unsafe-inline'/.test(csp), `${label}: script-src 'unsafe-inline'`).toBe(false);
  expect(/script-src[^;]*'unsafe-eval'/.test(csp), `${label}: script-src 'unsafe-eval'`).toBe(false);
  expect(h.get('x-content-type-options'), `${label}: nosniff`).toBe('nosniff');
  expect(h.get('x-frame-options'), `${label}: X-Frame-Options`).toBe('DENY');
  expect(h.get('referrer-policy'), `${label}: Referrer-Policy`).toMatch(/^(same-origin|no-referrer|strict-origin(-when-cross-origin)?)$/);
  expect(h.get('cross-origin-opener-policy'), `${label}: COOP`).toBe('same-origin');
}

describe('security headers', () => {
  it('are on every kind of response', async () => {
    const cases: [string, App, string, RequestInit, number][] = [
      ['page', basic, '/tasks', { headers: { authorization: ADMIN } }, 200],
      ['dashboard', basic, '/', { headers: { authorization: ADMIN } }, 200],
      ['htmx fragment', basic, '/workers', { headers: { authorization: ADMIN, 'HX-Request': 'true' } }, 200],
      ['HEAD of a page', basic, '/tasks', { method: 'HEAD', headers: { authorization: ADMIN } }, 200],
      ['API', basic, '/api/workers', { headers: { authorization: ADMIN } }, 200],
      ['API 404', basic, '/api/task/info/missing', { headers: { authorization: ADMIN } }, 404],
      ['API 400', basic, '/api/worker/pool/grow/w1?n=abc', { method: 'POST', headers: { authorization: ADMIN } }, 400],
      ['API 401', basic, '/api/workers', {}, 401],
      ['page 401', basic, '/tasks', {}, 401],
      ['page 404', basic, '/no/such/page', { headers: { authorization: ADMIN } }, 404],
      [
        'cross-site 403',
        basic,
        '/api/worker/pool/grow/w1',
        { method: 'POST', headers: { authorization: ADMIN, origin: 'http://evil.example' } },
        403,
      ],
      ['500 (a failing dependency)', basic, '/healthcheck', {}, 500],
      ['metrics', basic, '/metrics', { headers: { authorization: ADMIN } }, 200],
      ['/login with Basic auth only', basic, '/login', {}, 302],
      ['redirect to sign in', oauth, '/tasks', {}, 302],
      ['redirect to the provider', oauth, '/login', {}, 302],
      ['sign-in refused (no state)', oauth, '/login?code=abc', {}, 400],
      ['healthcheck', oauth, '/healthcheck', {}, 200],
      ['page under a prefix', prefixed, '/flower/tasks', { headers: { authorization: ADMIN } }, 200],
      ['404 under a prefix', prefixed, '/flower/nope', { headers: { authorization: ADMIN } }, 404],
    ];
    for (const [label, app, path, init, status] of cases) {
      const response = await app.request(`${ORIGIN}${path}`, init);
      expect(response.status, label).toBe(status);
      expectSecurityHeaders(response, label);
    }
  });

  it('HSTS only over https: directly, or as a trusted proxy says (--trust-proxy), never as any client says', async () => {
    const hsts = async (app: App, url: string, headers: Record<string, string> = {}) =>
      (await app.request(url, { headers: { authorization: ADMIN, ...headers } })).headers.get('strict-transport-security');
    expect(await hsts(basic, `${ORIGIN}/healthcheck`)).toBeNull();
    expect(await hsts(oauth, 'https://stalk.test/healthcheck')).toMatch(/^max-age=\d{7,}/);
    // Without --trust-proxy a client's header is not believed.
    expect(await hsts(basic, `${ORIGIN}/tasks`, { 'x-forwarded-proto': 'https' })).toBeNull();
    const proxied = appWithStatic(database, { auth: { basicAuth: BASIC, trustProxy: true } });
    expect(await hsts(proxied, `${ORIGIN}/tasks`, { 'x-forwarded-proto': 'https' })).toMatch(/^max-age=\d{7,}/);
    // The nearest proxy appends last: it saw plain http.
    expect(await hsts(proxied, `${ORIGIN}/tasks`, { 'x-forwarded-proto': 'https, http' })).toBeNull();
    expect(await hsts(proxied, `${ORIGIN}/tasks`, { 'x-forwarded-proto': 'http' })).toBeNull();
  });

  it('a missing static file is a 404 with the headers (and no auth bypass past /static/)', async () => {
    const response = await basic.request(`${ORIGIN}/static/missing.css`);
    expect(response.status).toBe(404);
    expectSecurityHeaders(response, 'static 404');
  });

  // Static handlers answer before routing: the headers must still be there
  // (nosniff on a user's --static-path files, the CSP).
  it('are on static files', async () => {
    for (const path of ['/static/stalk.css', '/static/stalk.js']) {
      const response = await basic.request(`${ORIGIN}${path}`);
      expect(response.status, path).toBe(200);
      expectSecurityHeaders(response, path);
    }
    const prefixedStatic = await prefixed.request(`${ORIGIN}/flower/static/stalk.css`);
    expect(prefixedStatic.status).toBe(200);
    expectSecurityHeaders(prefixedStatic, 'static under a prefix');
  });

  // Outside the URL prefix no other middleware runs.
  it('are on a request outside the URL prefix', async () => {
    const response = await prefixed.request(`${ORIGIN}/elsewhere`);
    expect(response.status).toBe(404);
    expectSecurityHeaders(response, 'outside the prefix');
  });
});
