// Live panels answer a poll for what the page already shows with 304: the
// fragment (an htmx request, HX-Request) carries an ETag, the hash of its
// rendered body, and a request whose If-None-Match names it gets no body
// (public/static/stalk.js sends it and has htmx leave the panel alone on
// 304). Full pages are left as they are.
//
// createApp mounts this on the polled pages after authentication and outside
// the Worker's shared-page cache, so a cached fragment is compared too. A
// route may set the ETag itself when its body carries something that changes
// on every render but is not news (the workers panel's "Updated" time).

import type { MiddlewareHandler } from 'hono';
import { etag } from 'hono/etag';
import type { AppEnv } from '../services';

const tagged = etag();

export const fragmentETag: MiddlewareHandler<AppEnv> = (c, next) => (c.req.header('HX-Request') ? tagged(c, next) : next());

/** A strong ETag for a rendered body: its SHA-1, as hono/etag computes it. */
export async function bodyETag(body: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-1', new TextEncoder().encode(body));
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  return `"${hex}"`;
}
