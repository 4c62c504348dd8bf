// The server-rendered charts: scales, ticks, grouping, and the SVG they
// render for ordinary, empty, single-point, huge and hostile data.

import { describe, expect, it } from 'vitest';
import { Chart, type ChartProps, Sparkline, spanText } from '../../templates/components/chart';
import {
  formatValue,
  shortCount,
  shortSeconds,
  slotSize,
  slots,
  timeTicks,
  utcLabel,
  valueTicks,
} from '../../templates/components/chart-scale';
import { DEFAULT_UI } from '../../src/ui/context';

const T0 = Date.UTC(2026, 11, 1, 9, 0) / 1000;

function render(node: unknown): string {
  return String(node);
}

function chart(overrides: Partial<ChartProps> = {}): string {
  const times = Array.from({ length: 60 }, (_, i) => T0 + i * 60);
  return render(
    Chart({
      id: 'c',
      title: 'Throughput',
      axisLabel: 'tasks per minute',
      unit: 'count',
      kind: 'stacked',
      from: T0,
      to: T0 + 3600,
      step: 60,
      times,
      series: [
        { label: 'succeeded', tone: 'ok', values: times.map((_, i) => i) },
        { label: 'failed', tone: 'bad', values: times.map((_, i) => (i % 10 === 0 ? 5 : 0)) },
      ],
      ui: DEFAULT_UI,
      ...overrides,
    }),
  );
}

function attr(svg: string, selector: RegExp): string[] {
  return [...svg.matchAll(selector)].map((m) => m[1]!);
}

describe('value ticks', () => {
  it('start at 0, are round, and reach the maximum', () => {
    expect(valueTicks(97)).toEqual([0, 25, 50, 75, 100]);
    expect(valueTicks(4)).toEqual([0, 1, 2, 3, 4]);
    expect(valueTicks(0.0031)).toEqual([0, 0.001, 0.002, 0.003, 0.004]);
    expect(valueTicks(1)).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });
  it('give a unit axis for nothing, and stay few for huge or broken maxima', () => {
    expect(valueTicks(0)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(valueTicks(Number.NaN)).toEqual(valueTicks(0));
    expect(valueTicks(-5)).toEqual(valueTicks(0));
    const huge = valueTicks(7.3e15);
    expect(huge.length).toBeLessThanOrEqual(6);
    expect(huge[huge.length - 1]).toBeGreaterThanOrEqual(7.3e15);
  });
});

describe('time ticks', () => {
  it('sit on round UTC instants inside the window, about six of them', () => {
    const hour = timeTicks(T0 + 17, T0 + 3600 + 17);
    expect(hour.map((t) => utcLabel(t.t, t.format))).toEqual(['09:10', '09:20', '09:30', '09:40', '09:50', '10:00']);
    const day = timeTicks(T0, T0 + 86400);
    expect(day.length).toBeLessThanOrEqual(6);
    expect(day.every((t) => t.t % 3600 === 0 && t.format === 'hm')).toBe(true);
    const month = timeTicks(T0, T0 + 30 * 86400);
    expect(month.every((t) => t.t % 86400 === 0 && t.format === 'md')).toBe(true);
    expect(utcLabel(month[0]!.t, 'md')).toMatch(/^12-\d\d$/);
    expect(month.length).toBeGreaterThanOrEqual(3);
    const week = timeTicks(T0, T0 + 7 * 86400);
    expect(week.length).toBeGreaterThanOrEqual(3);
    expect(week.length).toBeLessThanOrEqual(7);
  });
  it('are none for an empty or reversed window', () => {
    expect(timeTicks(T0, T0)).toEqual([]);
    expect(timeTicks(T0, T0 - 60)).toEqual([]);
    expect(timeTicks(Number.NaN, T0)).toEqual([]);
  });
});

describe('numbers', () => {
  it('print short, in their unit', () => {
    expect(shortCount(950)).toBe('950');
    expect(shortCount(1234)).toBe('1.2k');
    expect(shortCount(34_000_000)).toBe('34M');
    expect(shortCount(2.5)).toBe('2.5');
    expect(shortCount(1e21)).toBe('1.0e+21');
    expect(shortSeconds(0.0123)).toBe('12.3 ms');
    expect(shortSeconds(1.5)).toBe('1.5 s');
    expect(shortSeconds(600)).toBe('10 min');
    expect(shortSeconds(36000)).toBe('10 h');
    expect(formatValue(12.5, 'percent')).toBe('13%');
    expect(formatValue(2.25, 'percent')).toBe('2.3%');
    expect(formatValue(null, 'count')).toBe('—');
    expect(formatValue(Number.POSITIVE_INFINITY, 'seconds')).toBe('—');
    expect(spanText(60)).toBe('1 min');
    expect(spanText(720)).toBe('12 min');
    expect(spanText(21600)).toBe('6 h');
  });
});

describe('slots', () => {
  it('add counts and take the highest percentile over grouped buckets', () => {
    const times = [0, 60, 120, 180, 240];
    const counts = slots(times, [[1, 2, 3, null, 5]], 2, 'sum', 60);
    expect(counts).toEqual([
      { t: 0, buckets: 3, values: [6] },
      // A slot's width is nominal: the last one holds the 2 buckets there are.
      { t: 180, buckets: 3, values: [5] },
    ]);
    const p95 = slots(times, [[0.1, 0.5, null, null, null]], 2, 'max', 60);
    expect(p95.map((s) => s.values[0])).toEqual([0.5, null]);
    expect(slots(times, [[1, 2, 3, 4, 5]], 10, 'sum', 60)).toHaveLength(5);
  });
  it('are round spans starting on round times', () => {
    expect(slotSize(1440, 150, 60)).toBe(10);
    expect(slotSize(721, 150, 3600)).toBe(6);
    expect(slotSize(168, 150, 3600)).toBe(2);
    expect(slotSize(60, 150, 60)).toBe(1);
    // A day by the minute from 09:31: 10-minute slots at 09:30, 09:40... (the first holds 9 minutes).
    const day = Array.from({ length: 1440 }, (_, i) => T0 + 31 * 60 + i * 60);
    const grouped = slots(day, [day.map(() => 1)], 150, 'sum', 60);
    expect(grouped.every((s) => s.t % 600 === 0)).toBe(true);
    expect(grouped[0]).toEqual({ t: T0 + 30 * 60, buckets: 10, values: [9] });
    expect(grouped[1]!.values).toEqual([10]);
    expect(grouped.reduce((n, s) => n + (s.values[0] ?? 0), 0)).toBe(1440);
  });
});

describe('Chart', () => {
  it('draws axes with units, a bar per non-zero value, hover titles and a table', () => {
    const svg = chart();
    expect(svg).toContain('tasks per minute');
    expect(svg).toContain('Time (<tspan data-zone="true">UTC</tspan>)');
    // Value axis: 0 up to the tallest stack, 59 (minute 50: 50 + 5 = 55).
    expect(attr(svg, /data-v="([^"]+)"/g).map(Number)).toEqual([0, 20, 40, 60]);
    // Time axis labels carry their instant for stalk.js.
    expect(attr(svg, /data-tf="hm"[^>]*>([^<]+)</g)).toContain('09:30');
    // 59 succeeded bars (the first is 0) and 6 failed ones.
    expect(svg.match(/class="bar tone-ok"/g)).toHaveLength(59);
    expect(svg.match(/class="bar tone-bad"/g)).toHaveLength(6);
    // One hover title per minute, naming both counts.
    expect(svg.match(/<title data-t=/g)).toHaveLength(60);
    expect(svg).toContain('2026-12-01 09:10 UTC · 1 min: succeeded 10, failed 5');
    expect(svg).toContain('<details class="chart-table" id="c-table">');
    expect(svg.match(/<tr><th scope="row">/g)).toHaveLength(60);
  });

  it('scales bars to the axis: the tallest stack reaches its share of the top tick', () => {
    const times = [T0, T0 + 60];
    const svg = chart({ times, to: T0 + 120, series: [{ label: 'succeeded', tone: 'ok', values: [50, 100] }] });
    const heights = attr(svg, /class="bar tone-ok"[^>]*height="([^"]+)"/g).map(Number);
    expect(heights).toHaveLength(2);
    expect(heights[1]! / heights[0]!).toBeCloseTo(2, 1);
    // Top tick 100: the taller bar fills the plot (230 - 30 - 44 = 156).
    expect(heights[1]).toBeCloseTo(156, 0);
  });

  it('leaves slots of nothing out of the table view', () => {
    const times = [0, 1, 2, 3].map((i) => T0 + i * 60);
    const svg = chart({ times, series: [{ label: 'succeeded', tone: 'ok', values: [0, 3, 0, null] }] });
    expect(svg.match(/<tr><th scope="row">/g)).toHaveLength(1);
    expect(svg).toContain('<td class="num">3</td>');
  });

  it('says so when there is no data, and still draws the axes', () => {
    const svg = chart({ times: [], series: [{ label: 'succeeded', tone: 'ok', values: [] }] });
    expect(svg).toContain('No data in this period');
    expect(svg).toContain('data-v="1"');
    expect(svg).not.toContain('<title data-t');
    expect(svg).not.toContain('class="bar');
  });

  it('shows a lone value as a dot and breaks the line at gaps', () => {
    const times = [0, 1, 2, 3, 4].map((i) => T0 + i * 60);
    const svg = chart({
      kind: 'line',
      unit: 'seconds',
      times,
      series: [
        { label: 'p95', tone: 'warn', values: [0.2, 0.4, null, 0.3, null] },
        { label: 'p99', tone: 'bad', values: [null, null, null, 0.9, null] },
      ],
    });
    const paths = attr(svg, /<path class="line" d="([^"]+)"/g);
    expect(paths).toHaveLength(1);
    expect(paths[0]!.match(/M/g)).toHaveLength(1);
    expect(paths[0]!.match(/L/g)).toHaveLength(1);
    expect(svg.match(/<circle class="dot"/g)).toHaveLength(2);
    expect(svg).toContain('p95 400 ms, p99 —');
    expect(svg).toMatch(/data-v="1"[^>]*>1 s</);
  });

  it('keeps huge numbers on the axis and in the titles without overflow', () => {
    const svg = chart({ times: [T0], series: [{ label: 'succeeded', tone: 'ok', values: [9.9e15] }] });
    expect(svg).toContain('succeeded 9.9P');
    expect(svg).not.toMatch(/NaN|Infinity/);
  });

  it('groups long series into at most maxSlots marks', () => {
    const times = Array.from({ length: 720 }, (_, i) => T0 + i * 3600);
    const svg = chart({
      to: T0 + 720 * 3600,
      step: 3600,
      times,
      maxSlots: 120,
      series: [{ label: 'succeeded', tone: 'ok', values: times.map(() => 1) }],
    });
    // 6-hour slots at 00:00, 06:00...: from 09:00, the first and the last are partial.
    expect(svg.match(/class="bar tone-ok"/g)).toHaveLength(121);
    expect(svg).toContain(' · 6 h: succeeded 3');
    expect(svg).toContain(' · 6 h: succeeded 6');
  });

  it('escapes hostile series labels and titles', () => {
    const hostile = '<script>alert(1)</script>"&';
    const svg = chart({ title: hostile, series: [{ label: hostile, tone: 'ok', values: [1] }], times: [T0] });
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });
});

describe('Sparkline', () => {
  it('draws a line through the values with the numbers in its title', () => {
    const svg = render(Sparkline({ values: [0, 5, 10], label: 'succeeded + failed' }));
    expect(svg).toContain('points="1,18 40,10 79,2"');
    expect(svg).toContain('<title>succeeded + failed: 0, 5, 10</title>');
  });
  it('draws a dot for one value, nothing for none, and escapes its label', () => {
    expect(render(Sparkline({ values: [3], label: 'x' }))).toContain('<circle');
    const none = render(Sparkline({ values: [], label: '<b>' }));
    expect(none).not.toContain('<polyline');
    expect(none).toContain('&lt;b&gt;');
  });
});
