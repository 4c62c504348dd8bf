// GET /healthcheck: "OK", or 503 with one line per problem.

import { Hono } from 'hono';
import type { AppEnv } from '../services';

export const healthRoutes = new Hono<AppEnv>().get('/healthcheck', async (c) => {
  const report = await c.var.services.health();
  c.header('Cache-Control', 'no-store');
  if (report.ok) return c.text('OK');
  return c.text(report.problems.join('\n'), 503);
});
