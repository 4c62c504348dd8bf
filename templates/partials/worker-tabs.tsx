// The worker page's tabs. Overview comes from events; Pool, Broker, Queues,
// Tasks, Limits, Config and System come from inspect replies (stats,
// active_queues, registered, active, scheduled, reserved, revoked, conf),
// collected by the collector's control channel when there is one. The open
// tab stays live: its body polls /worker/<name>/tab/<tab> (the route asks the
// worker again only for replies older than a poll interval, whoever is
// watching), and static/stalk.js refreshes a tab after an action on it.

import { asList, asRecord, display, type InspectMethod, repliedAt, type WorkerInspect } from '../../src/shared/inspect';
import { actionsOffReason, lastSeen, type WorkerSummary } from '../../src/shared/workers';
import type { TaskCountsByName } from '../../src/ui/views';
import type { UiOptions } from '../../src/ui/context';
import { pathSegment } from '../../src/shared/text';
import { Clip, fixed, href, OnlineBadge, taskHref, Time } from '../components/format';
import { Action, ActionResults } from '../components/action';
import { KeyValues, KvRow, KvTable } from '../components/kv';
import { Limits, WorkerActions } from './worker-actions';

export const WORKER_TABS = ['overview', 'pool', 'broker', 'queues', 'tasks', 'limits', 'config', 'system'] as const;
export type WorkerTab = (typeof WORKER_TABS)[number];

/** The inspect replies each tab shows (Overview comes from events). */
export const TAB_METHODS: Record<WorkerTab, InspectMethod[]> = {
  overview: [],
  pool: ['stats'],
  broker: ['stats'],
  queues: ['active_queues'],
  tasks: ['active', 'scheduled', 'reserved', 'revoked', 'stats'],
  limits: ['registered'],
  config: ['conf'],
  system: ['stats'],
};

/** How often the open tab polls. */
export const TAB_POLL_SECONDS = 5;

function NoInspect() {
  return (
    <p class="muted">
      No inspect data for this worker yet. Inspect replies (pool, queues, limits, configuration) appear here once the worker has answered an
      inspect request.
    </p>
  );
}

function Overview({ worker, counts, ui }: { worker: WorkerSummary; counts: TaskCountsByName[]; ui: UiOptions }) {
  return (
    <>
      <KvTable scroll>
        <KvRow label="Status">
          <OnlineBadge alive={worker.alive} />
        </KvRow>
        <KvRow label="Software">{[worker.sw_ident, worker.sw_ver, worker.sw_sys].filter(Boolean).join(' ') || '—'}</KvRow>
        <KvRow label="PID">{worker.pid ?? '—'}</KvRow>
        <KvRow label="Heartbeat interval">{worker.freq !== null ? `${worker.freq} s` : '—'}</KvRow>
        <KvRow label={worker.alive ? 'Last heartbeat' : 'Last seen'}>
          <Time at={lastSeen(worker)} ui={ui} id="worker-last-seen" />
        </KvRow>
        <KvRow label="Load average">{worker.loadavg ? worker.loadavg.map((n) => fixed(n, 2)).join(' / ') : '—'}</KvRow>
        <KvRow label="Active / processed (heartbeat)">{`${worker.active ?? 0} / ${worker.processed ?? 0}`}</KvRow>
        <KvRow label="First seen">
          <Time at={worker.first_seen} ui={ui} />
        </KvRow>
      </KvTable>
      <h3>Tasks by name</h3>
      {counts.length === 0 ? (
        <p class="muted">No task events from this worker yet.</p>
      ) : (
        <div class="scroll">
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Task</th>
                <th scope="col" class="num">
                  Received
                </th>
                <th scope="col" class="num">
                  Succeeded
                </th>
                <th scope="col" class="num">
                  Failed
                </th>
                <th scope="col" class="num">
                  Retried
                </th>
              </tr>
            </thead>
            <tbody>
              {counts.map((c) => (
                <tr>
                  <td>{c.name || '(unknown)'}</td>
                  <td class="num">{c.received}</td>
                  <td class="num">{c.succeeded}</td>
                  <td class="num">{c.failed}</td>
                  <td class="num">{c.retried}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function Pool({ stats }: { stats: Record<string, unknown> }) {
  const pool = asRecord(stats.pool);
  return (
    <>
      <KeyValues data={{ ...pool, 'worker pid': stats.pid, 'prefetch count': stats.prefetch_count }} caption="Worker pool" />
      {asRecord(stats.autoscaler) ? <KeyValues data={asRecord(stats.autoscaler)} caption="Autoscaler" /> : null}
    </>
  );
}

function Broker({ stats }: { stats: Record<string, unknown> }) {
  const broker = asRecord(asRecord(stats.consumer)?.broker) ?? asRecord(stats.broker);
  return <KeyValues data={broker} skip={['alternates']} caption="Broker connection" />;
}

function Queues({
  queues,
  worker,
  ui,
  readOnly,
  off,
}: {
  queues: Record<string, unknown>[];
  worker: string;
  ui: UiOptions;
  readOnly: boolean;
  off: string | null;
}) {
  const path = (what: string) => `/api/worker/queue/${what}/${pathSegment(worker)}`;
  return (
    <>
      {queues.length === 0 ? (
        <p class="muted">Not consuming from any queue.</p>
      ) : (
        <div class="scroll">
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Exchange</th>
                <th scope="col">Routing key</th>
                <th scope="col">Durable</th>
                <th scope="col">Exclusive</th>
                <th scope="col">Auto delete</th>
                <th scope="col">No ack</th>
                {readOnly ? null : <th scope="col"></th>}
              </tr>
            </thead>
            <tbody>
              {queues.map((q) => (
                <tr data-queue={display(q.name)}>
                  <td>{display(q.name)}</td>
                  <td>{display(asRecord(q.exchange)?.name)}</td>
                  <td>{display(q.routing_key)}</td>
                  <td>{display(q.durable)}</td>
                  <td>{display(q.exclusive)}</td>
                  <td>{display(q.auto_delete)}</td>
                  <td>{display(q.no_ack)}</td>
                  {readOnly ? null : (
                    <td>
                      <Action
                        ui={ui}
                        path={path('cancel-consumer')}
                        label="Cancel consumer"
                        confirm={`Stop consuming from ${display(q.name)}?`}
                        off={off}
                        results="queue-results"
                      >
                        <input type="hidden" name="queue" value={display(q.name)} />
                      </Action>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {/* A cancelled queue's row leaves the table: its answer is shown here. */}
      {readOnly ? null : <ActionResults id="queue-results" />}
      {readOnly ? null : (
        <Action ui={ui} path={path('add-consumer')} label="Add consumer" off={off}>
          <label>
            Queue <input type="text" name="queue" required placeholder="queue name" />
          </label>
        </Action>
      )}
    </>
  );
}

function TaskRequests({ title, items, ui }: { title: string; items: Record<string, unknown>[]; ui: UiOptions }) {
  return (
    <div class="task-requests" data-list={title.toLowerCase()}>
      <h3>{title}</h3>
      {items.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <div class="scroll">
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">UUID</th>
                <th scope="col">Args</th>
                <th scope="col">Kwargs</th>
              </tr>
            </thead>
            <tbody>
              {items.map((raw) => {
                // scheduled entries wrap the request: {eta, priority, request: {...}}
                const item = asRecord(raw.request) ?? raw;
                const id = display(item.id);
                return (
                  <tr data-task={id || undefined}>
                    <td>{display(item.name)}</td>
                    <td>{id ? <a href={taskHref(ui, id)}>{id}</a> : '—'}</td>
                    <td>
                      <Clip text={display(item.args)} />
                    </td>
                    <td>
                      <Clip text={display(item.kwargs)} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function Tasks({ inspect, ui }: { inspect: WorkerInspect; ui: UiOptions }) {
  const total = asRecord(asRecord(inspect.stats)?.total);
  return (
    <>
      <KeyValues data={total} caption="Processed tasks (since the worker started)" />
      <TaskRequests title="Active" items={asList(inspect.active).map((x) => asRecord(x) ?? {})} ui={ui} />
      <TaskRequests title="Scheduled" items={asList(inspect.scheduled).map((x) => asRecord(x) ?? {})} ui={ui} />
      <TaskRequests title="Reserved" items={asList(inspect.reserved).map((x) => asRecord(x) ?? {})} ui={ui} />
      <h3>Revoked</h3>
      {asList(inspect.revoked).length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <Clip text={asList(inspect.revoked).map(display).join(', ')} max={2000} />
      )}
    </>
  );
}

/** What every tab is drawn from. */
export interface WorkerTabData {
  worker: WorkerSummary;
  counts: TaskCountsByName[];
  inspect: WorkerInspect | null;
  ui: UiOptions;
  readOnly: boolean;
}

function tabBody(tab: WorkerTab, { worker, counts, inspect, ui, readOnly }: WorkerTabData) {
  const off = actionsOffReason(worker);
  // Stored replies are untrusted JSON of any shape: each part is read only when it has the expected one.
  const stats = asRecord(inspect?.stats);
  switch (tab) {
    case 'overview':
      return <Overview worker={worker} counts={counts} ui={ui} />;
    case 'pool':
      return stats ? <Pool stats={stats} /> : <NoInspect />;
    case 'broker':
      return stats ? <Broker stats={stats} /> : <NoInspect />;
    case 'queues':
      return Array.isArray(inspect?.active_queues) ? (
        <Queues
          queues={inspect.active_queues.map((q) => asRecord(q) ?? {})}
          worker={worker.hostname}
          ui={ui}
          readOnly={readOnly}
          off={off}
        />
      ) : (
        <NoInspect />
      );
    case 'tasks':
      return inspect ? <Tasks inspect={inspect} ui={ui} /> : <NoInspect />;
    case 'limits':
      return Array.isArray(inspect?.registered) ? (
        <Limits registered={inspect.registered.map(display)} worker={worker.hostname} ui={ui} readOnly={readOnly} off={off} />
      ) : (
        <NoInspect />
      );
    case 'config':
      return asRecord(inspect?.conf) ? <KeyValues data={asRecord(inspect?.conf)} /> : <NoInspect />;
    case 'system':
      return stats ? <KeyValues data={asRecord(stats.rusage)} caption="Resource usage" /> : <NoInspect />;
  }
}

/** When the oldest of a tab's replies was collected, or null when one is missing. */
function tabInspectedAt(tab: WorkerTab, inspect: WorkerInspect | null): number | null {
  let oldest: number | null = null;
  for (const method of TAB_METHODS[tab]) {
    const at = repliedAt(inspect, method);
    if (at === null) return null;
    oldest = oldest === null ? at : Math.min(oldest, at);
  }
  return oldest;
}

/**
 * One tab's body, live: it polls its own route every TAB_POLL_SECONDS while
 * its tab is open and the page visible (static/stalk.js skips the others), and
 * on `stalk-refresh` (an action on it) asks for fresh replies. Morphed in
 * place: what the reader typed into a form and an action's answer stay.
 */
export function WorkerTabLive({ tab, error, ...data }: WorkerTabData & { tab: WorkerTab; error?: string | null }) {
  const at = tabInspectedAt(tab, data.inspect);
  return (
    <div
      class="tab-live"
      id={`live-${tab}`}
      data-tab={tab}
      hx-get={href(data.ui, `/worker/${pathSegment(data.worker.hostname)}/tab/${tab}`)}
      hx-trigger={`every ${TAB_POLL_SECONDS}s, stalk-refresh`}
      hx-swap="morph:outerHTML"
    >
      {tabBody(tab, data)}
      {TAB_METHODS[tab].length > 0 && at !== null ? (
        <p class="tab-freshness muted">
          This tab inspected <Time at={at} ui={data.ui} />
          {data.worker.alive ? ` · live, every ${TAB_POLL_SECONDS} s` : ' · the worker is offline'}
        </p>
      ) : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}

export function WorkerTabs({
  worker,
  counts,
  inspect,
  ui,
  readOnly,
  inspectError,
  autoInspect,
}: WorkerTabData & {
  /** Why the last refresh failed, shown above the tabs. */
  inspectError?: string | null;
  /** Ask for fresh inspect replies as soon as the page loads (first visit). */
  autoInspect?: boolean;
}) {
  const refresh = `/worker/${pathSegment(worker.hostname)}/inspect`;
  const off = actionsOffReason(worker);
  const data: WorkerTabData = { worker, counts, inspect, ui, readOnly };
  return (
    <div class="tabs" id="worker-tabs">
      {readOnly ? null : <WorkerActions worker={worker.hostname} ui={ui} off={off} />}
      <nav class="tab-bar" aria-label="Worker sections">
        {WORKER_TABS.map((id) => (
          <a id={`tab-link-${id}`} href={`#tab-${id}`}>
            {id[0]!.toUpperCase() + id.slice(1)}
          </a>
        ))}
      </nav>
      <p class="freshness">
        {inspect ? (
          <>
            Inspected <Time at={inspect.timestamp} ui={ui} />
            {' · '}
          </>
        ) : (
          'Not inspected yet · '
        )}
        <button
          type="button"
          class="link"
          hx-post={href(ui, refresh)}
          hx-target="#worker-tabs"
          hx-swap="outerHTML"
          hx-trigger={autoInspect ? 'click, load' : 'click'}
          id="inspect-refresh"
        >
          Refresh
        </button>
        {inspectError ? <span class="error" role="alert">{` ${inspectError}`}</span> : null}
      </p>
      {WORKER_TABS.map((id) => (
        <section class="tab-panel" id={`tab-${id}`} aria-labelledby={`tab-link-${id}`}>
          <h2>{id[0]!.toUpperCase() + id.slice(1)}</h2>
          <WorkerTabLive tab={id} {...data} />
        </section>
      ))}
    </div>
  );
}
