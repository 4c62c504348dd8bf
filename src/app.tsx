// createApp(): one Hono app for Node and the Worker. Services come from the
// entry; routes are mounted per area.

import { Hono, type MiddlewareHandler } from 'hono';
import { ErrorPage } from '../templates/pages/error';
import { authenticate, securityHeaders } from './auth/middleware';
import { notFound, respondToError } from './errors';
import { authRoutes } from './routes/auth';
import { apiRoutes } from './routes/api';
import { apiStatsRoutes } from './routes/api-stats';
import { brokerRoutes } from './routes/broker';
import { auditRoutes } from './routes/audit';
import { alertRoutes } from './routes/alerts';
import { controlApiRoutes } from './routes/control';
import { fragmentETag } from './routes/fragment-etag';
import { requestGuard } from './routes/guard';
import { retryRoutes } from './routes/retry';
import { healthRoutes } from './routes/health';
import { metricsRoutes } from './routes/metrics';
import { sendFormRoutes } from './routes/send-form';
import { statsRoutes } from './routes/stats';
import { taskRoutes } from './routes/tasks';
import { workerRoutes } from './routes/workers';
import type { AppEnv, Services } from './services';

export interface AppOptions {
  /** The services for a request (fixed on Node; built from bindings on the Worker). */
  services: (request: Request, env: unknown) => Services | Promise<Services>;
  /** Mount point behind a reverse proxy ('' or '/flower'). */
  prefix?: string;
  /** Serve /static/* (Node; on the Worker, Cloudflare serves assets before the app runs). */
  staticFiles?: MiddlewareHandler[];
  /**
   * Wraps the pages every viewer shares (workers and broker panels), e.g. the
   * Worker's edge cache; runs after authentication.
   */
  sharedPages?: MiddlewareHandler<AppEnv>;
  /** Wraps the task lists viewers poll (/tasks, /tasks/datatable, /api/tasks), e.g. the Worker's list cache; runs after authentication. */
  taskLists?: MiddlewareHandler<AppEnv>;
  /** Runs first on every request but static files: the Worker's closed-by-default gate. */
  gate?: MiddlewareHandler<AppEnv>;
}

export function createApp(options: AppOptions): Hono<AppEnv> {
  // Security headers first: static files and requests outside the prefix get them too.
  const app = new Hono<AppEnv>({ strict: false }).use(securityHeaders).basePath(options.prefix ?? '');
  for (const handler of options.staticFiles ?? []) app.use('/static/*', handler);
  app.use(async (c, next) => {
    c.set('services', await options.services(c.req.raw, c.env));
    await next();
  });
  if (options.gate) app.use(options.gate);
  // Before authentication: its CSRF check reads form bodies, which must be bounded first.
  app.use(requestGuard);
  // Browsers ask for /favicon.ico whatever the page links: point them at the icon (a static file, no login needed).
  app.get('/favicon.ico', (c) => c.redirect(`${options.prefix ?? ''}/static/favicon.svg`, 301));
  app.use(authenticate);
  const onError = (error: unknown, c: Parameters<Parameters<typeof app.onError>[0]>[1]) => {
    // Outside the URL prefix no middleware ran: there are no services to render with.
    const services = c.get('services') as Services | undefined;
    if (!services) return c.text('Not found', 404);
    return respondToError(error, c, services.log, (message, status) =>
      c.html(<ErrorPage title={status === 404 ? 'Not found' : 'Bad request'} message={message} ui={services.ui} />, status),
    );
  };
  app.onError(onError);
  app.notFound((c) => onError(notFound('Not found'), c));
  // Outside the shared cache: a cached fragment is answered 304 too.
  for (const path of ['/', '/workers', '/broker', '/alerts', '/tasks', '/task/:id{.+}', '/stats', '/stats/:name{.+}'])
    app.get(path, fragmentETag);
  if (options.sharedPages) for (const path of ['/', '/workers', '/broker']) app.get(path, options.sharedPages);
  if (options.taskLists) for (const path of ['/tasks', '/tasks/datatable', '/api/tasks']) app.get(path, options.taskLists);
  app.route('/', healthRoutes);
  app.route('/', metricsRoutes);
  app.route('/', authRoutes);
  app.route('/api', apiRoutes);
  app.route('/api', apiStatsRoutes);
  app.route('/api', controlApiRoutes);
  app.route('/api', retryRoutes);
  app.route('/', workerRoutes);
  app.route('/', taskRoutes);
  app.route('/', brokerRoutes);
  app.route('/', statsRoutes);
  app.route('/', auditRoutes);
  app.route('/', alertRoutes);
  app.route('/', sendFormRoutes);
  return app;
}
