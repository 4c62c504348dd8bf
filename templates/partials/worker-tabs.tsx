// The worker page's tabs. Overview comes from events; Pool, Broker, Queues,
// Tasks, Limits, Config and System come from inspect replies (stats,
// active_queues, registered, active, scheduled, reserved, revoked, conf),
// collected by the collector's control channel when there is one.

import { asList, asRecord, display, type WorkerInspect } from '../../src/shared/inspect';
import type { TaskCountsByName, WorkerSummary } from '../../src/queries/workers';
import type { UiOptions } from '../../src/ui/context';
import { Clip, formatTime, OnlineBadge, taskHref, Time } from '../components/format';
import { KeyValues } from '../components/kv';

export type { TaskCountsByName };

export const WORKER_TABS = ['overview', 'pool', 'broker', 'queues', 'tasks', 'limits', 'config', 'system'] as const;

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
      <table class="kv">
        <tbody>
          <tr>
            <th scope="row">Status</th>
            <td>
              <OnlineBadge alive={worker.alive} />
            </td>
          </tr>
          <tr>
            <th scope="row">Software</th>
            <td>{[worker.sw_ident, worker.sw_ver, worker.sw_sys].filter(Boolean).join(' ') || '—'}</td>
          </tr>
          <tr>
            <th scope="row">PID</th>
            <td>{worker.pid ?? '—'}</td>
          </tr>
          <tr>
            <th scope="row">Heartbeat interval</th>
            <td>{worker.freq !== null ? `${worker.freq} s` : '—'}</td>
          </tr>
          <tr>
            <th scope="row">Last heartbeat</th>
            <td>
              <Time at={worker.last_heartbeat} ui={ui} />
            </td>
          </tr>
          <tr>
            <th scope="row">Load average</th>
            <td>{worker.loadavg ? worker.loadavg.map((n) => n.toFixed(2)).join(' / ') : '—'}</td>
          </tr>
          <tr>
            <th scope="row">Active / processed (heartbeat)</th>
            <td>{`${worker.active ?? 0} / ${worker.processed ?? 0}`}</td>
          </tr>
          <tr>
            <th scope="row">First seen</th>
            <td>
              <Time at={worker.first_seen} ui={ui} />
            </td>
          </tr>
        </tbody>
      </table>
      <h3>Tasks by name</h3>
      {counts.length === 0 ? (
        <p class="muted">No task events from this worker yet.</p>
      ) : (
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col" class="num">Received</th>
              <th scope="col" class="num">Succeeded</th>
              <th scope="col" class="num">Failed</th>
              <th scope="col" class="num">Retried</th>
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

function Queues({ queues }: { queues: Record<string, unknown>[] }) {
  if (queues.length === 0) return <p class="muted">Not consuming from any queue.</p>;
  return (
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
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function TaskRequests({ title, items, ui }: { title: string; items: Record<string, unknown>[]; ui: UiOptions }) {
  return (
    <>
      <h3>{title}</h3>
      {items.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
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
                <tr>
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
      )}
    </>
  );
}

function Tasks({ inspect, ui }: { inspect: WorkerInspect; ui: UiOptions }) {
  const total = asRecord(inspect.stats?.total);
  return (
    <>
      <KeyValues data={total} caption="Processed tasks (since the worker started)" />
      <TaskRequests title="Active" items={asList(inspect.active).map((x) => asRecord(x) ?? {})} ui={ui} />
      <TaskRequests title="Scheduled" items={asList(inspect.scheduled).map((x) => asRecord(x) ?? {})} ui={ui} />
      <TaskRequests title="Reserved" items={asList(inspect.reserved).map((x) => asRecord(x) ?? {})} ui={ui} />
      <h3>Revoked</h3>
      {asList(inspect.revoked).length === 0 ? <p class="muted">None.</p> : <Clip text={asList(inspect.revoked).map(display).join(', ')} max={2000} />}
    </>
  );
}

function Limits({ registered }: { registered: string[] }) {
  if (registered.length === 0) return <p class="muted">No registered tasks reported.</p>;
  return (
    <table class="grid" id="limits">
      <thead>
        <tr>
          <th scope="col">Registered task</th>
        </tr>
      </thead>
      <tbody>
        {registered.map((name) => (
          <tr data-task-name={name}>
            <td>{name}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function WorkerTabs({
  worker,
  counts,
  inspect,
  ui,
}: {
  worker: WorkerSummary;
  counts: TaskCountsByName[];
  inspect: WorkerInspect | null;
  ui: UiOptions;
}) {
  const stats = inspect?.stats;
  const panel = (id: (typeof WORKER_TABS)[number], body: unknown) => (
    <section class="tab-panel" id={`tab-${id}`} aria-labelledby={`tab-link-${id}`}>
      <h2>{id[0]!.toUpperCase() + id.slice(1)}</h2>
      {body}
    </section>
  );
  return (
    <div class="tabs">
      <nav class="tab-bar" aria-label="Worker sections">
        {WORKER_TABS.map((id) => (
          <a id={`tab-link-${id}`} href={`#tab-${id}`}>
            {id[0]!.toUpperCase() + id.slice(1)}
          </a>
        ))}
      </nav>
      {inspect ? <p class="freshness">{`Inspected ${formatTime(inspect.timestamp)}`}</p> : null}
      {panel('overview', <Overview worker={worker} counts={counts} ui={ui} />)}
      {panel('pool', stats ? <Pool stats={stats} /> : <NoInspect />)}
      {panel('broker', stats ? <Broker stats={stats} /> : <NoInspect />)}
      {panel('queues', inspect?.active_queues ? <Queues queues={inspect.active_queues} /> : <NoInspect />)}
      {panel('tasks', inspect ? <Tasks inspect={inspect} ui={ui} /> : <NoInspect />)}
      {panel('limits', inspect?.registered ? <Limits registered={inspect.registered} /> : <NoInspect />)}
      {panel('config', inspect?.conf ? <KeyValues data={inspect.conf} /> : <NoInspect />)}
      {panel('system', stats ? <KeyValues data={asRecord(stats.rusage)} caption="Resource usage" /> : <NoInspect />)}
    </div>
  );
}
