// The workers dashboard panel: totals, the table, and how fresh it is. The
// page includes it; htmx polls it alone (same URL, HX-Request) and swaps it
// whole, so the poll stops if a response comes back without hx-trigger.

import { lastSeen, type WorkerSummary } from '../../src/shared/workers';
import type { UiOptions } from '../../src/ui/context';
import { fixed, formatTime, href, OnlineBadge, Time, workerHref } from '../components/format';

export interface WorkerTotals {
  online: number;
  offline: number;
  active: number;
  processed: number;
  failed: number;
  succeeded: number;
  retried: number;
}

export function workerTotals(workers: WorkerSummary[]): WorkerTotals {
  const totals: WorkerTotals = { online: 0, offline: 0, active: 0, processed: 0, failed: 0, succeeded: 0, retried: 0 };
  for (const w of workers) {
    if (w.alive) totals.online += 1;
    else totals.offline += 1;
    totals.active += w.alive ? (w.active ?? 0) : 0;
    totals.processed += w.events['task-received'] ?? 0;
    totals.failed += w.events['task-failed'] ?? 0;
    totals.succeeded += w.events['task-succeeded'] ?? 0;
    totals.retried += w.events['task-retried'] ?? 0;
  }
  return totals;
}

function Count({ n, to, ui }: { n: number; to: string; ui: UiOptions }) {
  return n > 0 ? <a href={href(ui, to)}>{n}</a> : <span>0</span>;
}

function Load({ worker }: { worker: WorkerSummary }) {
  if (!worker.alive || !worker.loadavg) return <span class="muted">N/A</span>;
  return <span>{worker.loadavg.map((n) => fixed(n, 2)).join(' / ')}</span>;
}

export function WorkersPanel({ workers, ui, generatedAt }: { workers: WorkerSummary[]; ui: UiOptions; generatedAt: number }) {
  const totals = workerTotals(workers);
  const poll = ui.refreshSeconds > 0 ? `every ${ui.refreshSeconds}s` : undefined;
  return (
    <section id="workers-panel" hx-get={href(ui, '/workers')} hx-trigger={poll} hx-swap="morph:outerHTML" aria-live="polite">
      <div class="cards">
        <div class="card">
          <span class="label">Online workers</span>
          <span class="value">{totals.online}</span>
        </div>
        <div class="card">
          <span class="label">Offline</span>
          <span class="value">{totals.offline}</span>
        </div>
        <div class="card">
          <span class="label">Active tasks</span>
          <span class="value">{totals.active}</span>
        </div>
        <div class="card">
          <span class="label">Succeeded</span>
          <span class="value">{totals.succeeded}</span>
        </div>
        <div class="card">
          <span class="label">Failed</span>
          <span class="value">{totals.failed}</span>
        </div>
      </div>
      <p class="freshness">
        Updated{' '}
        <time data-updated={String(generatedAt)} datetime={new Date(generatedAt * 1000).toISOString()}>
          {formatTime(generatedAt)}
        </time>
        {poll ? ` · refreshes every ${ui.refreshSeconds} s` : ' · refresh is off'}{' '}
        <button type="button" class="link" hx-get={href(ui, '/workers')} hx-target="#workers-panel" hx-swap="morph:outerHTML">
          Refresh now
        </button>
      </p>
      <div class="scroll">
        <table class="grid" id="workers-table">
          <thead>
            <tr>
              <th scope="col">Worker</th>
              <th scope="col">Status</th>
              <th scope="col" class="num">
                Active
              </th>
              <th scope="col" class="num wide">
                Processed
              </th>
              <th scope="col" class="num wide">
                Failed
              </th>
              <th scope="col" class="num wide">
                Succeeded
              </th>
              <th scope="col" class="num wide">
                Retried
              </th>
              <th scope="col" class="wide">
                Load average
              </th>
              <th scope="col" class="wide">
                Last seen
              </th>
            </tr>
          </thead>
          <tbody>
            {workers.length === 0 ? (
              <tr>
                <td colspan={9} class="empty">
                  No workers yet. Start a worker with events on (celery worker -E); Stalk also asks running workers to send events.
                </td>
              </tr>
            ) : (
              workers.map((w) => (
                <tr id={`worker-row-${w.hostname}`} data-worker={w.hostname}>
                  <td>
                    <a href={workerHref(ui, w.hostname)}>{w.hostname}</a>
                  </td>
                  <td>
                    <OnlineBadge alive={w.alive} />
                  </td>
                  <td class="num">{w.alive ? (w.active ?? 0) : 0}</td>
                  <td class="num wide">{w.events['task-received'] ?? 0}</td>
                  <td class="num wide">{w.events['task-failed'] ?? 0}</td>
                  <td class="num wide">{w.events['task-succeeded'] ?? 0}</td>
                  <td class="num wide">{w.events['task-retried'] ?? 0}</td>
                  <td class="wide">
                    <Load worker={w} />
                  </td>
                  <td class="wide">
                    <Time at={lastSeen(w)} ui={{ ...ui, naturalTime: true }} />
                  </td>
                </tr>
              ))
            )}
          </tbody>
          {workers.length > 0 ? (
            <tfoot>
              <tr>
                <th scope="row">Total</th>
                <td>{`${totals.online} online`}</td>
                <td class="num">
                  <Count n={totals.active} to="/tasks?state=STARTED" ui={ui} />
                </td>
                <td class="num wide">
                  <Count n={totals.processed} to="/tasks" ui={ui} />
                </td>
                <td class="num wide">
                  <Count n={totals.failed} to="/tasks?state=FAILURE" ui={ui} />
                </td>
                <td class="num wide">
                  <Count n={totals.succeeded} to="/tasks?state=SUCCESS" ui={ui} />
                </td>
                <td class="num wide">
                  <Count n={totals.retried} to="/tasks?retried=1" ui={ui} />
                </td>
                <td class="wide"></td>
                <td class="wide"></td>
              </tr>
            </tfoot>
          ) : null}
        </table>
      </div>
    </section>
  );
}
