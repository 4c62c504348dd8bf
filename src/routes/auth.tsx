// Sign-in with an OAuth2 provider (authorization code, `state`, PKCE where
// the provider takes it) and sign-out. /login is both the start and the
// callback (as in Flower, so existing redirect URIs keep working).

import type { Context } from 'hono';
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { LoginPage } from '../../templates/pages/login';
import { isHttps, OAUTH_COOKIE, SESSION_COOKIE } from '../auth/middleware';
import { normalizeEmail } from '../auth/email';
import { authorizeUrl, exchangeCode, SignInError, verifiedEmails } from '../auth/providers';
import { type OAuthStateClaims, pkceChallenge, randomToken, signToken, verifyToken } from '../auth/tokens';
import { notFound } from '../errors';
import type { AppEnv } from '../services';
import { errorMessage } from '../shared/log';
import { checkText, form, LIMITS, query } from './params';

const STATE_TTL_SECONDS = 600;

/**
 * Only a path on this site may follow a sign-in (no open redirect). Browsers
 * drop tabs and newlines from a Location and read a backslash as a slash, so
 * "/\t/evil.example" would be "//evil.example": no control characters,
 * spaces or backslashes at all, and the path must resolve to this origin.
 */
function safeNext(c: Context<AppEnv>, next: string | undefined): string {
  const prefix = c.var.services.ui.prefix;
  const home = `${prefix}/`;
  if (!next?.startsWith('/') || next.startsWith('//') || /[\u0000-\u0020\u007f\\]/.test(next)) return home;
  const base = new URL('http://stalk.invalid/');
  const resolved = new URL(next, base);
  if (resolved.origin !== base.origin) return home;
  return resolved.pathname + resolved.search + resolved.hash;
}

function cookieOptions(c: Context<AppEnv>, maxAge: number) {
  return { path: `${c.var.services.ui.prefix}/`, httpOnly: true, secure: isHttps(c), sameSite: 'Lax' as const, maxAge };
}

export const authRoutes = new Hono<AppEnv>()
  .get('/login', async (c) => {
    const { auth, ui, log } = c.var.services;
    const q = query(c);
    const code = q.text('code', { max: LIMITS.text });
    const returnedState = q.text('state', { max: LIMITS.text });
    // The provider sends the user back with ?error=... when it refused (or the user cancelled).
    const providerError = q.one('error');
    if (providerError !== undefined) checkText('error', providerError, LIMITS.text);
    // safeNext() sends a `next` with control characters home rather than refusing the sign-in.
    const next = q.one('next');
    if (next !== undefined) checkText('next', next, LIMITS.text, 'allowed');
    const provider = auth.provider;
    if (!provider) {
      if (auth.basic.length > 0) return c.redirect(`${ui.prefix}/`, 302);
      throw notFound('Sign-in is not configured (see --auth-provider)');
    }
    if (!code && providerError === undefined) {
      // Start: remember state, PKCE verifier and where to go next, signed, in a short-lived cookie.
      const claims: OAuthStateClaims = { state: randomToken(), verifier: randomToken(48), next: safeNext(c, next) };
      setCookie(
        c,
        OAUTH_COOKIE,
        await signToken(auth.key, 'oauth-state', { ...claims }, STATE_TTL_SECONDS),
        cookieOptions(c, STATE_TTL_SECONDS),
      );
      return c.redirect(authorizeUrl(provider, claims.state, await pkceChallenge(claims.verifier)), 302);
    }

    const refuse = (message: string, status: 400 | 403) =>
      c.html(<LoginPage ui={ui} provider={provider.name} message={message} next={`${ui.prefix}/`} />, status);
    const cookie = getCookie(c, OAUTH_COOKIE);
    deleteCookie(c, OAUTH_COOKIE, { path: `${ui.prefix}/` });
    if (providerError !== undefined || !code) {
      // Answered, not restarted: a provider that refuses at once would otherwise bounce the browser forever.
      const reason = /^[\w.-]{1,64}$/.test(providerError ?? '') ? providerError : 'an error';
      log.warn(`sign-in with ${provider.name}: the provider answered ${JSON.stringify(reason)}`);
      return refuse(`Sign-in failed: the provider answered ${reason}.`, 403);
    }
    const saved = cookie ? await verifyToken<OAuthStateClaims>(auth.key, 'oauth-state', cookie) : null;
    if (!saved || !returnedState || saved.state !== returnedState)
      return refuse('The sign-in expired or did not start here. Please try again.', 400);

    let emails: string[];
    try {
      emails = await verifiedEmails(provider, await exchangeCode(provider, code, saved.verifier));
    } catch (error) {
      log.warn(`sign-in with ${provider.name} failed: ${errorMessage(error)}`);
      return refuse(
        error instanceof SignInError ? `Sign-in failed: ${error.message}.` : 'Sign-in failed: the provider could not be reached.',
        403,
      );
    }
    const email = emails.find((e) => auth.emails?.test(e));
    if (!email) {
      const shown = emails[0] ?? 'your account';
      log.warn(`sign-in refused for ${JSON.stringify(shown)} (${emails.length === 0 ? 'no verified email' : 'not allowed by --auth'})`);
      return refuse(
        emails.length === 0
          ? 'Access denied: the provider has no verified email for your account.'
          : `Access denied to ${shown}. Please use another account or ask your admin to allow it.`,
        403,
      );
    }
    const session = await signToken(auth.key, 'session', { csrf: randomToken() }, auth.sessionTtlSeconds, normalizeEmail(email));
    setCookie(c, SESSION_COOKIE, session, cookieOptions(c, auth.sessionTtlSeconds));
    log.info(`${JSON.stringify(email)} signed in`);
    return c.redirect(safeNext(c, saved.next), 302);
  })
  .post('/logout', async (c) => {
    const { ui, auth } = c.var.services;
    // No parameters, but the body is still checked (a form, or nothing).
    await form(c);
    deleteCookie(c, SESSION_COOKIE, { path: `${ui.prefix}/` });
    return c.html(
      <LoginPage
        ui={{ ...ui, user: undefined, csrf: undefined }}
        provider={auth.provider?.name ?? null}
        message="You are signed out."
        next={`${ui.prefix}/`}
      />,
    );
  });
