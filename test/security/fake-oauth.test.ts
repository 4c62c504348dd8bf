// The fake authorization server is only worth the sign-in tests if it is as
// strict as the real ones: one-time codes bound to the client, the redirect
// URI and the PKCE challenge; client secrets checked; tokens needed (with
// their scopes) for userinfo. Driven directly, without Stalk.

import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FAKE_PROVIDERS,
  type FakeClient,
  type FakeIdentity,
  type FakeOAuthServer,
  type FakeProviderName,
  startFakeOAuth,
} from '../support/fake-oauth';

let fake: FakeOAuthServer;
beforeAll(async () => {
  fake = await startFakeOAuth();
});
afterAll(async () => {
  await fake?.close();
});

const PATHS: Record<FakeProviderName, { authorize: string; token: string; userinfo: string; scope: string }> = {
  google: { authorize: '/o/oauth2/v2/auth', token: '/token', userinfo: '/v1/userinfo', scope: 'openid email profile' },
  github: { authorize: '/login/oauth/authorize', token: '/login/oauth/access_token', userinfo: '/api/v3/user/emails', scope: 'user:email' },
  gitlab: { authorize: '/oauth/authorize', token: '/oauth/token', userinfo: '/api/v4/user', scope: 'read_api' },
  okta: { authorize: '/v1/authorize', token: '/v1/token', userinfo: '/v1/userinfo', scope: 'openid email' },
};
const VERIFIER = `${'v'.repeat(20)}erifier-0123456789-abcdefghijkl`;
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

let n = 0;
function newClient(): FakeClient {
  n += 1;
  const c = { clientId: `client-${n}`, clientSecret: `secret-${n}`, redirectUri: `http://app.test/cb${n}` };
  fake.register(c);
  return c;
}

async function authorize(
  provider: FakeProviderName,
  c: FakeClient,
  extra: Record<string, string> = {},
  identity: FakeIdentity = { email: 'u@example.com' },
) {
  fake.nextIdentity(identity);
  const url = new URL(fake.base(provider) + PATHS[provider].authorize);
  for (const [k, v] of Object.entries({
    response_type: 'code',
    client_id: c.clientId,
    redirect_uri: c.redirectUri,
    scope: PATHS[provider].scope,
    state: 'st',
    code_challenge: CHALLENGE,
    code_challenge_method: 'S256',
    ...extra,
  })) {
    if (v !== '') url.searchParams.set(k, v);
  }
  const response = await fetch(url, { redirect: 'manual' });
  return {
    status: response.status,
    location: response.headers.get('location'),
    code: new URL(response.headers.get('location') ?? 'http://x/').searchParams.get('code'),
  };
}

async function exchange(provider: FakeProviderName, params: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(fake.base(provider) + PATHS[provider].token, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params),
  });
  const body = (await response.json()) as { access_token?: string; error?: string };
  return { status: response.status, body };
}

const tokenParams = (c: FakeClient, code: string, extra: Record<string, string> = {}) => ({
  grant_type: 'authorization_code',
  code,
  client_id: c.clientId,
  client_secret: c.clientSecret,
  redirect_uri: c.redirectUri,
  code_verifier: VERIFIER,
  ...extra,
});

describe.each(FAKE_PROVIDERS)('fake %s', (provider) => {
  it('issues a code, a token for it once, and userinfo for the token', async () => {
    const c = newClient();
    const { status, location, code } = await authorize(provider, c);
    expect(status).toBe(302);
    expect(location).toMatch(new RegExp(`^${c.redirectUri}\\?`));
    expect(new URL(location!).searchParams.get('state')).toBe('st');
    const first = await exchange(provider, tokenParams(c, code!));
    expect(first.body.access_token).toMatch(/^[\w-]{20,}$/);
    const info = await fetch(fake.base(provider) + PATHS[provider].userinfo, {
      headers: { authorization: `Bearer ${first.body.access_token}` },
    });
    expect(info.status).toBe(200);
    expect(JSON.stringify(await info.json())).toContain('u@example.com');

    // The code again: refused, and the token it gave is revoked.
    const again = await exchange(provider, tokenParams(c, code!));
    expect(again.body.access_token).toBeUndefined();
    expect(again.body.error).toMatch(/invalid_grant|bad_verification_code/);
    expect(
      (await fetch(fake.base(provider) + PATHS[provider].userinfo, { headers: { authorization: `Bearer ${first.body.access_token}` } }))
        .status,
    ).toBe(401);
  });

  it('refuses a wrong verifier, a wrong secret, another client, another redirect URI', async () => {
    const c = newClient();
    const other = newClient();
    for (const [label, params] of [
      ['wrong verifier', (code: string) => tokenParams(c, code, { code_verifier: `${VERIFIER}x` })],
      ['no verifier', (code: string) => ({ ...tokenParams(c, code), code_verifier: '' })],
      ['wrong secret', (code: string) => tokenParams(c, code, { client_secret: 'nope' })],
      ['another client', (code: string) => tokenParams(other, code)],
      ['another redirect URI', (code: string) => tokenParams(c, code, { redirect_uri: other.redirectUri })],
      ['a made-up code', () => tokenParams(c, 'made-up-code')],
    ] as const) {
      const { code } = await authorize(provider, c);
      const result = await exchange(provider, params(code!));
      expect(result.body.access_token, label).toBeUndefined();
      expect(result.body.error, label).toBeTruthy();
      // GitHub answers its errors with 200; the others with 400/401.
      expect(result.status, label).toBe(provider === 'github' ? 200 : label === 'wrong secret' ? 401 : 400);
    }
  });

  it('does not redirect for an unknown client or an unregistered redirect URI, and refuses a plain PKCE challenge', async () => {
    const c = newClient();
    expect((await authorize(provider, { ...c, clientId: 'unknown' })).status).toBe(400);
    expect((await authorize(provider, { ...c, redirectUri: 'http://evil.test/cb' })).status).toBe(400);
    const plain = await authorize(provider, c, { code_challenge: VERIFIER, code_challenge_method: 'plain' });
    expect(plain.status).toBe(302);
    expect(plain.code).toBeNull();
    expect(new URL(plain.location!).searchParams.get('error')).toBe('invalid_request');
  });

  it('answers userinfo only to a live token with the scopes it needs', async () => {
    const c = newClient();
    expect((await fetch(fake.base(provider) + PATHS[provider].userinfo)).status).toBe(401);
    expect((await fetch(fake.base(provider) + PATHS[provider].userinfo, { headers: { authorization: 'Bearer made-up' } })).status).toBe(
      401,
    );
    const { code } = await authorize(provider, c, { scope: 'profile' });
    const { body } = await exchange(provider, tokenParams(c, code!));
    expect(
      (await fetch(fake.base(provider) + PATHS[provider].userinfo, { headers: { authorization: `Bearer ${body.access_token}` } })).status,
    ).toBe(403);
  });
});

describe('provider specifics', () => {
  it('Okta takes client_secret_basic', async () => {
    const c = newClient();
    const { code } = await authorize('okta', c);
    const { client_secret: _s, client_id: _i, ...params } = tokenParams(c, code!);
    const basic = `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')}`;
    expect((await exchange('okta', params, { authorization: basic })).body.access_token).toBeTruthy();
  });

  it('GitHub answers form-encoded without Accept: application/json, and takes `token X` on the API', async () => {
    const c = newClient();
    const { code } = await authorize('github', c, { code_challenge: '', code_challenge_method: '' });
    const response = await fetch(fake.base('github') + PATHS.github.token, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: code!,
        client_id: c.clientId,
        client_secret: c.clientSecret,
        redirect_uri: c.redirectUri,
      }),
    });
    expect(response.headers.get('content-type')).toMatch(/^application\/x-www-form-urlencoded/);
    const token = new URLSearchParams(await response.text()).get('access_token');
    expect(token).toBeTruthy();
    const emails = await fetch(fake.base('github') + PATHS.github.userinfo, { headers: { authorization: `token ${token}` } });
    expect(await emails.json()).toEqual([{ email: 'u@example.com', verified: true, primary: true, visibility: 'private' }]);
  });

  it('GitLab pages groups and filters them by access level', async () => {
    const c = newClient();
    const groups = Array.from({ length: 25 }, (_, i) => ({ fullPath: `g/${i}`, accessLevel: i < 5 ? 10 : 30 }));
    const { code } = await authorize('gitlab', c, {}, { email: 'u@example.com', groups });
    const { body } = await exchange('gitlab', tokenParams(c, code!));
    const page = async (q: string) => {
      const r = await fetch(`${fake.base('gitlab')}/api/v4/groups?${q}`, { headers: { authorization: `Bearer ${body.access_token}` } });
      return { list: (await r.json()) as { full_path: string }[], next: r.headers.get('x-next-page') };
    };
    const levelled = await page('min_access_level=20');
    expect(levelled.list).toHaveLength(20);
    expect(levelled.list[0]!.full_path).toBe('g/5');
    expect(levelled.next).toBe('');
    const all = await page('min_access_level=10');
    expect(all.list).toHaveLength(20);
    expect(all.next).toBe('2');
    expect((await page('min_access_level=10&page=2')).list.map((g) => g.full_path)).toEqual(['g/20', 'g/21', 'g/22', 'g/23', 'g/24']);
    expect((await page('min_access_level=10&per_page=100')).list).toHaveLength(25);
  });
});
