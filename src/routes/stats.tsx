// /stats (all task names) and /stats/{name} (one): charts over a period
// read from the collector's time-bucketed statistics, the task types table
// and failures by exception class. The queries run in parallel (one round
// trip's wait). A poll (HX-Request) gets the panel alone; createApp puts the
// fragment ETag in front, so an unchanged panel is answered 304.

import { type Context, Hono } from 'hono';
import { StatsPage } from '../../templates/pages/stats';
import { StatsPanel } from '../../templates/partials/stats-panel';
import { defaultStep, exceptionStats, queueLengthSeries, tableStep, taskTypeStats, totalStatsSeries } from '../queries/stats';
import type { AppEnv } from '../services';
import { STATS_PERIODS, type StatsPeriod, type StatsView } from '../ui/stats';
import { pathName, query } from './params';

/**
 * Hours of minute rows the collector keeps before rolling them up to hours
 * (its default): a window reaching further back is read by the hour.
 */
const MINUTE_HOURS = 48;
/** Slices of the task types table's sparklines. */
const SPARK_SLICES = 24;
const EXCEPTION_LIMIT = 20;

async function statsView(c: Context<AppEnv>, name: string | null): Promise<StatsView> {
  const { db, now: clock } = c.var.services;
  const chosen = query(c).choice('period', STATS_PERIODS.map((p) => p.key) as unknown as readonly StatsPeriod[]) ?? '24h';
  const period = STATS_PERIODS.find((p) => p.key === chosen) ?? STATS_PERIODS[1]!;
  const now = clock();
  // The tables read minute, hour or day rows by the period's length; the
  // window ends with the current one of those, so what happened just now is
  // in it, and it holds whole rows: the tables, the charts and the task list
  // links (received from `from` to `to`) cover the same time.
  const rows = tableStep(now - period.seconds, now);
  const to = Math.ceil(now / rows) * rows;
  const from = to - period.seconds;
  const step = defaultStep(from, to, now, MINUTE_HOURS);
  const one = name === null ? {} : { name };
  const [total, queues, types, exceptions] = await Promise.all([
    totalStatsSeries(db, { from, to, step, ...one }),
    name === null ? queueLengthSeries(db, { from, to, step }) : Promise.resolve(null),
    name === null ? taskTypeStats(db, { from, to, slices: SPARK_SLICES, step: rows }) : Promise.resolve(null),
    exceptionStats(db, { from, to, limit: EXCEPTION_LIMIT, step: rows, ...one }),
  ]);
  return { period: period.key, from, to, step, name, total, queues, types, exceptions };
}

export const statsRoutes = new Hono<AppEnv>();

for (const path of ['/stats', '/stats/:name{.+}']) {
  statsRoutes.get(path, async (c) => {
    const { ui } = c.var.services;
    const name = path === '/stats' ? null : pathName(c, 'name');
    const view = await statsView(c, name);
    c.header('Vary', 'HX-Request');
    if (c.req.header('HX-Request')) return c.html(<StatsPanel view={view} ui={ui} />);
    return c.html(<StatsPage view={view} ui={ui} />);
  });
}
