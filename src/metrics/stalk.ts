// Stalk's own metrics: tasks not finished yet, and how the collector is
// doing, as its latest status row says (the collector reports every 5 s;
// the values are those of the collector that reported last).

import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetricsState } from '../queries/metrics';
import { COLLECTOR_SILENCE_LIMIT } from '../shared/health';
import { Tally } from './series';

export function addStalkMetrics(registry: Registry, state: MetricsState, now: number): void {
  const registers = [registry];

  const inFlight = new Tally<{ state: string; name: string }>();
  for (const row of state.inFlight) inFlight.add({ state: row.state, name: row.name }, row.count);
  const tasks = new Gauge({
    name: 'stalk_tasks_in_flight',
    help: 'Tasks not finished yet, by state (PENDING, RECEIVED, STARTED, RETRY) and task name.',
    labelNames: ['state', 'name'],
    registers,
  });
  for (const { labels, value } of inFlight.sorted()) tasks.set(labels, value);

  const lost = new Counter({
    name: 'stalk_tasks_lost_total',
    help: 'Tasks Stalk marked LOST (their worker went offline mid-task, or they were never received), by task name; a task that later converges is still counted.',
    labelNames: ['name'],
    registers,
  });
  for (const row of [...state.lost].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
    lost.inc({ name: row.name }, row.count);
  // One series per loaded rule: how many of its instances fire (1 or 0 for a
  // rule without labels; per-worker and per-task rules count their workers
  // and task names), so `stalk_alert_firing > 0` is "this rule fires".
  if (state.alerts && state.alerts.length > 0) {
    const firing = new Gauge({
      name: 'stalk_alert_firing',
      help: 'Alert instances firing now, per alert rule (0: loaded, not firing).',
      labelNames: ['alert'],
      registers,
    });
    for (const { alert, firing: n } of [...state.alerts].sort((a, b) => (a.alert < b.alert ? -1 : 1))) firing.set({ alert }, n);
  }

  const collector = state.collector;
  const fresh = collector !== null && now - collector.updated_at <= COLLECTOR_SILENCE_LIMIT;
  new Gauge({
    name: 'stalk_collector_up',
    help: `1 when a collector reported within the last ${COLLECTOR_SILENCE_LIMIT} s, else 0.`,
    registers,
  }).set(fresh ? 1 : 0);
  new Gauge({
    name: 'stalk_collector_broker_connected',
    help: '1 when the collector is up and connected to the broker, else 0.',
    registers,
  }).set(fresh && collector.broker_connected ? 1 : 0);
  if (!collector) return;

  new Gauge({
    name: 'stalk_collector_last_report_timestamp_seconds',
    help: 'When the collector last reported (seconds since the epoch).',
    registers,
  }).set(collector.updated_at);
  if (collector.lag_seconds !== null) {
    new Gauge({
      name: 'stalk_collector_lag_seconds',
      help: "Seconds from the newest event's sending to its flush to the database, at the last flush.",
      registers,
    }).set(collector.lag_seconds);
  }
  if (collector.last_event_at !== null) {
    new Gauge({
      name: 'stalk_last_event_timestamp_seconds',
      help: 'When the collector last received an event (seconds since the epoch).',
      registers,
    }).set(collector.last_event_at);
  }
  if (collector.flush_seconds !== null) {
    new Gauge({ name: 'stalk_database_flush_seconds', help: 'How long the last database flush took.', registers }).set(
      collector.flush_seconds,
    );
  }
  new Counter({
    name: 'stalk_collector_events_total',
    help: 'Events the collector took from the broker since it started.',
    registers,
  }).inc(collector.events_total);
  const dropped = new Counter({
    name: 'stalk_events_dropped_total',
    help: 'Messages or events the collector could not use since it started, by reason.',
    labelNames: ['reason'],
    registers,
  });
  for (const reason of Object.keys(collector.dropped).sort()) dropped.inc({ reason }, collector.dropped[reason]!);
}
