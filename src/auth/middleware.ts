// Every request passes here: security headers on every response; then who
// is asking (Basic auth, a session cookie, an API token, or the metrics
// token), whether that is enough for this route, and, for requests that
// change something, that they come from our own pages (Origin and
// Sec-Fetch-Site) and, with a session, carry its CSRF token.

import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie } from 'hono/cookie';
import type { AppEnv, Services } from '../services';
import { checkBasicAuth, constantTimeEqual } from './basic';
import { authConfigured, emailRole } from './config';
import { hasRole, isRole, type Role, requiredRole } from '../shared/roles';
import { type SessionClaims, verifyToken } from './tokens';

export const SESSION_COOKIE = 'stalk_session';
export const OAUTH_COOKIE = 'stalk_oauth';
export const CSRF_HEADER = 'X-CSRF-Token';
export const CSRF_FIELD = '_csrf';

/** Served to anyone: liveness, static files, and the sign-in flow itself. */
const PUBLIC = new Set(['/healthcheck', '/login']);

const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

/**
 * Whether the browser reached us over https: the request's own scheme, or,
 * only with --trust-proxy, what the reverse proxy in front says. A client can
 * send any X-Forwarded-Proto, so it is not believed by default.
 */
export function isHttps(c: Context): boolean {
  if (new URL(c.req.url).protocol === 'https:') return true;
  const services = c.get('services') as Services | undefined;
  if (!services?.auth.trustProxy) return false;
  // The proxy nearest to us appends last: "https, http" means the last hop was http.
  const forwarded = c.req.header('x-forwarded-proto')?.split(',').pop()?.trim().toLowerCase();
  return forwarded === 'https';
}

export const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  let h = c.res.headers;
  try {
    h.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  } catch {
    // A response passed through from fetch() (e.g. an assets binding) has immutable headers.
    c.res = new Response(c.res.body, c.res);
    h = c.res.headers;
    h.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  }
  h.set('X-Content-Type-Options', 'nosniff');
  h.set('X-Frame-Options', 'DENY');
  h.set('Referrer-Policy', 'same-origin');
  h.set('Cross-Origin-Opener-Policy', 'same-origin');
  h.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=()');
  if (isHttps(c)) h.set('Strict-Transport-Security', 'max-age=31536000');
};

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A browser says where a request came from; one from another site is refused. Scripts send neither header. */
function crossSite(c: Context): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site === 'cross-site') return true;
  const origin = c.req.header('origin');
  if (!origin) return false;
  try {
    return new URL(origin).host !== new URL(c.req.url).host;
  } catch {
    return true;
  }
}

interface Identity {
  user: string;
  via: 'basic' | 'session' | 'token' | 'metrics-token';
  role: Role;
  csrf?: string;
}

async function identify(c: Context<AppEnv>, services: Services, path: string): Promise<Identity | null> {
  const { auth } = services;
  const header = c.req.header('authorization');
  const basic = checkBasicAuth(header, auth.basic);
  if (basic) return { user: basic.user, via: 'basic', role: basic.role };
  const bearer = header && /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (bearer) {
    // The metrics token opens /metrics and nothing else.
    if (path === '/metrics' && auth.metricsToken && constantTimeEqual(bearer, auth.metricsToken))
      return { user: 'metrics', via: 'metrics-token', role: 'viewer' };
    const token = await verifyToken<Record<string, unknown>>(auth.key, 'api', bearer);
    // Tokens minted before roles carry none: admin, as they were.
    if (token?.sub) {
      if (token.role !== undefined && !isRole(token.role)) return null;
      return { user: token.sub, via: 'token', role: isRole(token.role) ? token.role : 'admin' };
    }
  }
  const cookie = getCookie(c, SESSION_COOKIE);
  if (cookie) {
    const session = await verifyToken<SessionClaims>(auth.key, 'session', cookie);
    // The allowed emails may have changed since the session began.
    if (session?.sub && typeof session.csrf === 'string' && (!auth.emails || auth.emails.test(session.sub))) {
      // The role follows today's rules, not the ones at sign-in.
      return { user: session.sub, via: 'session', role: emailRole(auth, session.sub), csrf: session.csrf };
    }
    deleteCookie(c, SESSION_COOKIE, { path: `${services.ui.prefix}/` });
  }
  return null;
}

async function csrfToken(c: Context): Promise<string> {
  const header = c.req.header(CSRF_HEADER);
  if (header) return header;
  const type = c.req.header('content-type') ?? '';
  if (type.includes('application/x-www-form-urlencoded') || type.includes('multipart/form-data')) {
    const field = (await c.req.parseBody())[CSRF_FIELD];
    if (typeof field === 'string') return field;
  }
  return '';
}

/** `?next=` for the page htmx was on, when it is on this site (the sign-in checks it again). */
function returnTo(current: string | undefined, requestUrl: string): string {
  if (!current) return '';
  try {
    const page = new URL(current);
    if (page.host !== new URL(requestUrl).host) return '';
    return `?next=${encodeURIComponent(page.pathname + page.search)}`;
  } catch {
    return '';
  }
}

function deny(c: Context<AppEnv>, services: Services, path: string): Response {
  const api = path.startsWith('/api/') || path === '/metrics';
  if (!api && (c.req.method === 'GET' || c.req.method === 'HEAD') && services.auth.provider) {
    const next = `${services.ui.prefix}${path}${new URL(c.req.url).search}`;
    const login = `${services.ui.prefix}/login?next=${encodeURIComponent(next)}`;
    // A live panel's poll after the session ended: htmx cannot follow a
    // redirect to the provider, so it is told to load the sign-in page itself.
    if (c.req.header('HX-Request')) {
      c.header('HX-Redirect', `${services.ui.prefix}/login${returnTo(c.req.header('HX-Current-URL'), c.req.url)}`);
      return c.text('Authentication required', 401);
    }
    return c.redirect(login, 302);
  }
  if (services.auth.basic.length > 0) c.header('WWW-Authenticate', 'Basic realm="stalk", charset="UTF-8"');
  return api ? c.json({ error: 'Authentication required' }, 401) : c.text('Authentication required', 401);
}

export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  const services = c.var.services;
  const path = c.req.path.slice(services.ui.prefix.length) || '/';
  if (UNSAFE.has(c.req.method) && crossSite(c)) return c.text('Cross-site request refused', 403);
  if (PUBLIC.has(path) || path.startsWith('/static/')) return next();

  const identity = await identify(c, services, path);
  const openMetrics = path === '/metrics' && services.auth.metricsOpen;
  if (!authConfigured(services.auth)) {
    if (path.startsWith('/api/') && !services.auth.unauthenticatedApi && !identity) {
      return c.text(
        'FLOWER_UNAUTHENTICATED_API environment variable is required to enable API without authentication (or --unauthenticated-api)',
        401,
      );
    }
  } else if (!identity && !openMetrics) {
    return deny(c, services, path);
  }

  if (UNSAFE.has(c.req.method) && identity?.via === 'session') {
    const sent = await csrfToken(c);
    if (!sent || !constantTimeEqual(sent, identity.csrf ?? '')) return c.text('Missing or wrong CSRF token', 403);
  }

  // Without auth everyone may do everything (the exposure check at start
  // keeps that to this machine, --read-only or an explicit opt-in).
  const role: Role = identity?.role ?? 'admin';
  const needed = requiredRole(c.req.method, path);
  if (!hasRole(role, needed)) {
    const message = `${needed} role required (you are ${role})`;
    return path.startsWith('/api/') ? c.json({ error: message }, 403) : c.text(message, 403);
  }

  const user = identity?.user ?? 'anonymous';
  c.set('user', user);
  c.set('services', { ...services, ui: { ...services.ui, user: identity ? user : undefined, csrf: identity?.csrf, role } });
  return next();
};
