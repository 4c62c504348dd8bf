// createApp(): one Hono app for Node and the Worker. Services come from the
// entry; routes are mounted per area.

import { Hono } from 'hono';
import { notFound, respondToError } from './errors';
import { apiRoutes } from './routes/api';
import { healthRoutes } from './routes/health';
import type { AppEnv, Services } from './services';

export interface AppOptions {
  /** The services for a request (fixed on Node; built from bindings on the Worker). */
  services: (request: Request, env: unknown) => Services | Promise<Services>;
}

export function createApp(options: AppOptions): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    c.set('services', await options.services(c.req.raw, c.env));
    await next();
  });
  app.onError((error, c) => respondToError(error, c, c.var.services.log));
  app.notFound((c) => respondToError(notFound('Not found'), c, c.var.services.log));
  app.route('/', healthRoutes);
  app.route('/api', apiRoutes);
  return app;
}
