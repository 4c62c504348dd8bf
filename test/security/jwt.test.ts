// Sessions and API tokens are JWTs signed with the cookie secret, HS256
// pinned. Forged, expired, `alg: none`, wrong-key, wrong-algorithm,
// tampered and wrong-kind tokens are refused, both as the session cookie and
// as an API bearer token; a token minted by `npm run token` works on /api.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/auth/middleware';
import { secretKey, signToken } from '../../src/auth/tokens';
import { testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { REPO_ROOT } from '../support/stalk';
import { type App, BASIC, recordingControl, SECRET } from './support';

const run = promisify(execFile);
const KEY = secretKey(SECRET);
const OTHER_KEY = new TextEncoder().encode('an-entirely-different-secret-0123456789abcdef');
const NOW = () => Math.floor(Date.now() / 1000);

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const hmac = async (alg: 'SHA-256' | 'SHA-384', key: Uint8Array, data: string) => {
  const k = await crypto.subtle.importKey('raw', new Uint8Array(key), { name: 'HMAC', hash: alg }, false, ['sign']);
  return Buffer.from(await crypto.subtle.sign('HMAC', k, new TextEncoder().encode(data))).toString('base64url');
};

/** A token signed by hand (any header, any payload), HMAC'd with `key` as SHA-256 unless said otherwise. */
async function handMade(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: Uint8Array = KEY,
  hash: 'SHA-256' | 'SHA-384' = 'SHA-256',
) {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${await hmac(hash, key, input)}`;
}

function claims(kind: 'session' | 'api', sub = 'mallory@example.com') {
  return { iss: 'stalk', aud: kind, sub, iat: NOW(), exp: NOW() + 3600, ...(kind === 'session' ? { csrf: 'c'.repeat(32) } : {}) };
}

/** Flip one character in the middle of the signature (the last one may only change padding bits). */
function flipSignature(token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const i = Math.floor(s.length / 2);
  return `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
}

/** The bad tokens, per kind: each must be refused. */
async function badTokens(kind: 'session' | 'api'): Promise<[string, string][]> {
  const good = await signToken(KEY, kind, kind === 'session' ? { csrf: 'c'.repeat(32) } : {}, 3600, 'mallory@example.com');
  const [h, p, s] = good.split('.') as [string, string, string];
  const payload = decodeJwt(good);
  return [
    ['forged signature', flipSignature(good)],
    ['tampered payload (another user, old signature)', `${h}.${b64({ ...payload, sub: 'admin@example.com' })}.${s}`],
    ['tampered payload (later expiry, old signature)', `${h}.${b64({ ...payload, exp: NOW() + 10 * 365 * 86400 })}.${s}`],
    ['expired', await new SignJWT({ ...claims(kind), exp: NOW() - 5 }).setProtectedHeader({ alg: 'HS256' }).sign(KEY)],
    ['alg: none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims(kind))}.`],
    ['alg: None', `${b64({ alg: 'None', typ: 'JWT' })}.${b64(claims(kind))}.`],
    ['alg: none with the real signature kept', `${b64({ alg: 'none', typ: 'JWT' })}.${p}.${s}`],
    ['wrong key', await new SignJWT(claims(kind)).setProtectedHeader({ alg: 'HS256' }).sign(OTHER_KEY)],
    ['HS384 with the right key', await new SignJWT(claims(kind)).setProtectedHeader({ alg: 'HS384' }).sign(KEY)],
    ['HS512 with the right key', await new SignJWT(claims(kind)).setProtectedHeader({ alg: 'HS512' }).sign(KEY)],
    ['header says HS384, signed HS256', await handMade({ alg: 'HS384', typ: 'JWT' }, claims(kind))],
    ['header says RS256, HMAC with the secret (algorithm confusion)', await handMade({ alg: 'RS256', typ: 'JWT' }, claims(kind))],
    ['no expiry', await new SignJWT({ ...claims(kind), exp: undefined }).setProtectedHeader({ alg: 'HS256' }).sign(KEY)],
    ['another issuer', await new SignJWT({ ...claims(kind), iss: 'flower' }).setProtectedHeader({ alg: 'HS256' }).sign(KEY)],
    [
      'another kind (audience)',
      await signToken(KEY, kind === 'session' ? 'api' : 'session', { csrf: 'c'.repeat(32) }, 3600, 'mallory@example.com'),
    ],
    ['an OAuth state token', await signToken(KEY, 'oauth-state', { state: 's', verifier: 'v', next: '/' }, 3600, 'mallory@example.com')],
    ['not before the future', await new SignJWT({ ...claims(kind), nbf: NOW() + 600 }).setProtectedHeader({ alg: 'HS256' }).sign(KEY)],
    ['not a JWT', 'mallory@example.com'],
    ['two parts', `${h}.${p}`],
  ];
}

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let app: App;
const control = recordingControl();

beforeAll(async () => {
  database = await openTestDatabase('sqlite');
  // Basic auth on (no OAuth): the cookie and bearer paths are still checked, and a page without credentials answers 401.
  app = testApp(database, { control, auth: { basicAuth: BASIC } });
});
afterAll(async () => {
  await database?.drop();
});

describe('session cookie', () => {
  it('a valid session opens pages and the API (the control case for what follows)', async () => {
    const token = await signToken(KEY, 'session', { csrf: 'c'.repeat(32) }, 3600, 'mallory@example.com');
    for (const path of ['/tasks', '/api/workers']) {
      expect((await app.request(path, { headers: { cookie: `${SESSION_COOKIE}=${token}` } })).status, path).toBe(200);
    }
  });

  it('a session without its CSRF claim is refused', async () => {
    const token = await signToken(KEY, 'session', {}, 3600, 'mallory@example.com');
    expect((await app.request('/tasks', { headers: { cookie: `${SESSION_COOKIE}=${token}` } })).status).toBe(401);
  });

  it('refuses every bad token, on pages and API, and tells the browser to drop it', async () => {
    for (const [label, token] of await badTokens('session')) {
      for (const path of ['/tasks', '/api/workers']) {
        const response = await app.request(path, { headers: { cookie: `${SESSION_COOKIE}=${token}` } });
        expect(response.status, `${label} on ${path}`).toBe(401);
        expect(await response.text(), label).not.toContain('mallory');
      }
      const response = await app.request('/tasks', { headers: { cookie: `${SESSION_COOKIE}=${token}` } });
      expect(response.headers.getSetCookie().join(), label).toMatch(new RegExp(`${SESSION_COOKIE}=;.*Max-Age=0`));
    }
  });
});

describe('API bearer token', () => {
  it('refuses every bad token on the API and on pages', async () => {
    for (const [label, token] of await badTokens('api')) {
      for (const path of ['/api/workers', '/api/tasks', '/tasks']) {
        const response = await app.request(path, { headers: { authorization: `Bearer ${token}` } });
        expect(response.status, `${label} on ${path}`).toBe(401);
      }
    }
  });

  it('works when `npm run token` made it, on the API (reads and control, no CSRF needed), naming its holder', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'src/token.ts', '--name', 'ci-bot', '--ttl', '2h', '--cookie-secret', SECRET],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '' },
        timeout: 15_000,
      },
    );
    const token = stdout.trim();
    const payload = decodeJwt(token);
    expect(payload).toMatchObject({ sub: 'ci-bot', aud: 'api', iss: 'stalk' });
    expect(payload.exp! - NOW()).toBeGreaterThan(7100);
    expect(payload.exp! - NOW()).toBeLessThanOrEqual(7200);

    const headers = { authorization: `Bearer ${token}` };
    expect((await app.request('/api/workers', { headers })).status).toBe(200);
    expect((await app.request('/api/tasks', { headers })).status).toBe(200);
    const action = await app.request('/api/worker/pool/grow/w1@host?n=2', { method: 'POST', headers });
    expect(action.status).toBe(200);
    expect(control.commands.at(-1)).toMatchObject({ user: 'ci-bot', command: { kind: 'worker', action: 'pool_grow', worker: 'w1@host' } });

    // The same token minted with another secret is refused.
    const { stdout: other } = await run(
      process.execPath,
      ['--import', 'tsx', 'src/token.ts', '--name', 'ci-bot', '--cookie-secret', 'x'.repeat(40)],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '' }, timeout: 15_000 },
    );
    expect((await app.request('/api/workers', { headers: { authorization: `Bearer ${other.trim()}` } })).status).toBe(401);
  });
});
