// What the Worker answers while it is not configured: a missing or
// malformed binding answers every request with a 500 naming it (JSON under
// /api/, a short page elsewhere); without a sign-in method (closed by
// default) everything but /healthcheck gets the page saying what to set.

import type { MiddlewareHandler } from 'hono';
import { ConfigErrorPage } from '../../templates/pages/config-error';
import type { AppEnv } from '../services';
import { CLOSED_BY_DEFAULT, ConfigError } from './config';

export function configErrorResponse(request: Request, error: ConfigError): Response {
  const headers = { 'Cache-Control': 'no-store' };
  const path = new URL(request.url).pathname;
  if (path.includes('/api/') || (request.headers.get('Accept') ?? '').includes('application/json')) {
    return Response.json({ error: error.message, problems: error.problems }, { status: 500, headers });
  }
  if (path.endsWith('/healthcheck')) return new Response(`${error.message}\n`, { status: 500, headers });
  const html = `<!doctype html>${String(ConfigErrorPage({ problems: error.problems, lead: error.lead }))}`;
  return new Response(html, { status: 500, headers: { ...headers, 'Content-Type': 'text/html; charset=utf-8' } });
}

/** No sign-in configured: /healthcheck answers as usual (static files come before this); everything else is the configuration page. */
export function closedGate(prefix: string): MiddlewareHandler<AppEnv> {
  const error = new ConfigError([...CLOSED_BY_DEFAULT.items], CLOSED_BY_DEFAULT.lead);
  return async (c, next) => {
    if (c.req.path === `${prefix}/healthcheck`) return next();
    return configErrorResponse(c.req.raw, error);
  };
}
