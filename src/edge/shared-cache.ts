// The Worker's shared-page cache: the dashboard panels every viewer sees the
// same way (workers, broker) are rendered at most about once a second per
// Cloudflare location and served from the Cache API (`caches.default`) in
// between, so a thousand open dashboards polling every few seconds cost the
// database about one query a second per location instead of a thousand.
//
// createApp mounts this on the shared pages only, after authentication: a
// cached page is only ever served to a viewer who was let in. The task lists
// use it too, with their own rules (list-cache.ts). Nothing here
// needs the Workers runtime: without `caches.default` (Node) it steps aside.
//
// Notes for production:
// - The Cache API works on a custom domain (a route or custom domain in a
//   zone), not on *.workers.dev, where put/match do nothing (pages are then
//   simply rendered every time).
// - Cloudflare's cache ignores Vary, so the variant (full page or htmx
//   fragment) is part of the key instead.

import type { Context, MiddlewareHandler } from 'hono';

/** Header telling whether a response came from the shared cache (HIT) or was rendered (MISS). */
export const SHARED_CACHE_HEADER = 'X-Stalk-Cache';

/** The query parameter added to cache keys for the variant; never seen by the routes. */
const VARIANT_PARAM = '__stalk_variant';

export interface SharedPageCacheOptions {
  /** How long a rendered page is served to everyone (seconds, whole). Default 1. */
  ttlSeconds?: number;
  /** Where to cache; default `caches.default` when the runtime has it. */
  cache?: () => Cache | undefined;
  /**
   * Whether this request's answer is the viewer's own (never shared). By
   * default a signed-in viewer's full page is (it carries their name and
   * CSRF token); htmx fragments are not.
   */
  personal?: (c: Context) => boolean;
  /**
   * Query parameters left out of the key, or undefined when the request must
   * not use the cache at all (e.g. a counter it cannot vouch for). Default:
   * the whole query is the key.
   */
  ignoredParams?: (c: Context) => readonly string[] | undefined;
  /** Turns a cached answer into this request's (e.g. echoes its counter); runs on hits only. */
  adapt?: (hit: Response, c: Context) => Response | Promise<Response>;
}

interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

/** Cloudflare's default cache (`caches.default`), or undefined outside the Workers runtime. */
export function defaultEdgeCache(): Cache | undefined {
  const storage = (globalThis as { caches?: { default?: Cache } }).caches;
  return storage?.default;
}

/** The cache key: the URL plus whether htmx asked for a fragment (HX-Request) or the browser for the page. */
export function sharedCacheKey(request: Request, ignored: readonly string[] = []): Request {
  const url = new URL(request.url);
  for (const name of ignored) url.searchParams.delete(name);
  url.searchParams.set(VARIANT_PARAM, request.headers.get('HX-Request') ? 'fragment' : 'page');
  return new Request(url.toString(), { method: 'GET' });
}

/** `c.executionCtx` throws where there is none (Node, app.request in tests). */
function executionContext(c: Context): WaitUntil | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}

/** A response fit to share: 200, no cookie, and nothing asked not to store it. */
function shareable(response: Response): boolean {
  if (response.status !== 200) return false;
  if (response.headers.has('Set-Cookie')) return false;
  const cacheControl = response.headers.get('Cache-Control') ?? '';
  return !/\b(no-store|private|no-cache)\b/i.test(cacheControl);
}

/** The viewer is signed in (the page names them), as the services say. */
export function signedIn(c: Context): boolean {
  return Boolean((c.get('services') as { ui?: { user?: string } } | undefined)?.ui?.user);
}

/**
 * A full page for a signed-in viewer carries their name and CSRF token:
 * never share it. Fragments (HX-Request) carry neither.
 */
function signedInPage(c: Context): boolean {
  return signedIn(c) && !c.req.header('HX-Request');
}

export function sharedPageCache(options: SharedPageCacheOptions = {}): MiddlewareHandler {
  const ttl = Math.max(1, Math.round(options.ttlSeconds ?? 1));
  const cacheOf = options.cache ?? defaultEdgeCache;
  const personal = options.personal ?? signedInPage;
  return async (c, next) => {
    const cache = c.req.method === 'GET' ? cacheOf() : undefined;
    if (personal(c)) return next();
    // Requests that carry their own cache directives (a hard reload) still get a fresh page.
    if (!cache || /\bno-cache\b/i.test(c.req.header('Cache-Control') ?? '')) return next();
    const ignored = options.ignoredParams ? options.ignoredParams(c) : [];
    if (!ignored) return next();
    const key = sharedCacheKey(c.req.raw, ignored);

    let hit: Response | undefined;
    try {
      hit = await cache.match(key);
    } catch {
      hit = undefined; // a cache that fails is no cache
    }
    if (hit) {
      const headers = new Headers(hit.headers);
      // What the cache needed is not the viewer's business; what the page said is restored.
      headers.delete('Cache-Control');
      headers.delete('CF-Cache-Status');
      headers.set('Vary', 'HX-Request');
      headers.set(SHARED_CACHE_HEADER, 'HIT');
      const served = new Response(hit.body, { status: hit.status, headers });
      c.res = options.adapt ? await options.adapt(served, c) : served;
      return;
    }

    await next();
    const response = c.res;
    if (!shareable(response)) return;
    const copy = response.clone();
    const stored = new Response(copy.body, copy);
    stored.headers.set('Cache-Control', `public, max-age=${ttl}, s-maxage=${ttl}`);
    stored.headers.delete('Vary'); // the key carries the variant
    stored.headers.delete('Date'); // the entry's age starts now, not at the Date header's whole second
    const served = new Response(response.body, response);
    served.headers.set(SHARED_CACHE_HEADER, 'MISS');
    c.res = served;
    const put = cache.put(key, stored).catch(() => undefined);
    const ctx = executionContext(c);
    if (ctx) ctx.waitUntil(put);
    else await put;
  };
}
