// A histogram whose counts were observed elsewhere: the collector stores
// non-cumulative bucket counts and sums per label set, and a scrape adds
// them up into the bounds asked for. prom-client's Histogram can only
// observe one value at a time, which cannot reproduce stored counts and sums
// faithfully; this object hands the Registry the finished values instead
// (the `get()` contract every prom-client metric has), and the Registry
// writes the exposition exactly as for its own histograms.

import type { Metric, Registry } from 'prom-client';
import { parseLe } from '../shared/histograms';

interface Series {
  labels: Record<string, string>;
  /** Non-cumulative counts per output bound, then one for the (last bound, +Inf] bucket. */
  counts: number[];
  sum: number;
}

/** One line of the exposition, as prom-client's own metrics describe theirs. */
export interface SampleValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** What the Registry reads from a metric (prom-client's typings declare `type` as an enum its runtime does not use). */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: SampleValue[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export interface StoredHistogramConfig<T extends string> {
  name: string;
  help: string;
  labelNames: readonly T[];
  /** Finite upper bounds, ascending; +Inf is implied. */
  buckets: readonly number[];
  registers: Registry[];
}

export class StoredHistogram<T extends string> {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly T[];
  readonly buckets: readonly number[];
  private series = new Map<string, Series>();

  constructor(config: StoredHistogramConfig<T>) {
    if (!METRIC_NAME.test(config.name)) throw new Error(`invalid metric name ${config.name}`);
    if (!config.labelNames.every((l) => LABEL_NAME.test(l) && l !== 'le')) throw new Error(`invalid label names for ${config.name}`);
    if (config.buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= config.buckets[i - 1]!))) {
      throw new Error(`${config.name}: buckets must be finite and ascending`);
    }
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    this.buckets = config.buckets;
    // The Registry's own contract (name, help, type, aggregator, get, reset), not a prom-client class.
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  private entry(labels: Record<T, string>): Series {
    const ordered: Record<string, string> = {};
    for (const name of this.labelNames) ordered[name] = labels[name];
    const key = JSON.stringify(this.labelNames.map((n) => labels[n]));
    let series = this.series.get(key);
    if (!series) {
      series = { labels: ordered, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0 };
      this.series.set(key, series);
    }
    return series;
  }

  /**
   * Add `count` observations stored under the bound `le` (text as stored,
   * '+Inf' for the top): they fall in the smallest output bound at or above
   * it, or only in +Inf. Exact when the stored bounds include the output ones.
   */
  addBucket(labels: Record<T, string>, le: string, count: number): void {
    const bound = parseLe(le);
    const series = this.entry(labels);
    let index = this.buckets.findIndex((b) => bound <= b);
    if (index < 0 || Number.isNaN(bound)) index = this.buckets.length;
    series.counts[index]! += count;
  }

  addSum(labels: Record<T, string>, sum: number): void {
    this.entry(labels).sum += sum;
  }

  async get(): Promise<MetricSnapshot> {
    const values: SampleValue[] = [];
    const keys = [...this.series.keys()].sort();
    for (const key of keys) {
      const { labels, counts, sum } = this.series.get(key)!;
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: bound }, value: cumulative });
      });
      cumulative += counts[this.buckets.length]!;
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
      values.push({ metricName: `${this.name}_sum`, labels, value: sum });
      values.push({ metricName: `${this.name}_count`, labels, value: cumulative });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series = new Map();
  }
}
