// Shared by the security tests: an app with auth on over a fresh SQLite
// database, a tiny cookie jar, a sign-in through the fake OAuth server
// followed by hand (every redirect checked), and a control client that only
// records what it was asked to do.

import { afterAll, beforeAll, expect } from 'vitest';
import type { AuthInput } from '../../src/auth/config';
import { OAUTH_COOKIE, SESSION_COOKIE } from '../../src/auth/middleware';
import type { Services } from '../../src/services';
import { type CommandResult, type ControlClient, type ControlCommand, outcomeFor } from '../../src/shared/control';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { type FakeIdentity, type FakeOAuthServer, type FakeProviderName, startFakeOAuth } from '../support/fake-oauth';

export type App = ReturnType<typeof testApp>;

/** The secret the test apps sign with (NO_AUTH_INPUT's). */
export const SECRET = 'test-cookie-secret-test-cookie-secret-0123456789';
export const BASIC = 'admin:s3cret-Pass,ops:0ther:pass';

export function basicHeader(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

export interface RecordingControl extends ControlClient {
  readonly commands: { command: ControlCommand; user: string }[];
}

/** A successful result of each command's type (a task id, no queues, no inspect replies, 'ok'). */
function fakeResult(command: ControlCommand): CommandResult {
  switch (command.kind) {
    case 'send':
      return { 'task-id': 'sent-1' };
    case 'result':
      return { 'task-id': command.task, status: 'PENDING', result: null, traceback: null };
    case 'queues':
      return [];
    case 'inspect':
      return {};
    case 'retry':
      return { tasks: Object.fromEntries(command.tasks.map((t) => [t, command.dryRun ? null : `retry-of-${t}`])), refused: {} };
    default:
      return 'ok';
  }
}

/** Every command succeeds (and is recorded); a command reaching it means the request passed auth and CSRF. */
export function recordingControl(): RecordingControl {
  const commands: { command: ControlCommand; user: string }[] = [];
  return {
    commands,
    run: async (command, user) => {
      commands.push({ command, user });
      return outcomeFor(command, { ok: true, result: fakeResult(command) });
    },
  };
}

export interface SetCookie {
  name: string;
  value: string;
  attributes: Map<string, string>;
  raw: string;
}

export function setCookies(response: Response): SetCookie[] {
  return response.headers.getSetCookie().map((raw) => {
    const [pair = '', ...attrs] = raw.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const attributes = new Map<string, string>();
    for (const a of attrs) {
      const i = a.indexOf('=');
      attributes.set((i < 0 ? a : a.slice(0, i)).toLowerCase(), i < 0 ? '' : a.slice(i + 1));
    }
    return { name: pair.slice(0, eq), value: decodeURIComponent(pair.slice(eq + 1)), attributes, raw };
  });
}

export function cookieFrom(response: Response, name: string): SetCookie | undefined {
  return setCookies(response).find((c) => c.name === name);
}

export function client(origin: string) {
  return {
    clientId: `stalk-${Math.random().toString(36).slice(2)}`,
    clientSecret: `secret-${Math.random().toString(36).slice(2)}`,
    redirectUri: `${origin}/login`,
  };
}

/** The AuthInput for `provider` against the fake, with a fresh client registered there. */
export function oauthInput(
  fake: FakeOAuthServer,
  provider: FakeProviderName,
  origin = 'http://stalk.test',
  extra: Partial<AuthInput> = {},
): Partial<AuthInput> {
  const c = client(origin);
  fake.register(c);
  return { auth: '.*@example\\.com', ...fake.authInput(provider, c), ...extra };
}

export interface SignInStart {
  /** The provider's authorize URL Stalk redirected to. */
  authorize: URL;
  /** The signed state cookie Stalk set. */
  stateCookie: SetCookie;
}

/** GET /login: Stalk answers with a redirect to the provider and a state cookie. */
export async function startSignIn(app: App, origin: string, next = '/tasks'): Promise<SignInStart> {
  const response = await app.request(`${origin}/login?next=${encodeURIComponent(next)}`);
  expect(response.status).toBe(302);
  const stateCookie = cookieFrom(response, OAUTH_COOKIE);
  expect(stateCookie, 'state cookie').toBeDefined();
  return { authorize: new URL(response.headers.get('location') ?? ''), stateCookie: stateCookie! };
}

/** The provider's consent step: the fake redirects back to Stalk's /login with a code and the state. */
export async function consent(fake: FakeOAuthServer, authorize: URL, identity: FakeIdentity): Promise<URL> {
  expect(authorize.href.startsWith(fake.url)).toBe(true);
  fake.nextIdentity(identity);
  const response = await fetch(authorize, { redirect: 'manual' });
  expect(response.status, await response.clone().text()).toBe(302);
  return new URL(response.headers.get('location') ?? '');
}

/** The callback: GET /login?code&state with the state cookie. */
export async function callback(app: App, returned: URL, stateCookie: SetCookie | null): Promise<Response> {
  const headers: Record<string, string> = stateCookie ? { cookie: `${OAUTH_COOKIE}=${encodeURIComponent(stateCookie.value)}` } : {};
  return app.request(returned.href, { headers });
}

export interface SignedIn {
  /** `stalk_session=...` for a Cookie header. */
  cookie: string;
  session: SetCookie;
  /** Where Stalk sent the browser after signing in. */
  location: string;
  /** The session's CSRF token, as the pages carry it. */
  csrf: string;
}

/** A whole sign-in, every step checked; fails the test if it does not end with a session. */
export async function signIn(app: App, fake: FakeOAuthServer, origin: string, identity: FakeIdentity, next = '/tasks'): Promise<SignedIn> {
  const { authorize, stateCookie } = await startSignIn(app, origin, next);
  const returned = await consent(fake, authorize, identity);
  const response = await callback(app, returned, stateCookie);
  expect(response.status, await response.clone().text()).toBe(302);
  const session = cookieFrom(response, SESSION_COOKIE);
  expect(session, 'session cookie').toBeDefined();
  const cookie = `${SESSION_COOKIE}=${encodeURIComponent(session!.value)}`;
  const page = await app.request(`${origin}/tasks`, { headers: { cookie } });
  expect(page.status).toBe(200);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  expect(csrf, 'the page carries the CSRF token').toBeDefined();
  return { cookie, session: session!, location: response.headers.get('location') ?? '', csrf: csrf! };
}

/** A route pattern from `app.routes` made a real path: parameters filled, wildcards a segment. */
export function concretePath(pattern: string): string {
  return pattern.replace(/:([A-Za-z_]+)(\{[^}]*\})?/g, (_m, name: string) => (name === 'id' ? 'task-1' : 'w1@host')).replace(/\*/g, 'x');
}

/** The routes an app answers (not its middleware), as [method, pattern]. */
export function handlerRoutes(app: App): { method: string; path: string }[] {
  const seen = new Set<string>();
  return app.routes
    .filter((r) => !(r.method === 'ALL' && r.path.endsWith('*')))
    .map((r) => ({ method: r.method, path: r.path }))
    .filter((r) => {
      const key = `${r.method} ${r.path}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

/**
 * testApp's app plus the built-in static files, mounted as src/node.ts does
 * (testApp has no static files). `health` may throw, for an error response.
 */
export function appWithStatic(
  database: OpenDatabase,
  options: { auth?: Partial<AuthInput>; prefix?: string; health?: Services['health']; logs?: string[] } = {},
): App {
  return testApp(database, {
    // The API closed without credentials, as in production (testApp opens it by default).
    auth: { unauthenticatedApi: false, ...options.auth },
    ui: { prefix: options.prefix ?? '' },
    staticFiles: true,
    ...(options.health ? { health: options.health } : {}),
    ...(options.logs ? { logs: options.logs } : {}),
  });
}

/** A SQLite database and a fake OAuth server for the enclosing suite, handed over once both are up. */
export function useDatabaseAndFakeOAuth(
  ready: (database: Awaited<ReturnType<typeof openTestDatabase>>, fake: FakeOAuthServer) => void,
): void {
  let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let fake: FakeOAuthServer | undefined;
  beforeAll(async () => {
    [database, fake] = await Promise.all([openTestDatabase('sqlite'), startFakeOAuth()]);
    ready(database, fake);
  });
  afterAll(async () => {
    await Promise.all([fake?.close(), database?.drop()]);
  });
}
