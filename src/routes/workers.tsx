// The workers dashboard and the worker page.

import { Hono } from 'hono';
import { WorkerPage } from '../../templates/pages/worker';
import { WorkersPage } from '../../templates/pages/workers';
import { WorkersPanel } from '../../templates/partials/workers-panel';
import { WorkerTabs } from '../../templates/partials/worker-tabs';
import { cachedInspect } from '../queries/inspect';
import { notFound, quoted } from '../errors';
import { currentWorkerRecords, summarize, taskCountsForWorker } from '../queries/workers';
import type { AppEnv } from '../services';
import { flowerDashboardRow } from './flower-json';
import { bodyETag } from './fragment-etag';
import { form, pathName, query } from './params';

const dashboard = new Hono<AppEnv>().get('/', async (c) => {
  const { db, hot, now, ui, purgeOfflineWorkers } = c.var.services;
  const workers = summarize(await currentWorkerRecords(db, hot), now(), purgeOfflineWorkers);
  if (query(c).bool('json')) return c.json({ data: workers.map(flowerDashboardRow) });
  c.header('Vary', 'HX-Request');
  if (c.req.header('HX-Request')) {
    // The "Updated" time changes on every render: the ETag leaves it out, so
    // a poll of an unchanged panel gets 304 (stalk.js moves the time then).
    c.header('ETag', await bodyETag(String(await (<WorkersPanel workers={workers} ui={ui} generatedAt={0} />))));
    return c.html(<WorkersPanel workers={workers} ui={ui} generatedAt={now()} />);
  }
  return c.html(<WorkersPage workers={workers} ui={ui} generatedAt={now()} />);
});

export const workerRoutes = new Hono<AppEnv>()
  .route('/', dashboard)
  .route('/workers', dashboard)
  .get('/worker/:name', async (c) => {
    const { db, hot, now, ui, readOnly } = c.var.services;
    const name = pathName(c, 'name');
    // One round trip: the worker (hot state) and its counts and inspect replies side by side.
    const [records, counts, inspect] = await Promise.all([
      currentWorkerRecords(db, hot),
      taskCountsForWorker(db, name),
      cachedInspect(db, name),
    ]);
    const worker = summarize(records, now()).find((w) => w.hostname === name);
    if (!worker) throw notFound(`Unknown worker '${quoted(name)}'`);
    return c.html(<WorkerPage worker={worker} counts={counts} inspect={inspect} ui={ui} readOnly={readOnly} />);
  })
  // Fresh inspect replies for the worker page's tabs (htmx swaps the tabs).
  .post('/worker/:name/inspect', async (c) => {
    const { db, hot, now, ui, readOnly, control, inspectTimeoutMs } = c.var.services;
    const name = pathName(c, 'name');
    // No parameters, but the body is still checked (a form, or nothing).
    await form(c);
    const worker = summarize(await currentWorkerRecords(db, hot), now()).find((w) => w.hostname === name);
    if (!worker) throw notFound(`Unknown worker '${quoted(name)}'`);
    let inspectError: string | null = null;
    if (!control) inspectError = 'No collector is reachable for commands.';
    else {
      const outcome = await control.run({ kind: 'inspect', worker: name }, c.var.user ?? 'anonymous', inspectTimeoutMs / 1000 + 5);
      if (!outcome.ok) inspectError = outcome.error;
      else if (!outcome.result[name]) inspectError = `${name} did not answer within ${inspectTimeoutMs / 1000} s.`;
    }
    const [counts, inspect] = await Promise.all([taskCountsForWorker(db, name), cachedInspect(db, name)]);
    return c.html(<WorkerTabs worker={worker} counts={counts} inspect={inspect} ui={ui} readOnly={readOnly} inspectError={inspectError} />);
  });
