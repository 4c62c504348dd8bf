// The arithmetic of the server-rendered charts: value axes with round
// ticks, time axes with ticks on round UTC instants, numbers as the axes and
// hover titles print them, and long series grouped into slots so a chart
// never draws (or sends) more marks than it has room for. Pure functions:
// the same on Node and in the Worker.

export type ChartUnit = 'count' | 'seconds' | 'percent';

/** Round tick values from 0 up to at least `max` (about `target` of them); [0, 1] when there is nothing. */
export function valueTicks(max: number, target = 4): number[] {
  const top = Number.isFinite(max) && max > 0 ? max : 1;
  const raw = top / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const ticks: number[] = [];
  // The steps are added as integers times `step`, so no float error accumulates.
  for (let i = 0; ticks.length === 0 || ticks[ticks.length - 1]! < top; i++) ticks.push(i * step);
  return ticks;
}

/** Tick spacings for a time axis, in seconds: the first that gives at most `target` ticks wins. */
const TIME_STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 345600, 604800];

export type TimeFormat = 'hm' | 'md' | 'mdhm';

export interface TimeTick {
  t: number;
  /** How the label reads: hours and minutes, month and day, or both. */
  format: TimeFormat;
}

/** Ticks at round UTC instants inside [from, to]. */
export function timeTicks(from: number, to: number, target = 6): TimeTick[] {
  if (!(Number.isFinite(from) && Number.isFinite(to)) || to <= from) return [];
  const span = to - from;
  const step = TIME_STEPS.find((s) => span / s <= target) ?? Math.ceil(span / target / 86400) * 86400;
  const format: TimeFormat = step >= 86400 ? 'md' : span > 86400 ? 'mdhm' : 'hm';
  const ticks: TimeTick[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) ticks.push({ t, format });
  return ticks;
}

/** A tick's label in UTC, as the page shows it without its script (static/stalk.js rewrites it in the reader's zone). */
export function utcLabel(t: number, format: TimeFormat): string {
  const iso = new Date(t * 1000).toISOString();
  const md = iso.slice(5, 10);
  const hm = iso.slice(11, 16);
  return format === 'hm' ? hm : format === 'md' ? md : `${md} ${hm}`;
}

const SUFFIXES = ['', 'k', 'M', 'G', 'T', 'P'];

/** 950, 1.2k, 34M: a count short enough for an axis label. */
export function shortCount(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const sign = value < 0 ? '-' : '';
  let v = Math.abs(value);
  let i = 0;
  while (v >= 1000 && i < SUFFIXES.length - 1) {
    v /= 1000;
    i++;
  }
  if (v >= 1000) return `${sign}${Math.abs(value).toExponential(1)}`;
  const digits = i === 0 ? (Number.isInteger(v) ? 0 : 1) : v < 10 ? 1 : 0;
  return `${sign}${Number(v.toFixed(digits))}${SUFFIXES[i]}`;
}

/** 850 ms, 1.5 s, 12 min: a duration short enough for an axis label. */
export function shortSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  const abs = Math.abs(seconds);
  if (abs === 0) return '0';
  if (abs < 0.001) return `${Number((seconds * 1e6).toPrecision(2))} µs`;
  if (abs < 1) return `${Number((seconds * 1000).toPrecision(3))} ms`;
  if (abs < 120) return `${Number(seconds.toPrecision(3))} s`;
  if (abs < 7200) return `${Number((seconds / 60).toPrecision(3))} min`;
  return `${Number((seconds / 3600).toPrecision(3))} h`;
}

/** A value in its unit, for axes, titles and the table view ('—' for no value). */
export function formatValue(value: number | null, unit: ChartUnit): string {
  if (value === null || !Number.isFinite(value)) return '—';
  if (unit === 'seconds') return shortSeconds(value);
  if (unit === 'percent') return `${Number(value.toFixed(value < 10 ? 1 : 0))}%`;
  return shortCount(value);
}

/** A number from a stored aggregate as the chart reads it: finite or absent. */
export function finiteOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export type Merge = 'sum' | 'max';

/** Buckets drawn as one mark: its start, its width in buckets, one value per series. */
export interface Slot {
  t: number;
  buckets: number;
  values: (number | null)[];
}

/** Buckets a slot may hold: round spans of minutes (10 min) or of hours (6 h). */
const MINUTE_SLOTS = [1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 180, 360, 720, 1440];
const HOUR_SLOTS = [1, 2, 3, 4, 6, 8, 12, 24, 48, 168];

/** The fewest buckets of `step` seconds a slot must hold for `count` of them to fit in `maxSlots` (a round number). */
export function slotSize(count: number, maxSlots: number, step: number): number {
  const fit = Math.ceil(count / Math.max(1, maxSlots));
  return (step >= 3600 ? HOUR_SLOTS : MINUTE_SLOTS).find((k) => k >= fit) ?? fit;
}

/**
 * Buckets grouped into slots of slotSize() buckets, each starting at a round
 * multiple of its width (10-minute slots at :00, :10...), so that at most
 * about `maxSlots` are drawn. Counts add up (`sum`); percentiles cannot, so a
 * slot shows the highest of its buckets (`max`). A value is absent only when
 * every bucket of the slot lacks it.
 */
export function slots(times: number[], series: (number | null)[][], maxSlots: number, merge: Merge, step: number): Slot[] {
  const per = slotSize(times.length, maxSlots, step);
  const width = per * step;
  const result: Slot[] = [];
  times.forEach((t, i) => {
    const start = Math.floor(t / width) * width;
    let slot = result[result.length - 1];
    if (!slot || slot.t !== start) {
      slot = { t: start, buckets: per, values: series.map(() => null) };
      result.push(slot);
    }
    series.forEach((values, s) => {
      const v = finiteOrNull(values[i]);
      if (v === null) return;
      const acc = slot.values[s] ?? null;
      slot.values[s] = acc === null ? v : merge === 'sum' ? acc + v : Math.max(acc, v);
    });
  });
  return result;
}

/** A linear map from [d0, d1] to [r0, r1]; a flat domain maps to r0. */
export function scale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const span = d1 - d0;
  return (v) => (span === 0 ? r0 : r0 + ((v - d0) / span) * (r1 - r0));
}

/** Two decimals at most: coordinates in the SVG stay short. */
export function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
