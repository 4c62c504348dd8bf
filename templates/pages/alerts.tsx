// The alerts page: what fires now, the recent history and the rules, as the
// collector stored them. The panel is the polled fragment (same URL,
// HX-Request), like the broker's.

import {
  type AlertEvent,
  type AlertInstance,
  type AlertKind,
  type AlertsView,
  type AlertLabels,
  alertPath,
  describeRule,
  describeThreshold,
  describeValue,
  formatSeconds,
} from '../../src/shared/alerts';
import type { UiOptions } from '../../src/ui/context';
import { href, Time, ZoneLabel } from '../components/format';
import { Page as Layout } from '../overrides';

function Labels({ labels }: { labels: AlertLabels }) {
  const entries = Object.entries(labels);
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <span>
      {entries.map(([k, v], i) => (
        <>
          {i > 0 ? ', ' : ''}
          <code>
            {k}={v}
          </code>
        </>
      ))}
    </span>
  );
}

const valueText = (kind: AlertKind | null, value: number) => (kind ? describeValue(kind, value) : String(value));
const thresholdText = (kind: AlertKind | null, threshold: number) => (kind ? describeThreshold(kind, threshold) : String(threshold));

function Firing({ instances, rules, ui }: { instances: AlertInstance[]; rules: AlertsView['rules']; ui: UiOptions }) {
  const ruleOf = new Map(rules.map((r) => [r.rule.name, r.rule]));
  if (instances.length === 0)
    return (
      <p class="muted" id="alerts-none">
        Nothing fires now.
      </p>
    );
  return (
    <div class="scroll">
      <table class="grid" id="alerts-firing">
        <thead>
          <tr>
            <th scope="col">Alert</th>
            <th scope="col">Status</th>
            <th scope="col">Labels</th>
            <th scope="col" class="wide">
              Since <ZoneLabel />
            </th>
            <th scope="col">Value</th>
            <th scope="col" class="wide">
              Threshold
            </th>
          </tr>
        </thead>
        <tbody>
          {instances.map((a) => {
            const rule = ruleOf.get(a.alert);
            return (
              <tr data-alert={a.alert} data-status={a.status}>
                <td>{rule ? <a href={href(ui, alertPath(rule, a.labels))}>{a.alert}</a> : a.alert}</td>
                <td>
                  <span class={`badge ${a.status === 'firing' ? 'bad' : 'warn'}`}>{a.status}</span>
                </td>
                <td>
                  <Labels labels={a.labels} />
                </td>
                <td class="wide">
                  <Time at={a.since} ui={ui} bare />
                </td>
                <td>{valueText(a.kind, a.value)}</td>
                <td class="wide">{thresholdText(a.kind, a.threshold)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function History({ events, ui }: { events: AlertEvent[]; ui: UiOptions }) {
  if (events.length === 0) return <p class="muted">No alert has fired yet.</p>;
  return (
    <div class="scroll">
      <table class="grid" id="alerts-history">
        <thead>
          <tr>
            <th scope="col">
              When <ZoneLabel />
            </th>
            <th scope="col">Alert</th>
            <th scope="col">Event</th>
            <th scope="col">Labels</th>
            <th scope="col" class="wide">
              Value
            </th>
            <th scope="col" class="wide">
              Webhooks
            </th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr data-history={String(e.id)} data-status={e.status}>
              <td>
                <Time at={e.at} ui={ui} bare />
              </td>
              <td>{e.alert}</td>
              <td>
                <span class={`badge ${e.status === 'firing' ? 'bad' : 'ok'}`}>{e.status}</span>
                {e.status === 'resolved' ? <span class="muted"> after {formatSeconds(Math.max(0, e.at - e.since))}</span> : null}
              </td>
              <td>
                <Labels labels={e.labels} />
              </td>
              <td class="wide">{valueText(e.kind, e.value)}</td>
              <td class="wide">{e.delivery ?? <span class="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Rules({ rules, ui }: { rules: AlertsView['rules']; ui: UiOptions }) {
  if (rules.length === 0)
    return (
      <p class="muted">
        No rules loaded: start the collector with <code>--alerts FILE</code> (see the README).
      </p>
    );
  return (
    <div class="scroll">
      <table class="grid" id="alerts-rules">
        <thead>
          <tr>
            <th scope="col">Rule</th>
            <th scope="col" class="wide">
              Kind
            </th>
            <th scope="col">Fires on</th>
            <th scope="col" class="wide">
              Notifies
            </th>
          </tr>
        </thead>
        <tbody>
          {rules.map(({ rule }) => (
            <tr data-rule={rule.name}>
              <td>{rule.name}</td>
              <td class="wide">
                <code>{rule.kind}</code>
              </td>
              <td>{describeRule(rule)}</td>
              <td class="wide">{rule.notify.length > 0 ? rule.notify.join(', ') : <span class="muted">page only</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted">
        Loaded by the collector at <Time at={rules[0]!.loaded_at} ui={ui} />.
      </p>
    </div>
  );
}

export function AlertsPanel({ view, ui }: { view: AlertsView; ui: UiOptions }) {
  const poll = ui.refreshSeconds > 0 ? `every ${ui.refreshSeconds}s` : undefined;
  return (
    <section id="alerts-panel" hx-get={href(ui, '/alerts')} hx-trigger={poll} hx-swap="morph:outerHTML">
      <h2>Firing now</h2>
      <Firing instances={view.instances} rules={view.rules} ui={ui} />
      <h2>Recent history</h2>
      <History events={view.history} ui={ui} />
      <h2>Rules</h2>
      <Rules rules={view.rules} ui={ui} />
    </section>
  );
}

export function AlertsPage({ view, ui }: { view: AlertsView; ui: UiOptions }) {
  return (
    <Layout ui={ui} title="Alerts" section="alerts">
      <h1>Alerts</h1>
      <AlertsPanel view={view} ui={ui} />
    </Layout>
  );
}
