// The broker page: queue lengths as the collector last measured them.

import { Hono } from 'hono';
import { BrokerPage } from '../../templates/pages/broker';
import { BrokerPanel } from '../../templates/partials/broker-panel';
import { brokerUrl, listQueues } from '../queries/broker';
import type { AppEnv } from '../services';

export const brokerRoutes = new Hono<AppEnv>().get('/broker', async (c) => {
  const { db, ui } = c.var.services;
  c.header('Vary', 'HX-Request');
  if (c.req.header('HX-Request')) return c.html(<BrokerPanel queues={await listQueues(db)} ui={ui} />);
  // One round trip: both queries side by side.
  const [queues, broker] = await Promise.all([listQueues(db), brokerUrl(db)]);
  return c.html(<BrokerPage broker={broker} queues={queues} ui={ui} />);
});
