// GET /api/stats/tasks: the collector's time-bucketed task statistics as
// JSON (src/queries/stats.ts reads them; README "API" documents the shape).
// Behind the same authentication as every /api route (src/auth/middleware.ts).

import { Hono } from 'hono';
import { badRequest } from '../errors';
import { taskStatsSeries } from '../queries/stats';
import type { AppEnv } from '../services';
import type { StatsStep } from '../shared/stats';
import { query } from './params';

/** Epoch seconds a window may start or end at: 0 to about the year 5000. */
const EPOCH_MAX = 100_000_000_000;
/** Buckets of one series a window may span: two weeks of minutes, two years of hours. */
export const STATS_MAX_BUCKETS = 20_160;
const DAY = 86_400;

export const apiStatsRoutes = new Hono<AppEnv>().get('/stats/tasks', async (c) => {
  const q = query(c);
  const from = q.requiredInt('from', { min: 0, max: EPOCH_MAX });
  const to = q.requiredInt('to', { min: 0, max: EPOCH_MAX });
  const name = q.name('name');
  if (to <= from) throw badRequest("'to' must be after 'from' (epoch seconds; the window is [from, to))");
  const stepText = q.choice('step', ['60', '3600'] as const);
  // Without a step: minutes for a window of up to a day, hours for longer.
  const step = (stepText === undefined ? (to - from <= DAY ? 60 : 3600) : Number(stepText)) as StatsStep;
  if ((to - from) / step > STATS_MAX_BUCKETS) {
    throw badRequest(`The window spans more than ${STATS_MAX_BUCKETS} buckets of ${step} s: shorten it or use step=3600`);
  }
  const answer = await taskStatsSeries(c.var.services.db, { from, to, step, ...(name === undefined ? {} : { name }) });
  return c.json(answer);
});
