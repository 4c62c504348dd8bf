// The live part of /stats and /stats/{name}: totals, charts, the task types
// table and failures by exception class. One partial serves the page and
// the poll (hx-get of the same URL, swapped by morphing).

import type { StatsBucket } from '../../src/shared/stats';
import type { UiOptions } from '../../src/ui/context';
import type { StatsView } from '../../src/ui/stats';
import { Chart, DEFAULT_MAX_SLOTS, paletteTone, spanText } from '../components/chart';
import { formatValue, slotSize, slots } from '../components/chart-scale';
import { Time } from '../components/format';
import { statsPath, tasksHref } from './stats-links';
import { StatsExceptions } from './stats-exceptions';
import { StatsTypes } from './stats-types';

/** Each bucket's start over the window, with the stored buckets (only those with events exist) found by time. */
function timeline(view: StatsView): { times: number[]; at: (t: number) => StatsBucket | undefined } {
  const times: number[] = [];
  for (let t = Math.floor(view.from / view.step) * view.step; t < view.to; t += view.step) times.push(t);
  const byTime = new Map(view.total.buckets.map((b) => [b.t, b]));
  return { times, at: (t) => byTime.get(t) };
}

function percent(ratio: number | null): string {
  return ratio === null ? '—' : formatValue(ratio * 100, 'percent');
}

function Totals({ view, ui }: { view: StatsView; ui: UiOptions }) {
  const sum = (key: 'succeeded' | 'failed' | 'retried' | 'revoked') => view.total.buckets.reduce((n, b) => n + b[key], 0);
  const succeeded = sum('succeeded');
  const failed = sum('failed');
  const cards: { label: string; value: string; link: string }[] = [
    { label: 'Succeeded', value: String(succeeded), link: tasksHref(ui, view, { state: 'SUCCESS' }) },
    { label: 'Failed', value: String(failed), link: tasksHref(ui, view, { state: 'FAILURE' }) },
    {
      label: 'Failure rate',
      value: percent(succeeded + failed === 0 ? null : failed / (succeeded + failed)),
      link: tasksHref(ui, view, { state: 'FAILURE' }),
    },
    { label: 'Retried', value: String(sum('retried')), link: tasksHref(ui, view, { retried: true }) },
    { label: 'Revoked', value: String(sum('revoked')), link: tasksHref(ui, view, { state: 'REVOKED' }) },
  ];
  return (
    <div class="cards" id="stats-totals">
      {cards.map((card) => (
        <a class="card" href={card.link} data-total={card.label}>
          <span class="label">{card.label}</span>
          <span class="value">{card.value}</span>
        </a>
      ))}
    </div>
  );
}

function Charts({ view, ui }: { view: StatsView; ui: UiOptions }) {
  const { times, at } = timeline(view);
  const per = slotSize(times.length, DEFAULT_MAX_SLOTS, view.step);
  const slot = spanText(per * view.step);
  const count = (key: 'succeeded' | 'failed' | 'retried') => times.map((t) => at(t)?.[key] ?? 0);
  const value = (key: 'runtime_p50' | 'runtime_p95' | 'runtime_p99' | 'queue_wait_p95') => times.map((t) => at(t)?.[key] ?? null);
  // A failure rate is not the highest of its minutes': the slot's failures over its outcomes.
  const outcomes = slots(times, [count('failed'), count('succeeded')], DEFAULT_MAX_SLOTS, 'sum', view.step);
  const rate = outcomes.map((s) => {
    const [failed, succeeded] = [s.values[0] ?? 0, s.values[1] ?? 0];
    return failed + succeeded === 0 ? null : (failed / (failed + succeeded)) * 100;
  });
  const common = { from: view.from, to: view.to, ui };
  return (
    <div class="charts">
      <Chart
        {...common}
        id="chart-throughput"
        title="Throughput"
        axisLabel={`tasks per ${slot}`}
        unit="count"
        kind="stacked"
        step={view.step}
        times={times}
        series={[
          { label: 'succeeded', tone: 'ok', values: count('succeeded') },
          { label: 'failed', tone: 'bad', values: count('failed') },
          { label: 'retried', tone: 'warn', values: count('retried') },
        ]}
      />
      <Chart
        {...common}
        id="chart-failure-rate"
        title="Failure rate"
        axisLabel="failed / (succeeded + failed)"
        unit="percent"
        kind="line"
        step={per * view.step}
        times={outcomes.map((s) => s.t)}
        series={[{ label: 'failure rate', tone: 'bad', values: rate }]}
      />
      <Chart
        {...common}
        id="chart-runtime"
        title="Runtime percentiles"
        axisLabel="runtime"
        unit="seconds"
        kind="line"
        step={view.step}
        times={times}
        series={[
          { label: 'p50', tone: 'ok', values: value('runtime_p50') },
          { label: 'p95', tone: 'warn', values: value('runtime_p95') },
          { label: 'p99', tone: 'bad', values: value('runtime_p99') },
        ]}
      />
      {view.queues === null ? (
        <Chart
          {...common}
          id="chart-queue-wait"
          title="Queue wait (received to started)"
          axisLabel="wait"
          unit="seconds"
          kind="line"
          step={view.step}
          times={times}
          series={[{ label: 'p95', tone: 'run', values: value('queue_wait_p95') }]}
        />
      ) : (
        <Chart
          {...common}
          id="chart-queues"
          title="Queue lengths"
          axisLabel="messages (highest measured)"
          unit="count"
          kind="line"
          step={view.step}
          times={times}
          series={view.queues.map((q, i) => {
            const byTime = new Map(q.points.map((p) => [Math.floor(p.t / view.step) * view.step, p.length]));
            return { label: q.queue, tone: paletteTone(i), values: times.map((t) => byTime.get(t) ?? null) };
          })}
        />
      )}
    </div>
  );
}

export function StatsPanel({ view, ui }: { view: StatsView; ui: UiOptions }) {
  // Minute buckets change once a minute at most: no need to ask as often as the task list does.
  const poll = ui.refreshSeconds > 0 ? `every ${Math.max(ui.refreshSeconds, 10)}s` : undefined;
  return (
    <section
      id="stats-panel"
      hx-get={`${statsPath(ui, view.name)}?period=${view.period}`}
      hx-trigger={poll}
      hx-swap="morph:outerHTML"
      data-from={String(view.from)}
      data-to={String(view.to)}
    >
      <p class="freshness">
        From <Time at={view.from} ui={{ ...ui, naturalTime: false }} /> to <Time at={view.to} ui={{ ...ui, naturalTime: false }} />, by the{' '}
        {view.step === 60 ? 'minute' : 'hour'}.
      </p>
      <Totals view={view} ui={ui} />
      <Charts view={view} ui={ui} />
      {view.types === null ? null : <StatsTypes view={view} types={view.types} ui={ui} />}
      <StatsExceptions view={view} ui={ui} />
      {view.types === null ? null : (
        <p class="help">
          Counts are of events in the period; a number links to the tasks received in it (a task received earlier that finished in it is
          counted here but not listed there). Runtime and queue-wait percentiles are exact to the histogram bin the collector stores them
          in.
        </p>
      )}
    </section>
  );
}
