// A local fake OAuth2 authorization server playing Google, GitHub, GitLab and
// Okta (the real ones cannot be reached from tests). It is a real HTTP server
// on 127.0.0.1 that issues real one-time codes and access tokens and answers
// each provider's userinfo endpoints in that provider's own shapes:
//
//   Google  <url>/google                  o/oauth2/v2/auth, token, v1/userinfo (openidconnect.googleapis.com)
//   GitHub  <url>/github                  login/oauth/authorize, login/oauth/access_token, api/v3/user/emails (Enterprise layout)
//   GitLab  <url>/gitlab                  oauth/authorize, oauth/token, api/v4/user, api/v4/groups
//   Okta    <url>/okta/oauth2/default     v1/authorize, v1/token, v1/userinfo
//
// Those bases are what Stalk's --oauth2-google-base, --github-oauth-domain,
// --gitlab-oauth-domain and --oauth2-okta-base-url take (see `authInput`).
// Codes are bound to the client, the redirect URI, the scope and the PKCE
// S256 challenge; a code is good once, for a minute. The test says which
// identity the next sign-in gets (`nextIdentity`), as a user choosing an
// account on the provider's consent page would.

import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuthInput } from '../../src/auth/config';

export type FakeProviderName = 'google' | 'github' | 'gitlab' | 'okta';
export const FAKE_PROVIDERS: readonly FakeProviderName[] = ['google', 'github', 'gitlab', 'okta'];

export interface GitHubEmail {
  email: string;
  verified: boolean;
  primary: boolean;
  visibility: 'public' | 'private' | null;
}

export interface FakeIdentity {
  email: string;
  /** Google/Okta `email_verified`, GitHub `verified`, GitLab `confirmed_at` set (default true). */
  verified?: boolean;
  /** GitHub: the whole /user/emails list (default: `email` alone, primary). */
  githubEmails?: GitHubEmail[];
  /** GitLab: the groups the user belongs to, with GitLab access levels (10 guest … 50 owner). */
  groups?: { fullPath: string; accessLevel: number }[];
  /** GitLab: the account's state (default 'active'). */
  gitlabState?: 'active' | 'blocked';
}

export interface FakeClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/** One request the fake answered, for assertions (what Stalk sent). */
export interface FakeRequest {
  provider: FakeProviderName;
  endpoint: 'authorize' | 'token' | 'userinfo' | 'groups';
  method: string;
  params: Record<string, string>;
  status: number;
}

interface Grant {
  provider: FakeProviderName;
  clientId: string;
  redirectUri: string;
  scope: string[];
  challenge: string | null;
  identity: FakeIdentity;
  expiresAt: number;
  used: boolean;
  /** Access tokens issued from this code (revoked if the code is replayed, RFC 6749 §4.1.2). */
  tokens: string[];
}

interface AccessToken {
  provider: FakeProviderName;
  scope: string[];
  identity: FakeIdentity;
  expiresAt: number;
}

/** Scopes each provider needs before its userinfo endpoints answer. */
const NEEDED_SCOPES: Record<FakeProviderName, { userinfo: string[]; groups?: string[] }> = {
  google: { userinfo: ['openid', 'email'] },
  github: { userinfo: ['user:email'] },
  // GitLab's /user takes read_user or read_api; /groups needs read_api.
  gitlab: { userinfo: ['read_api'], groups: ['read_api'] },
  okta: { userinfo: ['openid', 'email'] },
};

const BASE_PATHS: Record<FakeProviderName, string> = {
  google: '/google',
  github: '/github',
  gitlab: '/gitlab',
  okta: '/okta/oauth2/default',
};

export interface FakeOAuthServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** What Stalk's base-URL option for this provider takes. */
  base(provider: FakeProviderName): string;
  /** The AuthInput fields that point Stalk at this server for `provider` with `client`. */
  authInput(provider: FakeProviderName, client: FakeClient): Partial<AuthInput>;
  /** Accept this client (id, secret, registered redirect URI). */
  register(client: FakeClient): void;
  /** Who the next sign-in (the next authorize request) is. */
  nextIdentity(identity: FakeIdentity): void;
  /** Every request answered, oldest first. */
  readonly requests: FakeRequest[];
  close(): Promise<void>;
}

function base64url(data: Buffer): string {
  return data.toString('base64url');
}

function token(): string {
  return base64url(randomBytes(24));
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeOAuth(): Promise<FakeOAuthServer> {
  const clients = new Map<string, FakeClient>();
  const grants = new Map<string, Grant>();
  const tokens = new Map<string, AccessToken>();
  const requests: FakeRequest[] = [];
  let pending: FakeIdentity | null = null;

  /** Answer; returns the status (for the request log). */
  const send = (
    res: ServerResponse,
    status: number,
    body: unknown,
    contentType = 'application/json; charset=utf-8',
    headers: Record<string, string> = {},
  ): number => {
    res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
    return status;
  };

  /** Google, GitLab and Okta answer token errors as RFC 6749 §5.2; GitHub answers 200 with an error body. */
  const tokenError = (
    res: ServerResponse,
    provider: FakeProviderName,
    status: 400 | 401,
    error: string,
    description: string,
    json: boolean,
  ): number => {
    if (provider === 'github') {
      const body = { error, error_description: description, error_uri: 'https://docs.github.com/apps/troubleshooting-oauth-apps' };
      return json
        ? send(res, 200, body)
        : send(res, 200, new URLSearchParams(body).toString(), 'application/x-www-form-urlencoded; charset=utf-8');
    }
    return send(res, status, { error, error_description: description });
  };

  const authorize = (res: ServerResponse, provider: FakeProviderName, query: URLSearchParams): number => {
    const clientId = query.get('client_id') ?? '';
    const client = clients.get(clientId);
    // An unknown client or a redirect URI not registered: the error is shown to the user, never redirected (RFC 6749 §4.1.2.1).
    if (!client) return send(res, 400, '<h1>Error 401: invalid_client</h1><p>The OAuth client was not found.</p>', 'text/html');
    const redirectUri = query.get('redirect_uri') ?? client.redirectUri;
    if (redirectUri !== client.redirectUri) return send(res, 400, '<h1>Error 400: redirect_uri_mismatch</h1>', 'text/html');
    const back = new URL(redirectUri);
    const state = query.get('state');
    if (state !== null) back.searchParams.set('state', state);
    const fail = (error: string) => {
      back.searchParams.set('error', error);
      res.writeHead(302, { location: back.toString() }).end();
      return 302;
    };
    if (query.get('response_type') !== 'code') return fail('unsupported_response_type');
    const challenge = query.get('code_challenge');
    const method = query.get('code_challenge_method') ?? 'plain';
    // Only S256: a "plain" challenge is the verifier itself, no protection against a stolen code.
    if (challenge !== null && (method !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(challenge))) return fail('invalid_request');
    const identity = pending;
    if (!identity) return send(res, 500, 'fake-oauth: the test set no identity for this sign-in (nextIdentity)', 'text/plain');
    pending = null;
    const code = token();
    grants.set(code, {
      provider,
      clientId,
      redirectUri,
      scope: (query.get('scope') ?? '').split(/[\s,+]+/).filter(Boolean),
      challenge,
      identity,
      expiresAt: Date.now() + 60_000,
      used: false,
      tokens: [],
    });
    back.searchParams.set('code', code);
    res.writeHead(302, { location: back.toString() }).end();
    return 302;
  };

  const exchange = async (
    req: IncomingMessage,
    res: ServerResponse,
    provider: FakeProviderName,
    params: Record<string, string>,
  ): Promise<number> => {
    const json = provider !== 'github' || (req.headers.accept ?? '').includes('application/json');
    // Client authentication: client_secret_post, or client_secret_basic (Okta's default).
    let clientId = params.client_id ?? '';
    let clientSecret = params.client_secret ?? '';
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id, secret] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      clientId = decodeURIComponent(id ?? '');
      clientSecret = decodeURIComponent(secret ?? '');
    }
    const client = clients.get(clientId);
    if (!client || client.clientSecret !== clientSecret) {
      return tokenError(
        res,
        provider,
        401,
        provider === 'github' ? 'incorrect_client_credentials' : 'invalid_client',
        'The client_id and/or client_secret passed are incorrect.',
        json,
      );
    }
    if (params.grant_type !== 'authorization_code')
      return tokenError(res, provider, 400, 'unsupported_grant_type', 'grant_type must be authorization_code', json);
    const code = params.code ?? '';
    const grant = grants.get(code);
    const bad = (description: string) =>
      tokenError(res, provider, 400, provider === 'github' ? 'bad_verification_code' : 'invalid_grant', description, json);
    if (!grant || grant.provider !== provider) return bad('The code passed is incorrect or expired.');
    if (grant.used) {
      // A replayed code: refuse it and revoke what it was exchanged for.
      for (const t of grant.tokens) tokens.delete(t);
      return bad('The code has already been used.');
    }
    if (grant.expiresAt < Date.now()) return bad('The code passed is incorrect or expired.');
    if (grant.clientId !== clientId) return bad('The code was issued to another client.');
    if ((params.redirect_uri ?? '') !== grant.redirectUri) return bad('The redirect_uri does not match the one the code was issued for.');
    if (grant.challenge !== null) {
      const verifier = params.code_verifier ?? '';
      if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || base64url(createHash('sha256').update(verifier).digest()) !== grant.challenge) {
        return bad('PKCE verification failed (code_verifier).');
      }
    } else if (params.code_verifier !== undefined) {
      return bad('code_verifier given, but the authorization request had no code_challenge.');
    }
    grant.used = true;
    const access = token();
    grant.tokens.push(access);
    tokens.set(access, { provider, scope: grant.scope, identity: grant.identity, expiresAt: Date.now() + 3_600_000 });
    const scope = grant.scope.join(provider === 'github' ? ',' : ' ');
    const bodies: Record<FakeProviderName, Record<string, unknown>> = {
      google: { access_token: access, expires_in: 3599, scope, token_type: 'Bearer', id_token: `${token()}.${token()}.${token()}` },
      github: { access_token: access, token_type: 'bearer', scope },
      gitlab: {
        access_token: access,
        token_type: 'Bearer',
        expires_in: 7200,
        refresh_token: token(),
        scope,
        created_at: Math.floor(Date.now() / 1000),
      },
      okta: { token_type: 'Bearer', expires_in: 3600, access_token: access, scope, id_token: `${token()}.${token()}.${token()}` },
    };
    const body = bodies[provider];
    if (!json)
      return send(
        res,
        200,
        new URLSearchParams(body as Record<string, string>).toString(),
        'application/x-www-form-urlencoded; charset=utf-8',
      );
    return send(res, 200, body);
  };

  /** The access token a resource request carries (GitHub also takes `token X`), if it is live and has the scopes. */
  const bearer = (req: IncomingMessage, res: ServerResponse, provider: FakeProviderName, needed: string[]): AccessToken | number => {
    const match = /^(?:Bearer|token)\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const found = match ? tokens.get(match[1]!) : undefined;
    if (!found || found.provider !== provider || found.expiresAt < Date.now()) {
      const body =
        provider === 'github'
          ? { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' }
          : provider === 'gitlab'
            ? { message: '401 Unauthorized' }
            : { error: 'invalid_token', error_description: 'The access token is invalid or expired.' };
      return send(res, 401, body, 'application/json; charset=utf-8', { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    if (!needed.every((s) => found.scope.includes(s))) {
      const body =
        provider === 'github'
          ? { message: 'Resource not accessible by integration' }
          : provider === 'gitlab'
            ? { error: 'insufficient_scope', scope: needed.join(' ') }
            : { error: 'insufficient_scope' };
      return send(res, 403, body, 'application/json; charset=utf-8', {
        'www-authenticate': `Bearer error="insufficient_scope", scope="${needed.join(' ')}"`,
      });
    }
    return found;
  };

  const subject = (identity: FakeIdentity) => createHash('sha256').update(identity.email).digest('hex').slice(0, 20);

  const userinfo = (req: IncomingMessage, res: ServerResponse, provider: FakeProviderName): number => {
    const access = bearer(req, res, provider, NEEDED_SCOPES[provider].userinfo);
    if (typeof access === 'number') return access;
    const id = access.identity;
    const verified = id.verified ?? true;
    switch (provider) {
      case 'google':
        // https://openidconnect.googleapis.com/v1/userinfo
        return send(res, 200, {
          sub: subject(id),
          name: 'Test User',
          given_name: 'Test',
          family_name: 'User',
          picture: 'https://example.invalid/p.png',
          email: id.email,
          email_verified: verified,
        });
      case 'okta':
        return send(res, 200, {
          sub: `00u${subject(id)}`,
          name: 'Test User',
          locale: 'en_US',
          email: id.email,
          email_verified: verified,
          preferred_username: id.email,
          given_name: 'Test',
          family_name: 'User',
          zoneinfo: 'America/Los_Angeles',
          updated_at: 1_700_000_000,
        });
      case 'github':
        // GET /user/emails
        return send(res, 200, id.githubEmails ?? [{ email: id.email, verified, primary: true, visibility: 'private' }]);
      case 'gitlab':
        // GET /api/v4/user (the current user)
        return send(res, 200, {
          id: 4242,
          username: id.email.split('@')[0],
          name: 'Test User',
          state: id.gitlabState ?? 'active',
          locked: false,
          avatar_url: null,
          web_url: 'https://gitlab.example.invalid/test',
          created_at: '2020-01-01T00:00:00.000Z',
          email: id.email,
          public_email: null,
          confirmed_at: verified ? '2020-01-01T00:00:00.000Z' : null,
          two_factor_enabled: false,
        });
    }
  };

  /** GitLab GET /api/v4/groups?min_access_level=N&per_page=M&page=P, paginated like GitLab (per_page 20 by default, 100 at most). */
  const groups = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams): number => {
    const access = bearer(req, res, 'gitlab', NEEDED_SCOPES.gitlab.groups ?? []);
    if (typeof access === 'number') return access;
    const minLevel = Number(query.get('min_access_level') ?? '0');
    const perPage = Math.min(100, Math.max(1, Number(query.get('per_page') ?? '20') || 20));
    const page = Math.max(1, Number(query.get('page') ?? '1') || 1);
    const all = (access.identity.groups ?? []).filter((g) => g.accessLevel >= minLevel);
    const slice = all.slice((page - 1) * perPage, page * perPage);
    const totalPages = Math.max(1, Math.ceil(all.length / perPage));
    const body = slice.map((g, i) => ({
      id: 1000 + i + (page - 1) * perPage,
      name: g.fullPath.split('/').pop(),
      path: g.fullPath.split('/').pop(),
      full_name: g.fullPath.split('/').join(' / '),
      full_path: g.fullPath,
      visibility: 'private',
      parent_id: null,
    }));
    return send(res, 200, body, 'application/json; charset=utf-8', {
      'x-page': String(page),
      'x-per-page': String(perPage),
      'x-total': String(all.length),
      'x-total-pages': String(totalPages),
      'x-next-page': page < totalPages ? String(page + 1) : '',
    });
  };

  /** Which provider endpoint a path is, under the provider's base path. */
  const ROUTES: { provider: FakeProviderName; method: string; path: string; endpoint: FakeRequest['endpoint'] }[] = [
    { provider: 'google', method: 'GET', path: '/o/oauth2/v2/auth', endpoint: 'authorize' },
    { provider: 'google', method: 'POST', path: '/token', endpoint: 'token' },
    { provider: 'google', method: 'GET', path: '/v1/userinfo', endpoint: 'userinfo' },
    { provider: 'github', method: 'GET', path: '/login/oauth/authorize', endpoint: 'authorize' },
    { provider: 'github', method: 'POST', path: '/login/oauth/access_token', endpoint: 'token' },
    { provider: 'github', method: 'GET', path: '/api/v3/user/emails', endpoint: 'userinfo' },
    { provider: 'gitlab', method: 'GET', path: '/oauth/authorize', endpoint: 'authorize' },
    { provider: 'gitlab', method: 'POST', path: '/oauth/token', endpoint: 'token' },
    { provider: 'gitlab', method: 'GET', path: '/api/v4/user', endpoint: 'userinfo' },
    { provider: 'gitlab', method: 'GET', path: '/api/v4/groups', endpoint: 'groups' },
    { provider: 'okta', method: 'GET', path: '/v1/authorize', endpoint: 'authorize' },
    { provider: 'okta', method: 'POST', path: '/v1/token', endpoint: 'token' },
    { provider: 'okta', method: 'GET', path: '/v1/userinfo', endpoint: 'userinfo' },
  ];

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const route = ROUTES.find((r) => r.method === req.method && url.pathname === BASE_PATHS[r.provider] + r.path);
      if (!route) return send(res, 404, { error: 'not_found', path: url.pathname });
      let params: Record<string, string> = Object.fromEntries(url.searchParams);
      let status: number;
      if (route.endpoint === 'token') {
        const type = req.headers['content-type'] ?? '';
        const raw = await readBody(req);
        if (!type.startsWith('application/x-www-form-urlencoded')) {
          status = tokenError(
            res,
            route.provider,
            400,
            'invalid_request',
            'The token request must be application/x-www-form-urlencoded.',
            true,
          );
        } else {
          params = Object.fromEntries(new URLSearchParams(raw));
          status = await exchange(req, res, route.provider, params);
        }
      } else if (route.endpoint === 'authorize') {
        status = authorize(res, route.provider, url.searchParams);
      } else if (route.endpoint === 'groups') {
        status = groups(req, res, url.searchParams);
      } else {
        status = userinfo(req, res, route.provider);
      }
      requests.push({ provider: route.provider, endpoint: route.endpoint, method: req.method ?? '', params, status });
    })().catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { error: String(error) });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const base = (provider: FakeProviderName) => url + BASE_PATHS[provider];

  return {
    url,
    base,
    requests,
    register: (client) => void clients.set(client.clientId, client),
    nextIdentity: (identity) => void (pending = identity),
    authInput: (provider, client) => ({
      authProvider: provider,
      oauth2Key: client.clientId,
      oauth2Secret: client.clientSecret,
      oauth2RedirectUri: client.redirectUri,
      ...(provider === 'google' ? { oauth2GoogleBase: base('google') } : {}),
      ...(provider === 'github' ? { githubOauthDomain: base('github') } : {}),
      ...(provider === 'gitlab' ? { gitlabOauthDomain: base('gitlab') } : {}),
      ...(provider === 'okta' ? { oauth2OktaBaseUrl: base('okta') } : {}),
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
