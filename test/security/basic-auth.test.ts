// --basic-auth user:pass[,user2:pass2]: the right pair opens pages and API,
// anything else is refused with a Basic challenge; and Flower's
// FLOWER_UNAUTHENTICATED_API switch (--unauthenticated-api), which opens the
// API only when no auth is configured at all.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkBasicAuth, constantTimeEqual, parseBasicAuthOption } from '../../src/auth/basic';
import { testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { type App, BASIC, basicHeader } from './support';

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let app: App;

beforeAll(async () => {
  database = await openTestDatabase('sqlite');
  app = testApp(database, { auth: { basicAuth: `${BASIC},j\u00fcrgen:p\u00e4ssw\u00f6rd` } });
});
afterAll(async () => {
  await database?.drop();
});

const get = (path: string, authorization?: string) => app.request(path, { headers: authorization ? { authorization } : {} });

describe('--basic-auth', () => {
  it.each([
    ['admin', 's3cret-Pass'],
    ['ops', '0ther:pass'],
    ['j\u00fcrgen', 'p\u00e4ssw\u00f6rd'],
  ])('lets %s in with the right password, on pages and API', async (user, password) => {
    for (const path of ['/tasks', '/api/workers', '/metrics']) {
      const response = await get(path, basicHeader(user, password));
      expect(response.status, path).toBe(200);
    }
    const page = await (await get('/tasks', basicHeader(user, password))).text();
    expect(page).toContain(`<span class="muted">${user}</span>`);
  });

  it.each([
    ['a wrong password', basicHeader('admin', 'wrong')],
    ['an unknown user', basicHeader('root', 's3cret-Pass')],
    ['another user’s password', basicHeader('admin', '0ther:pass')],
    ['the password’s prefix', basicHeader('admin', 's3cret-Pas')],
    ['the password and more', basicHeader('admin', 's3cret-Pass2')],
    ['the user in another case', basicHeader('Admin', 's3cret-Pass')],
    ['the password in another case', basicHeader('admin', 'S3CRET-PASS')],
    ['an empty password', basicHeader('admin', '')],
    ['the user alone', `Basic ${Buffer.from('admin').toString('base64')}`],
    ['both users joined', basicHeader('admin', 's3cret-Pass,ops:0ther:pass')],
    ['the password in Latin-1 (not UTF-8)', `Basic ${Buffer.from('j\u00fcrgen:p\u00e4ssw\u00f6rd', 'latin1').toString('base64')}`],
    ['not base64', 'Basic !!!!'],
    ['the pair unencoded', 'Basic admin:s3cret-Pass'],
    ['another scheme', `Digest ${Buffer.from('admin:s3cret-Pass').toString('base64')}`],
    ['the pair as a bearer token', `Bearer ${Buffer.from('admin:s3cret-Pass').toString('base64')}`],
  ])('refuses %s', async (_label, authorization) => {
    for (const path of ['/tasks', '/api/workers']) {
      const response = await get(path, authorization);
      expect(response.status, path).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Basic realm="stalk", charset="UTF-8"');
    }
  });

  it('has no sign-in page to show: /login goes home', async () => {
    const response = await get('/login');
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/');
  });

  it('parses the option strictly, never echoing a password', () => {
    expect(parseBasicAuthOption('a:b,c:d:e')).toEqual([
      { user: 'a', password: 'b', role: 'admin' },
      { user: 'c', password: 'd:e', role: 'admin' },
    ]);
    expect(parseBasicAuthOption('')).toEqual([]);
    for (const bad of ['nocolon', ':pass', 'user:', 'a:b,,c:d']) expect(() => parseBasicAuthOption(bad), bad).toThrow(/--basic-auth/);
    for (const bad of ['a:b,admin;hunter2', 'a:b,hunter2', 'a:b,admin hunter2:']) {
      expect(() => parseBasicAuthOption(bad)).toThrow(/entry 2 of 2/);
      expect(() => parseBasicAuthOption(bad)).not.toThrow(/hunter2/);
    }
  });

  it('compares whole strings (lengths included) and checks every credential', () => {
    expect(constantTimeEqual('s3cret', 's3cret')).toBe(true);
    for (const [a, b] of [
      ['s3cret', 's3cre'],
      ['s3cre', 's3cret'],
      ['', 'x'],
      ['x', ''],
      ['abc', 'abd'],
      ['\u00e4', 'a'],
    ]) {
      expect(constantTimeEqual(a!, b!), `${a} vs ${b}`).toBe(false);
    }
    expect(constantTimeEqual('', '')).toBe(true);
    const creds = parseBasicAuthOption('a:1,b:2,c:3');
    expect(checkBasicAuth(basicHeader('c', '3'), creds)?.user).toBe('c');
    expect(checkBasicAuth(basicHeader('a', '1'), creds)?.user).toBe('a');
    expect(checkBasicAuth(basicHeader('a', '2'), creds)).toBeNull();
    expect(checkBasicAuth(basicHeader('a', '1'), [])).toBeNull();
  });
});

describe('--unauthenticated-api (FLOWER_UNAUTHENTICATED_API)', () => {
  it('without any auth and without the switch, the API is closed while pages are open, as in Flower', async () => {
    const open = testApp(database, { auth: { unauthenticatedApi: false } });
    const api = await open.request('/api/workers');
    expect(api.status).toBe(401);
    expect(await api.text()).toContain('FLOWER_UNAUTHENTICATED_API');
    expect((await open.request('/api/task/types')).status).toBe(401);
    expect((await open.request('/tasks')).status).toBe(200);
    expect((await open.request('/metrics')).status).toBe(200);
  });

  it('without any auth, the switch opens the API', async () => {
    const open = testApp(database, { auth: { unauthenticatedApi: true } });
    expect((await open.request('/api/workers')).status).toBe(200);
    expect((await open.request('/api/task/types')).status).toBe(200);
  });

  it('does not open anything when auth is configured', async () => {
    const closed = testApp(database, { auth: { basicAuth: BASIC, unauthenticatedApi: true } });
    for (const path of ['/api/workers', '/api/task/types', '/tasks', '/metrics']) {
      expect((await closed.request(path)).status, path).toBe(401);
    }
    expect((await closed.request('/api/workers', { headers: { authorization: basicHeader('admin', 's3cret-Pass') } })).status).toBe(200);
  });
});
