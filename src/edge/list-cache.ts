// The Worker's task-list cache: the task lists every open tasks page polls
// (the /tasks htmx panel), and the lists other clients poll (Flower's
// DataTables endpoint /tasks/datatable, /api/tasks), kept for a moment per
// Cloudflare location by their exact query, so many viewers watching the
// same list cost one database round trip per location per interval.
//
// Built on the shared-page cache (shared-cache.ts) and mounted the same way,
// after authentication: an answer is only ever served to someone let in.
// What is never shared: a signed-in viewer's full /tasks page (their name
// and CSRF token), and anything asked for with `Cache-Control: no-cache`.
//
// DataTables numbers its requests (`draw`, echoed back) and jQuery adds a
// cache-busting `_`: both are left out of the key and the answer's `draw`
// is the asker's own. A `draw` the route would refuse skips the cache, so
// it is still refused.

import type { Context, MiddlewareHandler } from 'hono';
import { type SharedPageCacheOptions, sharedPageCache, signedIn } from './shared-cache';

/** DataTables' draw counter, as the route accepts it (a 32-bit integer). */
const DRAW = /^\d{1,10}$/;
const MAX_DRAW = 2_147_483_647;

const isDatatable = (c: Context) => /\/tasks\/datatable\/?$/.test(c.req.path);

/** The request's draw when it is one the route accepts; undefined when absent; null when it would be refused. */
function drawOf(c: Context): number | undefined | null {
  const values = c.req.queries('draw');
  if (!values || values.length === 0) return undefined;
  if (values.length > 1 || !DRAW.test(values[0] ?? '')) return null;
  const draw = Number(values[0]);
  return draw <= MAX_DRAW ? draw : null;
}

export function taskListCache(options: Pick<SharedPageCacheOptions, 'ttlSeconds' | 'cache'> = {}): MiddlewareHandler {
  return sharedPageCache({
    ...options,
    // The full tasks page names a signed-in viewer; the panel and the JSON lists name no one.
    personal: (c) => signedIn(c) && !isDatatable(c) && !c.req.path.includes('/api/') && !c.req.header('HX-Request'),
    ignoredParams: (c) => {
      if (!isDatatable(c)) return [];
      return drawOf(c) === null ? undefined : ['draw', '_'];
    },
    adapt: async (hit, c) => {
      if (!isDatatable(c) || hit.status !== 200) return hit;
      const body = (await hit.json()) as Record<string, unknown>;
      const headers = new Headers(hit.headers);
      headers.delete('Content-Length');
      return new Response(JSON.stringify({ ...body, draw: drawOf(c) ?? 0 }), { status: hit.status, headers });
    },
  });
}
