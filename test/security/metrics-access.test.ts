// /metrics with auth on: refused without credentials; open to anyone with
// --metrics-open (and nothing else opens with it); a bearer --metrics-token
// reads /metrics and nothing else; the usual credentials read it too.

import { describe, expect, it } from 'vitest';
import { secretKey, signToken } from '../../src/auth/tokens';
import { testApp } from '../support/app';
import type { openTestDatabase } from '../support/databases';
import type { FakeOAuthServer } from '../support/fake-oauth';
import { BASIC, basicHeader, oauthInput, SECRET, signIn, useDatabaseAndFakeOAuth } from './support';

const ORIGIN = 'http://stalk.test';
const METRICS_TOKEN = 'prometheus-scrape-token-0123456789abcdef';
let database: Awaited<ReturnType<typeof openTestDatabase>>;
let fake: FakeOAuthServer;

useDatabaseAndFakeOAuth((d, f) => ([database, fake] = [d, f]));

const scrape = async (app: ReturnType<typeof testApp>, headers: Record<string, string> = {}, path = '/metrics') => {
  const response = await app.request(`${ORIGIN}${path}`, { headers });
  return { status: response.status, body: await response.text(), location: response.headers.get('location') };
};

describe('/metrics with auth on', () => {
  it('is refused without credentials (401, not a sign-in redirect), read with them', async () => {
    const basic = testApp(database, { auth: { basicAuth: BASIC } });
    expect((await scrape(basic)).status).toBe(401);
    const ok = await scrape(basic, { authorization: basicHeader('ops', '0ther:pass') });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatch(/^# (HELP|TYPE) /m);

    const oauth = testApp(database, { auth: oauthInput(fake, 'google') });
    const refused = await scrape(oauth);
    expect(refused.status).toBe(401);
    expect(refused.location).toBeNull();
    const signed = await signIn(oauth, fake, ORIGIN, { email: 'sre@example.com' });
    expect((await scrape(oauth, { cookie: signed.cookie })).status).toBe(200);
    const apiToken = await signToken(secretKey(SECRET), 'api', {}, 600, 'prometheus');
    expect((await scrape(oauth, { authorization: `Bearer ${apiToken}` })).status).toBe(200);
  });

  it('--metrics-open serves /metrics to anyone, and opens nothing else', async () => {
    const app = testApp(database, { auth: { basicAuth: BASIC, metricsOpen: true } });
    expect((await scrape(app)).status).toBe(200);
    for (const path of ['/api/workers', '/tasks', '/metrics/x', '/api/metrics']) {
      expect((await scrape(app, {}, path)).status, path).toBe(401);
    }
    const prefixed = testApp(database, { auth: { basicAuth: BASIC, metricsOpen: true }, ui: { prefix: '/flower' } });
    expect((await scrape(prefixed, {}, '/flower/metrics')).status).toBe(200);
    expect((await scrape(prefixed, {}, '/flower/tasks')).status).toBe(401);
  });

  it('--metrics-token: the bearer token reads /metrics only; a wrong or partial token is refused', async () => {
    const app = testApp(database, { auth: { ...oauthInput(fake, 'okta'), metricsToken: METRICS_TOKEN } });
    expect((await scrape(app, { authorization: `Bearer ${METRICS_TOKEN}` })).status).toBe(200);
    expect((await scrape(app, { authorization: `bearer   ${METRICS_TOKEN}` })).status).toBe(200);
    for (const wrong of [METRICS_TOKEN.slice(0, -1), `${METRICS_TOKEN}x`, METRICS_TOKEN.toUpperCase(), '', 'x']) {
      expect((await scrape(app, { authorization: `Bearer ${wrong}` })).status, wrong).toBe(401);
    }
    expect((await scrape(app, { authorization: basicHeader('prometheus', METRICS_TOKEN) })).status).toBe(401);
    expect((await scrape(app, { cookie: `stalk_session=${METRICS_TOKEN}` })).status).toBe(401);
    for (const path of ['/api/workers', '/api/tasks', '/tasks', '/']) {
      const response = await scrape(app, { authorization: `Bearer ${METRICS_TOKEN}` }, path);
      expect([302, 401], `${path}: ${response.status}`).toContain(response.status);
    }
  });

  it('an empty --metrics-token is no token (an empty bearer does not match it)', async () => {
    const app = testApp(database, { auth: { basicAuth: BASIC, metricsToken: '' } });
    for (const authorization of ['Bearer ', 'Bearer', 'Bearer ""']) {
      expect((await scrape(app, { authorization })).status, authorization).toBe(401);
    }
  });
});
