// /static/* under a URL prefix: Cloudflare serves assets at their own paths
// (/static/...) before the Worker runs; a prefixed path reaches the Worker,
// which asks the assets binding for the path without the prefix.

import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../services';
import type { WorkerEnv } from './bindings';

export function prefixedAssets(prefix: string): MiddlewareHandler<AppEnv>[] {
  if (!prefix) return [];
  const handler: MiddlewareHandler<AppEnv> = async (c, next) => {
    const assets = (c.env as WorkerEnv | undefined)?.ASSETS;
    if (!assets) return next();
    const url = new URL(c.req.url);
    url.pathname = url.pathname.slice(prefix.length);
    const response = await assets.fetch(new Request(url.toString(), c.req.raw));
    if (response.status === 404) return next();
    // The assets binding answers with immutable headers; later middleware adds some.
    return new Response(response.body, response);
  };
  return [handler];
}
