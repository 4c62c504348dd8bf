// The alerts page and GET /api/alerts: the rules the collector loaded, what
// fires now and the recent history, from the tables it writes (the web app
// cannot read the --alerts file: it may run as a Worker).

import { Hono } from 'hono';
import { AlertsPage, AlertsPanel } from '../../templates/pages/alerts';
import { readAlerts } from '../queries/alerts';
import type { AppEnv } from '../services';
import { alertPath } from '../shared/alerts';

export const alertRoutes = new Hono<AppEnv>()
  .get('/alerts', async (c) => {
    const { db, ui } = c.var.services;
    const view = await readAlerts(db);
    c.header('Vary', 'HX-Request');
    if (c.req.header('HX-Request')) return c.html(<AlertsPanel view={view} ui={ui} />);
    return c.html(<AlertsPage view={view} ui={ui} />);
  })
  .get('/api/alerts', async (c) => {
    const { db, ui } = c.var.services;
    const view = await readAlerts(db, 200);
    const ruleOf = new Map(view.rules.map((r) => [r.rule.name, r.rule]));
    const link = (alert: string, labels: Record<string, string>) => {
      const rule = ruleOf.get(alert);
      return `${ui.prefix}${rule ? alertPath(rule, labels) : '/alerts'}`;
    };
    return c.json({
      rules: view.rules.map((r) => r.rule),
      alerts: view.instances.map((a) => ({ ...a, url: link(a.alert, a.labels) })),
      history: view.history,
    });
  });
