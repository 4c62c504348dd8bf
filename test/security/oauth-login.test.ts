// Sign-in with Google, GitHub, GitLab and Okta through the fake OAuth server
// (test/support/fake-oauth.ts), every redirect followed by hand: the state
// and PKCE checks, the cookies' flags, the session reaching a page, sign-out,
// and the refusals (wrong or missing state, a replayed code, an unverified
// email, GitLab's group restriction, open redirects after sign-in).

import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { OAUTH_COOKIE, SESSION_COOKIE } from '../../src/auth/middleware';
import { randomToken, secretKey, signToken } from '../../src/auth/tokens';
import { testApp } from '../support/app';
import type { openTestDatabase } from '../support/databases';
import { FAKE_PROVIDERS, type FakeOAuthServer, type FakeProviderName } from '../support/fake-oauth';
import {
  appWithStatic,
  callback,
  consent,
  cookieFrom,
  oauthInput,
  recordingControl,
  SECRET,
  signIn,
  startSignIn,
  useDatabaseAndFakeOAuth,
} from './support';

const ORIGIN = 'http://stalk.test';
const PKCE: Record<FakeProviderName, boolean> = { google: true, github: false, gitlab: true, okta: true };

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let fake: FakeOAuthServer;

useDatabaseAndFakeOAuth((d, f) => ([database, fake] = [d, f]));

const appFor = (provider: FakeProviderName, origin = ORIGIN, extra = {}) =>
  testApp(database, { auth: oauthInput(fake, provider, origin, extra) });
const tokenRequests = () => fake.requests.filter((r) => r.endpoint === 'token');

describe.each(FAKE_PROVIDERS)('sign-in with %s', (provider) => {
  it('goes to the provider with state (and PKCE), comes back with a session that opens pages, and signs out', async () => {
    const app = appFor(provider);
    // Not signed in: a page sends the browser to /login, remembering where it was.
    const before = await app.request(`${ORIGIN}/broker?x=1`);
    expect(before.status).toBe(302);
    expect(before.headers.get('location')).toBe(`/login?next=${encodeURIComponent('/broker?x=1')}`);

    const { authorize, stateCookie } = await startSignIn(app, ORIGIN, '/broker');
    const q = authorize.searchParams;
    expect(authorize.origin + authorize.pathname).toMatch(new RegExp(`^${fake.base(provider)}/`));
    expect(q.get('response_type')).toBe('code');
    expect(q.get('redirect_uri')).toBe(`${ORIGIN}/login`);
    expect(q.get('state')?.length).toBeGreaterThanOrEqual(22);
    if (PKCE[provider]) {
      expect(q.get('code_challenge_method')).toBe('S256');
      expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
    // The state cookie: HttpOnly, SameSite, short-lived, not Secure on http, and it does not carry the state in clear.
    expect(stateCookie.attributes.has('httponly')).toBe(true);
    expect(stateCookie.attributes.get('samesite')).toBe('Lax');
    expect(stateCookie.attributes.has('secure')).toBe(false);
    expect(Number(stateCookie.attributes.get('max-age'))).toBeLessThanOrEqual(600);
    expect(stateCookie.value.split('.')).toHaveLength(3);

    const returned = await consent(fake, authorize, { email: `Dev.${provider}@example.com` });
    expect(returned.searchParams.get('state')).toBe(q.get('state'));
    const response = await callback(app, returned, stateCookie);
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/broker');
    const token = tokenRequests().at(-1)!;
    expect(token.status).toBe(200);
    expect(token.params.code).toBe(returned.searchParams.get('code'));
    if (PKCE[provider]) expect(token.params.code_verifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/);

    const session = cookieFrom(response, SESSION_COOKIE)!;
    expect(session.attributes.has('httponly')).toBe(true);
    expect(session.attributes.get('samesite')).toBe('Lax');
    expect(session.attributes.has('secure')).toBe(false);
    expect(Number(session.attributes.get('max-age'))).toBe(3600);
    expect(session.attributes.get('path')).toBe('/');
    // The one-time state cookie is cleared.
    expect(Number(cookieFrom(response, OAUTH_COOKIE)?.attributes.get('max-age'))).toBe(0);

    const cookie = `${SESSION_COOKIE}=${session.value}`;
    const page = await app.request(`${ORIGIN}/broker`, { headers: { cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`dev.${provider}@example.com`);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1]!;

    const out = await app.request(`${ORIGIN}/logout`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf }),
    });
    expect(out.status).toBe(200);
    const cleared = cookieFrom(out, SESSION_COOKIE);
    expect(cleared?.value).toBe('');
    expect(Number(cleared?.attributes.get('max-age'))).toBe(0);
    expect(cleared?.attributes.get('path')).toBe('/');
    // The browser has dropped the cookie: pages send it back to sign in.
    expect((await app.request(`${ORIGIN}/broker`)).status).toBe(302);
  });

  it('refuses a wrong state, a missing state cookie, another sign-in’s state cookie, and a replayed code', async () => {
    const app = appFor(provider);
    const tokensBefore = tokenRequests().length;

    const a = await startSignIn(app, ORIGIN);
    const returnedA = await consent(fake, a.authorize, { email: 'a@example.com' });
    const wrong = new URL(returnedA);
    wrong.searchParams.set('state', 'forged-state-forged-state');
    for (const attempt of [
      await callback(app, wrong, a.stateCookie),
      await callback(app, returnedA, null),
      await (async () => {
        const noState = new URL(returnedA);
        noState.searchParams.delete('state');
        return callback(app, noState, a.stateCookie);
      })(),
      // A second sign-in's cookie with the first's code and state (login CSRF: an attacker's code in a victim's browser).
      await (async () => {
        const b = await startSignIn(app, ORIGIN);
        return callback(app, returnedA, b.stateCookie);
      })(),
    ]) {
      expect(attempt.status).toBe(400);
      expect(cookieFrom(attempt, SESSION_COOKIE)).toBeUndefined();
    }
    // The state is checked before the code is spent: no token request was made.
    expect(tokenRequests().length).toBe(tokensBefore);

    // The right state works once; the same code a second time is refused by the provider, and no session comes of it.
    const ok = await callback(app, returnedA, a.stateCookie);
    expect(ok.status).toBe(302);
    expect(cookieFrom(ok, SESSION_COOKIE)).toBeDefined();
    const replay = await callback(app, returnedA, a.stateCookie);
    expect(replay.status).toBe(403);
    expect(cookieFrom(replay, SESSION_COOKIE)).toBeUndefined();
    expect(tokenRequests().at(-1)!.params.code).toBe(returnedA.searchParams.get('code'));
    expect(await replay.text()).toContain('Sign-in failed');
  });

  it('refuses a state cookie signed with another key', async () => {
    const app = appFor(provider);
    const { authorize } = await startSignIn(app, ORIGIN);
    const returned = await consent(fake, authorize, { email: 'a@example.com' });
    const forged = await new SignJWT({ state: returned.searchParams.get('state'), verifier: 'v'.repeat(64), next: '/' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('stalk')
      .setAudience('oauth-state')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('another-secret-another-secret-another-secret'));
    const response = await app.request(returned.href, { headers: { cookie: `${OAUTH_COOKIE}=${forged}` } });
    expect(response.status).toBe(400);
    expect(cookieFrom(response, SESSION_COOKIE)).toBeUndefined();
  });

  it('answers a provider’s refusal (?error=) with a page, not a new trip to the provider', async () => {
    const app = appFor(provider);
    const { authorize, stateCookie } = await startSignIn(app, ORIGIN);
    // A client the provider does not know: it shows its own error page, so ask it to refuse a plain PKCE challenge instead.
    const refusing = new URL(authorize);
    refusing.searchParams.set('code_challenge', 'p'.repeat(43));
    refusing.searchParams.set('code_challenge_method', 'plain');
    const returned = await consent(fake, refusing, { email: 'a@example.com' });
    expect(returned.searchParams.get('error')).toBe('invalid_request');
    expect(returned.searchParams.get('code')).toBeNull();
    for (const back of [
      returned,
      new URL(`${ORIGIN}/login?error=access_denied&error_description=%3Cscript%3E&state=${authorize.searchParams.get('state')}`),
    ]) {
      const response = await callback(app, back, stateCookie);
      expect(response.status, back.search).toBe(403);
      expect(response.headers.get('location')).toBeNull();
      expect(cookieFrom(response, SESSION_COOKIE)).toBeUndefined();
      expect(await response.text()).not.toContain('<script>');
    }
  });

  it('refuses an unverified email, even one --auth allows', async () => {
    const app = appFor(provider);
    const { authorize, stateCookie } = await startSignIn(app, ORIGIN);
    const response = await callback(app, await consent(fake, authorize, { email: 'unverified@example.com', verified: false }), stateCookie);
    expect(response.status).toBe(403);
    expect(cookieFrom(response, SESSION_COOKIE)).toBeUndefined();
    expect(await response.text()).toContain('no verified email');
  });

  it('refuses an email --auth does not allow', async () => {
    const app = appFor(provider);
    const { authorize, stateCookie } = await startSignIn(app, ORIGIN);
    const response = await callback(app, await consent(fake, authorize, { email: 'someone@example.org' }), stateCookie);
    expect(response.status).toBe(403);
    expect(cookieFrom(response, SESSION_COOKIE)).toBeUndefined();
    expect(await response.text()).toContain('Access denied to someone@example.org');
  });

  it('sets the cookies Secure on https (directly, or behind a trusted proxy saying so), and HSTS', async () => {
    const app = appFor(provider, 'https://stalk.test');
    const signed = await signIn(app, fake, 'https://stalk.test', { email: 'tls@example.com' });
    expect(signed.session.attributes.has('secure')).toBe(true);
    expect(signed.session.attributes.has('httponly')).toBe(true);
    const { stateCookie } = await startSignIn(app, 'https://stalk.test');
    expect(stateCookie.attributes.has('secure')).toBe(true);
    // Any client may send X-Forwarded-Proto: only --trust-proxy believes it.
    const untrusted = await app.request('http://stalk.test/login', { headers: { 'x-forwarded-proto': 'https' } });
    expect(cookieFrom(untrusted, OAUTH_COOKIE)?.attributes.has('secure')).toBe(false);
    expect(untrusted.headers.get('strict-transport-security')).toBeNull();
    const behindProxy = appFor(provider, 'https://stalk.test', { trustProxy: true });
    const proxied = await behindProxy.request('http://stalk.test/login', { headers: { 'x-forwarded-proto': 'https' } });
    expect(cookieFrom(proxied, OAUTH_COOKIE)?.attributes.has('secure')).toBe(true);
    expect(proxied.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
  });
});

describe('sign-in details', () => {
  it.each(FAKE_PROVIDERS.filter((p) => PKCE[p]))(
    '%s: sends the PKCE verifier of this sign-in; another verifier (state right) is refused by the provider',
    async (provider) => {
      const app = appFor(provider);
      const { authorize } = await startSignIn(app, ORIGIN);
      const returned = await consent(fake, authorize, { email: 'a@example.com' });
      // The state cookie as Stalk would sign it, but with another verifier (only the key's holder could make this).
      const swapped = await signToken(
        secretKey(SECRET),
        'oauth-state',
        { state: returned.searchParams.get('state'), verifier: randomToken(48), next: '/' },
        600,
      );
      const response = await app.request(returned.href, { headers: { cookie: `${OAUTH_COOKIE}=${swapped}` } });
      expect(response.status).toBe(403);
      expect(cookieFrom(response, SESSION_COOKIE)).toBeUndefined();
      const token = tokenRequests().at(-1)!;
      expect(token.params.code).toBe(returned.searchParams.get('code'));
      expect(token.status).toBe(400);
    },
  );

  it('refuses a token request with the wrong client secret (the fake checks it; Stalk shows the failure)', async () => {
    const input = oauthInput(fake, 'google');
    const app = testApp(database, { auth: { ...input, oauth2Secret: 'not-the-secret' } });
    const { authorize, stateCookie } = await startSignIn(app, ORIGIN);
    const response = await callback(app, await consent(fake, authorize, { email: 'a@example.com' }), stateCookie);
    expect(response.status).toBe(403);
    expect(tokenRequests().at(-1)!.status).toBe(401);
    expect(cookieFrom(response, SESSION_COOKIE)).toBeUndefined();
  });

  it('GitHub: signs in with a verified address that --auth allows, never an unverified one', async () => {
    const app = appFor('github');
    const signed = await signIn(app, fake, ORIGIN, {
      email: 'me@elsewhere.org',
      githubEmails: [
        { email: 'me@elsewhere.org', verified: true, primary: true, visibility: 'public' },
        { email: 'me@example.com', verified: true, primary: false, visibility: null },
      ],
    });
    const page = await app.request(`${ORIGIN}/tasks`, { headers: { cookie: signed.cookie } });
    expect(await page.text()).toContain('me@example.com');

    const { authorize, stateCookie } = await startSignIn(app, ORIGIN);
    const refused = await callback(
      app,
      await consent(fake, authorize, {
        email: 'me@elsewhere.org',
        githubEmails: [
          { email: 'me@elsewhere.org', verified: true, primary: true, visibility: 'public' },
          { email: 'ceo@example.com', verified: false, primary: false, visibility: null },
        ],
      }),
      stateCookie,
    );
    expect(refused.status).toBe(403);
    expect(cookieFrom(refused, SESSION_COOKIE)).toBeUndefined();
  });

  describe('GitLab group restriction', () => {
    const attempt = async (groups: { fullPath: string; accessLevel: number }[], extra: { gitlabState?: 'active' | 'blocked' } = {}) => {
      const app = appFor('gitlab', ORIGIN, { gitlabAuthAllowedGroups: 'acme/ops, acme/sre', gitlabMinAccessLevel: 30 });
      const { authorize, stateCookie } = await startSignIn(app, ORIGIN);
      const response = await callback(app, await consent(fake, authorize, { email: 'dev@example.com', groups, ...extra }), stateCookie);
      return { status: response.status, session: cookieFrom(response, SESSION_COOKIE) };
    };

    it('lets in a member of an allowed group with enough access, and asks GitLab with the minimum level', async () => {
      const ok = await attempt([{ fullPath: 'acme/sre', accessLevel: 30 }]);
      expect(ok.status).toBe(302);
      expect(ok.session).toBeDefined();
      const groups = fake.requests.filter((r) => r.endpoint === 'groups').at(-1)!;
      expect(groups.params.min_access_level).toBe('30');
    });

    it('finds the group past GitLab’s first page of groups', async () => {
      const many = Array.from({ length: 150 }, (_, i) => ({ fullPath: `other/g${i}`, accessLevel: 50 }));
      const ok = await attempt([...many, { fullPath: 'acme/ops', accessLevel: 40 }]);
      expect(ok.status).toBe(302);
    });

    it.each([
      ['in no allowed group', [{ fullPath: 'acme/dev', accessLevel: 50 }]],
      ['in an allowed group as a guest (below the minimum level)', [{ fullPath: 'acme/ops', accessLevel: 10 }]],
      ['only in the allowed group’s parent', [{ fullPath: 'acme', accessLevel: 50 }]],
      ['in a group whose path only starts like an allowed one', [{ fullPath: 'acme/ops-old', accessLevel: 50 }]],
      ['in no group at all', []],
    ])('refuses a user %s', async (_label, groups) => {
      const refused = await attempt(groups);
      expect(refused.status).toBe(403);
      expect(refused.session).toBeUndefined();
    });

    it('refuses a blocked GitLab account', async () => {
      const refused = await attempt([{ fullPath: 'acme/ops', accessLevel: 50 }], { gitlabState: 'blocked' });
      expect(refused.status).toBe(403);
    });
  });

  it.each([
    ['//evil.example/x'],
    ['/\\evil.example/x'],
    ['/\t/evil.example/x'],
    ['/\n/evil.example/x'],
    ['https://evil.example/x'],
    ['javascript:alert(1)'],
    ['/%0d%0aSet-Cookie:x=1'],
  ])('after sign-in, never redirects off the site (next=%j)', async (next) => {
    const app = appFor('okta');
    const signed = await signIn(app, fake, ORIGIN, { email: 'nav@example.com' }, next);
    const target = new URL(signed.location, `${ORIGIN}/`);
    expect(target.origin).toBe(ORIGIN);
    // What a browser does with a Location header: tabs and newlines are dropped, backslashes are slashes.
    const asBrowser = new URL(signed.location.replace(/[\t\n\r]/g, ''), `${ORIGIN}/`);
    expect(asBrowser.origin).toBe(ORIGIN);
    expect(signed.location).not.toMatch(/[\u0000-\u001f\u007f\\]/);
  });

  it('keeps a good next path through the sign-in', async () => {
    const app = appFor('okta');
    const signed = await signIn(app, fake, ORIGIN, { email: 'nav@example.com' }, '/task/abc?x=1&y=%2F');
    expect(signed.location).toBe('/task/abc?x=1&y=%2F');
  });

  it('a session ends when --auth no longer allows its email (same secret, narrower pattern)', async () => {
    const signed = await signIn(appFor('google'), fake, ORIGIN, { email: 'leaver@example.com' });
    const narrower = testApp(database, { auth: oauthInput(fake, 'google', ORIGIN, { auth: 'boss@example\\.com' }) });
    const response = await narrower.request(`${ORIGIN}/tasks`, { headers: { cookie: signed.cookie } });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toMatch(/^\/login\?next=/);
    expect(cookieFrom(response, SESSION_COOKIE)?.value).toBe('');
  });

  it('names the user by the verified address itself: a Kelvin sign (U+212A) does not become another user’s “k”', async () => {
    const control = recordingControl();
    const app = testApp(database, { control, auth: oauthInput(fake, 'github') });
    const signed = await signIn(app, fake, ORIGIN, { email: '\u212Aate@example.com' });
    const page = await (await app.request(`${ORIGIN}/tasks`, { headers: { cookie: signed.cookie } })).text();
    expect(page).not.toContain('kate@example.com');
    expect(page).toContain('\u212Aate@example.com');
    const action = await app.request(`${ORIGIN}/api/task/revoke/t1`, {
      method: 'POST',
      headers: { cookie: signed.cookie, 'X-CSRF-Token': signed.csrf },
    });
    expect(action.status).toBe(200);
    expect(control.commands.at(-1)!.user).toBe('\u212Aate@example.com');
  });

  it('logs a refused or accepted address as one line (a newline in it cannot forge log lines)', async () => {
    const logs: string[] = [];
    const app = appWithStatic(database, { auth: oauthInput(fake, 'github'), logs });
    const forged = 'x@evil.org\n2030-01-01T00:00:00.000Z INFO  [test] boss@example.com signed in';
    const { authorize, stateCookie } = await startSignIn(app, ORIGIN);
    const refused = await callback(
      app,
      await consent(fake, authorize, { email: 'x', githubEmails: [{ email: forged, verified: true, primary: true, visibility: null }] }),
      stateCookie,
    );
    expect(refused.status).toBe(403);
    await signIn(app, fake, ORIGIN, { email: 'ok@example.com' });
    expect(logs.some((line) => line.includes('sign-in refused'))).toBe(true);
    expect(logs.some((line) => line.includes('"ok@example.com" signed in'))).toBe(true);
    for (const line of logs) expect(line).not.toMatch(/[\r\n]/);
  });

  it('signs in under a URL prefix, with the cookies scoped to it', async () => {
    const input = oauthInput(fake, 'gitlab', `${ORIGIN}/flower`);
    const app = testApp(database, { auth: input, ui: { prefix: '/flower' } });
    const before = await app.request(`${ORIGIN}/flower/tasks`);
    expect(before.headers.get('location')).toBe(`/flower/login?next=${encodeURIComponent('/flower/tasks')}`);
    const start = await app.request(`${ORIGIN}/flower/login?next=/flower/tasks`);
    const stateCookie = cookieFrom(start, OAUTH_COOKIE)!;
    expect(stateCookie.attributes.get('path')).toBe('/flower/');
    const returned = await consent(fake, new URL(start.headers.get('location')!), { email: 'p@example.com' });
    expect(returned.pathname).toBe('/flower/login');
    const response = await callback(app, returned, stateCookie);
    expect(response.headers.get('location')).toBe('/flower/tasks');
    const session = cookieFrom(response, SESSION_COOKIE)!;
    expect(session.attributes.get('path')).toBe('/flower/');
    expect((await app.request(`${ORIGIN}/flower/tasks`, { headers: { cookie: `${SESSION_COOKIE}=${session.value}` } })).status).toBe(200);
  });
});
