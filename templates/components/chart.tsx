// Charts drawn on the server as SVG through JSX: no chart library reaches the
// browser, nothing inline to run or style (the CSP allows neither), and
// every label and title is escaped like any other text.
//
// Each chart has value ticks in its unit, time ticks on round UTC instants,
// a hover title per slot (<title>), a legend, and a table view with the same
// numbers (a <details> under it, for screen readers and for copying).
// Colours come from classes (tone-ok, tone-c3…) so the stylesheet's light
// and dark themes both apply.
//
// Times: the server knows no reader's zone. Axis labels and hover titles
// carry their instant in data-t (epoch seconds) and data-tf (the format);
// static/stalk.js rewrites them in the zone the "Times" switch chose, as it
// does <time> elements, and the axis title names that zone (data-zone).
// Without the script they read UTC, and say so. Ticks sit on round UTC
// instants, so in a zone with a half-hour offset they read :30.

import type { UiOptions } from '../../src/ui/context';
import {
  type ChartUnit,
  finiteOrNull,
  formatValue,
  type Merge,
  round2,
  type Slot,
  scale,
  slots,
  timeTicks,
  utcLabel,
  valueTicks,
} from './chart-scale';
import { Time } from './format';

/** The colours a series may take: the state colours, and a palette for many (queues). */
export const TONES = ['ok', 'bad', 'warn', 'run', 'info', 'accent', 'c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'] as const;
export type Tone = (typeof TONES)[number];

/** The palette's tone for the i-th of many series. */
export function paletteTone(i: number): Tone {
  return `c${((i % 8) + 8) % 8}` as Tone;
}

export interface ChartSeries {
  label: string;
  tone: Tone;
  /** One value per bucket, aligned with the chart's `times`; null where there is none. */
  values: (number | null)[];
}

export interface ChartProps {
  /** The element id (the table view's and the SVG's ids derive from it). */
  id: string;
  title: string;
  /** What the value axis counts ("tasks per bucket"), shown above it. */
  axisLabel: string;
  unit: ChartUnit;
  /** Stacked bars add up (counts); lines do not (percentiles, rates, lengths). */
  kind: 'stacked' | 'line';
  /** The window shown, epoch seconds. */
  from: number;
  to: number;
  /** Bucket width, seconds. */
  step: number;
  /** Each bucket's start, ascending. */
  times: number[];
  series: ChartSeries[];
  ui: UiOptions;
  /** At most this many marks across (buckets beyond are grouped, see slots()). */
  maxSlots?: number;
}

const W = 600;
const H = 230;
const PAD = { left: 58, right: 10, top: 30, bottom: 44 };
const PLOT_W = W - PAD.left - PAD.right;
const PLOT_H = H - PAD.top - PAD.bottom;
export const DEFAULT_MAX_SLOTS = 150;

/** "1 min", "12 min", "1 h", "6 h", "1 d": how long a slot lasts. */
export function spanText(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function slotTitle(slot: Slot, step: number, series: ChartSeries[], unit: ChartUnit, merge: Merge): string {
  const values = series.map((s, i) => `${s.label} ${formatValue(slot.values[i] ?? null, unit)}`).join(', ');
  const span = spanText(slot.buckets * step);
  const how = merge === 'max' && slot.buckets > 1 ? ' (highest)' : '';
  return ` · ${span}${how}: ${values}`;
}

/** A time in a label: UTC text now, rewritten in the reader's zone by static/stalk.js. */
function timeLabel(t: number, format: 'hm' | 'md' | 'mdhm' | 'full', suffix?: string) {
  const text = format === 'full' ? `${new Date(t * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC` : utcLabel(t, format);
  return { text: `${text}${suffix ?? ''}`, attrs: { 'data-t': String(t), 'data-tf': format, 'data-ts': suffix } };
}

function linePath(points: ({ x: number; y: number } | null)[]): { d: string; dots: { x: number; y: number }[] } {
  let d = '';
  const dots: { x: number; y: number }[] = [];
  points.forEach((p, i) => {
    if (!p) return;
    const prev = points[i - 1];
    const next = points[i + 1];
    // A value with no neighbour draws no line: a dot shows it.
    if (!prev && !next) dots.push(p);
    else d += `${prev ? 'L' : 'M'}${p.x} ${p.y}`;
  });
  return { d, dots };
}

export function Chart(props: ChartProps) {
  const { id, title, axisLabel, unit, kind, from, to, step, times, series, ui } = props;
  const merge: Merge = kind === 'stacked' ? 'sum' : 'max';
  const grouped = slots(
    times,
    series.map((s) => s.values),
    props.maxSlots ?? DEFAULT_MAX_SLOTS,
    merge,
    step,
  );
  const empty = grouped.every((slot) => slot.values.every((v) => v === null));
  const top = Math.max(
    0,
    ...grouped.map((slot) =>
      kind === 'stacked'
        ? slot.values.reduce<number>((sum, v) => sum + Math.max(0, v ?? 0), 0)
        : Math.max(0, ...slot.values.map((v) => v ?? 0)),
    ),
  );
  const ticks = valueTicks(top);
  const yMax = ticks[ticks.length - 1]!;
  const y = scale(0, yMax, PAD.top + PLOT_H, PAD.top);
  // A slot on a round time may begin before the window: the axis starts with it.
  const start = Math.min(from, grouped[0]?.t ?? from);
  const end = Math.max(to, start + step);
  const x = scale(start, end, PAD.left, PAD.left + PLOT_W);
  const slotWidth = (slot: Slot) => Math.max(0.5, x(slot.t + slot.buckets * step) - x(slot.t));
  const xTicks = timeTicks(start, end);
  const titleId = `${id}-title`;
  return (
    <figure class="chart" id={id}>
      <figcaption id={titleId}>{title}</figcaption>
      <ul class="legend">
        {series.map((s) => (
          <li>
            <span class={`swatch tone-${s.tone}`} aria-hidden="true"></span>
            {s.label}
          </li>
        ))}
      </ul>
      <svg class="chart-svg" viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={titleId} data-kind={kind}>
        <title>{title}</title>
        <text class="axis-label" x={PAD.left} y={14}>
          {axisLabel}
        </text>
        <g class="y-axis">
          {ticks.map((v) => (
            <g>
              <line class="grid-line" x1={PAD.left} x2={PAD.left + PLOT_W} y1={round2(y(v))} y2={round2(y(v))} />
              <text class="tick" x={PAD.left - 6} y={round2(y(v) + 4)} text-anchor="end" data-v={String(v)}>
                {formatValue(v, unit)}
              </text>
            </g>
          ))}
        </g>
        <g class="x-axis">
          <line class="axis-line" x1={PAD.left} x2={PAD.left + PLOT_W} y1={PAD.top + PLOT_H} y2={PAD.top + PLOT_H} />
          {xTicks.map((tick) => {
            const label = timeLabel(tick.t, tick.format);
            const at = round2(x(tick.t));
            return (
              <g>
                <line class="axis-line" x1={at} x2={at} y1={PAD.top + PLOT_H} y2={PAD.top + PLOT_H + 4} />
                <text class="tick" x={at} y={PAD.top + PLOT_H + 17} text-anchor="middle" {...label.attrs}>
                  {label.text}
                </text>
              </g>
            );
          })}
          <text class="axis-label" x={PAD.left + PLOT_W / 2} y={H - 6} text-anchor="middle">
            Time (<tspan data-zone>UTC</tspan>)
          </text>
        </g>
        {empty ? (
          <text class="empty" x={PAD.left + PLOT_W / 2} y={PAD.top + PLOT_H / 2} text-anchor="middle">
            No data in this period
          </text>
        ) : kind === 'stacked' ? (
          <g class="marks">
            {grouped.map((slot) => {
              let base = 0;
              const left = round2(x(slot.t));
              const width = round2(Math.max(0.5, slotWidth(slot) - (slotWidth(slot) > 3 ? 1 : 0)));
              return series.map((s, i) => {
                const v = Math.max(0, slot.values[i] ?? 0);
                if (v === 0) return null;
                const y0 = y(base);
                base += v;
                const y1 = y(base);
                return <rect class={`bar tone-${s.tone}`} x={left} y={round2(y1)} width={width} height={round2(Math.max(0.5, y0 - y1))} />;
              });
            })}
          </g>
        ) : (
          <g class="marks">
            {series.map((s, i) => {
              const points = grouped.map((slot) => {
                const v = slot.values[i] ?? null;
                return v === null ? null : { x: round2(x(slot.t) + slotWidth(slot) / 2), y: round2(y(Math.max(0, v))) };
              });
              const { d, dots } = linePath(points);
              return (
                <g class={`series tone-${s.tone}`}>
                  {d ? <path class="line" d={d} /> : null}
                  {dots.map((p) => (
                    <circle class="dot" cx={p.x} cy={p.y} r={2.5} />
                  ))}
                </g>
              );
            })}
          </g>
        )}
        {empty ? null : (
          <g class="hover">
            {grouped.map((slot) => {
              const label = timeLabel(slot.t, 'full', slotTitle(slot, step, series, unit, merge));
              return (
                <rect x={round2(x(slot.t))} y={PAD.top} width={round2(slotWidth(slot))} height={PLOT_H}>
                  <title {...label.attrs}>{label.text}</title>
                </rect>
              );
            })}
          </g>
        )}
      </svg>
      <ChartTable id={id} title={title} unit={unit} step={step} grouped={grouped} series={series} merge={merge} ui={ui} />
    </figure>
  );
}

function ChartTable(props: {
  id: string;
  title: string;
  unit: ChartUnit;
  step: number;
  grouped: Slot[];
  series: ChartSeries[];
  merge: Merge;
  ui: UiOptions;
}) {
  const { id, title, unit, step, grouped, series, merge, ui } = props;
  // Slots with nothing to say (no value, or counts of 0) are left out: a day by the minute is mostly those.
  const rows = grouped.filter((slot) => slot.values.some((v) => v !== null && v !== 0));
  const per = grouped[0]?.buckets ?? 1;
  return (
    <details class="chart-table" id={`${id}-table`}>
      <summary>Table view</summary>
      {rows.length === 0 ? (
        <p class="muted">No data in this period.</p>
      ) : (
        <div class="scroll">
          <table class="grid">
            <caption>
              {title}, per {spanText(per * step)}
              {merge === 'max' && per > 1 ? ' (highest in each)' : ''}
            </caption>
            <thead>
              <tr>
                <th scope="col">
                  From (<span data-zone>UTC</span>)
                </th>
                {series.map((s) => (
                  <th scope="col" class="num">
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((slot) => (
                <tr>
                  <th scope="row">
                    <Time at={slot.t} ui={{ ...ui, naturalTime: false }} bare />
                  </th>
                  {slot.values.map((v) => (
                    <td class="num">{formatValue(finiteOrNull(v), unit)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </details>
  );
}

/** A small line of counts (the task types table's), with its numbers in its title. */
export function Sparkline({ values, label }: { values: number[]; label: string }) {
  const w = 80;
  const h = 20;
  const clean = values.map((v) => Math.max(0, finiteOrNull(v) ?? 0));
  const top = Math.max(0, ...clean);
  const x = scale(0, Math.max(1, clean.length - 1), 1, w - 1);
  const y = scale(0, top || 1, h - 2, 2);
  const points = clean.map((v, i) => `${round2(clean.length === 1 ? w / 2 : x(i))},${round2(y(v))}`).join(' ');
  const text = `${label}: ${clean.map((v) => formatValue(v, 'count')).join(', ')}`;
  return (
    <svg class="sparkline" viewBox={`0 0 ${w} ${h}`} width={w} height={h} role="img" aria-label={text}>
      <title>{text}</title>
      {clean.length > 1 ? <polyline points={points} /> : clean.length === 1 ? <circle cx={w / 2} cy={round2(y(clean[0]!))} r={2} /> : null}
    </svg>
  );
}
