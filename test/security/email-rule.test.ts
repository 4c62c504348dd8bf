// `--auth` must match the whole email (Flower's CVE-2022-30034 was a
// partial match). The documented case policy (src/auth/email.ts): the
// address's ASCII letters are lowered before matching, nothing else is
// case-folded, so Unicode look-alikes (Kelvin sign, long s, dotted I) never
// pass for ASCII letters. Unit-level, then through real sign-ins.

import { describe, expect, it } from 'vitest';
import { authSettings } from '../../src/auth/config';
import { emailRule } from '../../src/auth/email';
import { SESSION_COOKIE } from '../../src/auth/middleware';
import { NO_AUTH_INPUT, testApp } from '../support/app';
import type { openTestDatabase } from '../support/databases';
import type { FakeOAuthServer } from '../support/fake-oauth';
import { callback, consent, cookieFrom, oauthInput, signIn, startSignIn, useDatabaseAndFakeOAuth } from './support';

describe('emailRule (--auth)', () => {
  const domain = emailRule('.*@example\\.com');

  it.each(['a@example.com', 'first.last+tag@example.com', 'x@EXAMPLE.COM', 'Mixed.Case@Example.Com'])('accepts %j', (email) => {
    expect(domain.test(email)).toBe(true);
  });

  it.each([
    ['a suffix after the domain', 'a@example.com.evil.org'],
    ['a longer domain ending the same', 'a@evilexample.com'],
    ['a subdomain', 'a@mail.example.com'],
    ['a trailing newline', 'evil@example.com\n'],
    ['a second line', 'evil@example.com\nattacker@evil.org'],
    ['a first line', 'attacker@evil.org\nx@example.com'],
    ['a carriage return', 'evil@example.com\r'],
    ['a line separator', 'evil@example.com\u2028'],
    ['a NUL', 'evil@example.com\u0000'],
    ['a trailing space', 'evil@example.com '],
    ['a leading space', ' evil@example.com'],
    ['the domain as the local part', 'example.com@evil.org'],
    ['two @', 'a@evil.org@example.com'],
    ['an empty local part', '@example.com'],
    ['an over-long address', `${'a'.repeat(250)}@example.com`],
    ['an upper-case suffix', 'x@EXAMPLE.COM.evil.org'],
  ])('refuses %s (%j)', (_label, email) => {
    expect(domain.test(email)).toBe(false);
  });

  it('anchors every alternative of the pattern (prefix and suffix tricks)', () => {
    const two = emailRule('alice@a\\.com|bob@b\\.com');
    expect(two.test('alice@a.com')).toBe(true);
    expect(two.test('bob@b.com')).toBe(true);
    for (const email of ['alice@a.com.evil.org', 'evil-bob@b.com', 'xalice@a.com', 'bob@b.comx', 'alice@a.com|bob@b.com']) {
      expect(two.test(email), email).toBe(false);
    }
    const one = emailRule('admin@example\\.com');
    for (const email of ['evil-admin@example.com', 'admin@example.com.evil', 'admin@example.co', 'admin@example.comm']) {
      expect(one.test(email), email).toBe(false);
    }
    expect(one.test('ADMIN@example.com')).toBe(true);
  });

  it('does not case-fold Unicode look-alikes into ASCII letters', () => {
    // K (U+212A KELVIN SIGN) lower-cases and case-folds to "k"; ſ (U+017F) folds to "s"; İ (U+0130) lower-cases to "i̇".
    expect('\u212A'.toLowerCase()).toBe('k');
    expect(emailRule('.*@kinetic\\.example').test('x@\u212Ainetic.example')).toBe(false);
    expect(emailRule('.*@kinetic\\.example').test('x@\u212AINETIC.EXAMPLE')).toBe(false);
    expect(emailRule('.*@sso\\.example').test('x@\u017Fso.example')).toBe(false);
    expect(emailRule('.*@inc\\.example').test('x@\u0130nc.example')).toBe(false);
    expect(emailRule('kate@example\\.com').test('\u212Aate@example.com')).toBe(false);
    expect(emailRule('.*@kinetic\\.example').test('x@KINETIC.example')).toBe(true);
  });

  it('takes the pattern as written: upper-case pattern letters match nothing (write it in lower case)', () => {
    expect(emailRule('.*@Example\\.com').test('x@Example.com')).toBe(false);
  });

  it('refuses a broken pattern at start-up, with the option named', () => {
    expect(() => emailRule('(.*@example\\.com')).toThrow(/--auth/);
    expect(() =>
      authSettings({
        ...NO_AUTH_INPUT,
        authProvider: 'google',
        auth: '',
        oauth2Key: 'k',
        oauth2Secret: 's',
        oauth2RedirectUri: 'http://x/login',
      }),
    ).toThrow(/--auth/);
  });
});

describe('--auth through real sign-ins', () => {
  const ORIGIN = 'http://stalk.test';
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let fake: FakeOAuthServer;
  useDatabaseAndFakeOAuth((d, f) => ([database, fake] = [d, f]));

  it.each([
    ['google', 'a@example.com.evil.org'],
    ['okta', 'evil@example.com\n'],
    ['github', 'x@EXAMPLE.COM.evil.org'],
    ['gitlab', 'evil@example.com\nceo@evil.org'],
    ['google', 'x@mail.example.com'],
  ] as const)('%s: refuses %j', async (provider, email) => {
    const app = testApp(database, { auth: oauthInput(fake, provider) });
    const { authorize, stateCookie } = await startSignIn(app, ORIGIN);
    const response = await callback(app, await consent(fake, authorize, { email }), stateCookie);
    expect(response.status).toBe(403);
    expect(cookieFrom(response, SESSION_COOKIE)).toBeUndefined();
  });

  it('okta: refuses a Kelvin-sign domain; accepts an upper-case address and names the user in lower case', async () => {
    const app = testApp(database, { auth: oauthInput(fake, 'okta', ORIGIN, { auth: '.*@kinetic\\.example' }) });
    const { authorize, stateCookie } = await startSignIn(app, ORIGIN);
    const refused = await callback(app, await consent(fake, authorize, { email: 'x@\u212Ainetic.example' }), stateCookie);
    expect(refused.status).toBe(403);
    const signed = await signIn(app, fake, ORIGIN, { email: 'Ops@KINETIC.example' });
    const page = await app.request(`${ORIGIN}/tasks`, { headers: { cookie: signed.cookie } });
    expect(await page.text()).toContain('>ops@kinetic.example<');
  });
});
