// The workers dashboard and the worker page.

import { Hono } from 'hono';
import { WorkerPage } from '../../templates/pages/worker';
import { WorkersPage } from '../../templates/pages/workers';
import { WorkersPanel } from '../../templates/partials/workers-panel';
import { TAB_METHODS, TAB_POLL_SECONDS, WORKER_TABS, WorkerTabLive, WorkerTabs } from '../../templates/partials/worker-tabs';
import { repliedAt } from '../shared/inspect';
import { cachedInspect } from '../queries/inspect';
import { notFound, quoted } from '../errors';
import { currentWorkerRecords, summarize, taskCountsForWorker } from '../queries/workers';
import type { AppEnv } from '../services';
import { flowerDashboardRow } from './flower-json';
import { bodyETag, fragmentETag } from './fragment-etag';
import { form, pathName, query } from './params';
import { mayAct } from '../ui/context';

/**
 * A stored reply younger than this is served as it is: a tab polled by any
 * number of readers asks the worker at most about once per poll interval
 * (the collector also joins identical rounds under way).
 */
const TAB_FRESH_SECONDS = TAB_POLL_SECONDS - 1;

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
    return c.html(<WorkerPage worker={worker} counts={counts} inspect={inspect} ui={ui} readOnly={readOnly || !mayAct(ui, 'admin')} />);
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
    return c.html(
      <WorkerTabs
        worker={worker}
        counts={counts}
        inspect={inspect}
        ui={ui}
        readOnly={readOnly || !mayAct(ui, 'admin')}
        inspectError={inspectError}
      />,
    );
  })
  // One tab's body, polled while it is open (templates/partials/worker-tabs.tsx):
  // the stored replies when they are fresh, else the worker is asked for the
  // ones this tab shows. `fresh` (after an action on the tab) always asks.
  .get('/worker/:name/tab/:tab', fragmentETag, async (c) => {
    const { db, hot, now, ui, readOnly, control, inspectTimeoutMs } = c.var.services;
    const name = pathName(c, 'name');
    const force = query(c).bool('fresh') === true;
    const tab = WORKER_TABS.find((t) => t === c.req.param('tab'));
    if (!tab) throw notFound(`Unknown tab '${quoted(c.req.param('tab') ?? '')}'`);
    const worker = summarize(await currentWorkerRecords(db, hot), now()).find((w) => w.hostname === name);
    if (!worker) throw notFound(`Unknown worker '${quoted(name)}'`);
    const methods = TAB_METHODS[tab];
    let error: string | null = null;
    if (methods.length > 0 && control && worker.alive) {
      const stored = await cachedInspect(db, name);
      const stale = methods.some((m) => {
        const at = repliedAt(stored, m);
        return at === null || now() - at >= TAB_FRESH_SECONDS;
      });
      if (force || stale) {
        const outcome = await control.run(
          { kind: 'inspect', worker: name, methods },
          c.var.user ?? 'anonymous',
          inspectTimeoutMs / 1000 + 5,
        );
        if (!outcome.ok) error = outcome.error;
        else if (!outcome.result[name]) error = `${name} did not answer within ${inspectTimeoutMs / 1000} s.`;
      }
    }
    const [counts, inspect] = await Promise.all([tab === 'overview' ? taskCountsForWorker(db, name) : [], cachedInspect(db, name)]);
    c.header('Vary', 'HX-Request');
    return c.html(
      <WorkerTabLive
        tab={tab}
        worker={worker}
        counts={counts}
        inspect={inspect}
        ui={ui}
        readOnly={readOnly || !mayAct(ui, 'admin')}
        error={error}
      />,
    );
  });
