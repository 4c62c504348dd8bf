// The broker page: queue lengths as the collector last measured them.

import { Hono } from 'hono';
import { BrokerPage } from '../../templates/pages/broker';
import { BrokerPanel } from '../../templates/partials/broker-panel';
import { brokerUrl, listQueues } from '../queries/broker';
import type { AppEnv } from '../services';

export const brokerRoutes = new Hono<AppEnv>().get('/broker', async (c) => {
  const { db, ui } = c.var.services;
  const queues = await listQueues(db);
  c.header('Vary', 'HX-Request');
  if (c.req.header('HX-Request')) return c.html(<BrokerPanel queues={queues} ui={ui} />);
  return c.html(<BrokerPage broker={await brokerUrl(db)} queues={queues} ui={ui} />);
});
