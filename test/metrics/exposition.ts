// A strict parser of Prometheus' text exposition format (version 0.0.4), for
// the /metrics tests. Beyond the grammar it checks what Prometheus relies
// on: every sample belongs to a family declared by # TYPE before it, a
// family's samples are contiguous, no series appears twice, counters are
// not negative, and each histogram series has ascending `le` buckets that
// never decrease, a +Inf bucket equal to _count, and a _sum.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string | undefined;
  type: MetricType;
  samples: Sample[];
}

export class ExpositionError extends Error {
  override name = 'ExpositionError';
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseNumber(text: string, line: number): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new ExpositionError(`line ${line}: '${text}' is not a number`);
  return Number(text);
}

function unescapeHelp(text: string): string {
  return text.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
}

/** Parse `{a="x",b="y"}` at the start of `text`; returns the labels and what follows. */
function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    while (text[i] === ' ') i++;
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const name = LABEL.exec(text.slice(i))?.[0];
    if (!name) throw new ExpositionError(`line ${line}: bad label name at '${text.slice(i)}'`);
    i += name.length;
    if (text[i] !== '=' || text[i + 1] !== '"') throw new ExpositionError(`line ${line}: expected =" after label ${name}`);
    i += 2;
    let value = '';
    for (;;) {
      const ch = text[i];
      if (ch === undefined) throw new ExpositionError(`line ${line}: unterminated value of label ${name}`);
      if (ch === '"') break;
      if (ch === '\\') {
        const next = text[i + 1];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new ExpositionError(`line ${line}: bad escape \\${next ?? ''} in label ${name}`);
        i += 2;
      } else {
        value += ch;
        i += 1;
      }
    }
    i += 1;
    if (Object.hasOwn(labels, name)) throw new ExpositionError(`line ${line}: label ${name} given twice`);
    labels[name] = value;
    while (text[i] === ' ') i++;
    if (text[i] === ',') i += 1;
    else if (text[i] !== '}') throw new ExpositionError(`line ${line}: expected , or } after label ${name}`);
  }
}

/** The family a sample name belongs to, given the declared families. */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const exact = families.get(name);
  if (exact) return exact;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const family = families.get(name.slice(0, -suffix.length));
    if (family && (family.type === 'histogram' || (family.type === 'summary' && suffix !== '_bucket'))) return family;
  }
  return undefined;
}

const seriesKey = (name: string, labels: Record<string, string>) =>
  `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;

function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = seriesKey(family.name, rest);
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (sample.name.endsWith('_bucket')) {
      if (le === undefined) throw new ExpositionError(`${sample.name}: bucket without le`);
      group.buckets.push([parseNumber(le, 0), sample.value]);
    } else if (sample.name.endsWith('_sum')) group.sum = sample.value;
    else if (sample.name.endsWith('_count')) group.count = sample.value;
    else throw new ExpositionError(`${family.name}: sample ${sample.name} in a histogram`);
  }
  for (const [key, group] of groups) {
    const bounds = group.buckets.map(([b]) => b);
    if (bounds.some((b, i) => i > 0 && b <= bounds[i - 1]!)) throw new ExpositionError(`${key}: le not ascending`);
    if (group.buckets.some(([, v], i) => i > 0 && v < group.buckets[i - 1]![1])) throw new ExpositionError(`${key}: buckets decrease`);
    const inf = group.buckets[group.buckets.length - 1];
    if (!inf || inf[0] !== Number.POSITIVE_INFINITY) throw new ExpositionError(`${key}: no +Inf bucket`);
    if (group.count !== inf[1]) throw new ExpositionError(`${key}: _count ${group.count} differs from the +Inf bucket ${inf[1]}`);
    if (group.sum === undefined) throw new ExpositionError(`${key}: no _sum`);
  }
}

export function parseExposition(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new ExpositionError('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  const seen = new Set<string>();
  const closed = new Set<string>();
  let current: Family | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(raw);
      if (!meta) return; // a comment
      const [, kind, name = '', rest = ''] = meta;
      if (!NAME.test(name) || NAME.exec(name)![0] !== name) throw new ExpositionError(`line ${line}: bad metric name '${name}'`);
      if (kind === 'HELP') {
        if (helps.has(name)) throw new ExpositionError(`line ${line}: second HELP for ${name}`);
        helps.set(name, unescapeHelp(rest));
        const family = families.get(name);
        if (family) family.help = helps.get(name);
        return;
      }
      if (families.has(name)) throw new ExpositionError(`line ${line}: second TYPE for ${name}`);
      if (!TYPES.has(rest.trim() as MetricType)) throw new ExpositionError(`line ${line}: unknown type '${rest}'`);
      const family: Family = { name, help: helps.get(name), type: rest.trim() as MetricType, samples: [] };
      families.set(name, family);
      if (current) closed.add(current.name);
      current = family;
      return;
    }
    const name = NAME.exec(raw)?.[0];
    if (!name) throw new ExpositionError(`line ${line}: no metric name in '${raw}'`);
    let rest = raw.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
    const parts = rest.trim().split(/\s+/);
    if (!rest.startsWith(' ') || parts.length < 1 || parts.length > 2)
      throw new ExpositionError(`line ${line}: expected ' value [timestamp]' in '${raw}'`);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new ExpositionError(`line ${line}: bad timestamp '${parts[1]}'`);
    const value = parseNumber(parts[0]!, line);
    const family = familyOf(name, families);
    if (!family) throw new ExpositionError(`line ${line}: sample ${name} of no declared family`);
    if (closed.has(family.name) || family !== current)
      throw new ExpositionError(`line ${line}: samples of ${family.name} are not contiguous`);
    if (family.type === 'histogram' && !name.endsWith('_bucket') && 'le' in labels)
      throw new ExpositionError(`line ${line}: le on ${name}`);
    if (family.type === 'counter' && !(value >= 0)) throw new ExpositionError(`line ${line}: counter ${name} is ${value}`);
    const key = seriesKey(name, labels);
    if (seen.has(key)) throw new ExpositionError(`line ${line}: series ${key} appears twice`);
    seen.add(key);
    family.samples.push({ name, labels, value });
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

/** Samples named `name` whose labels include `labels`. */
export function samples(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): Sample[] {
  const found: Sample[] = [];
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) found.push(sample);
    }
  }
  return found;
}

/** The value of the one series named `name` with exactly these labels; undefined when absent. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const exact = samples(families, name, labels).filter((s) => Object.keys(s.labels).length === Object.keys(labels).length);
  if (exact.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${exact.length} series`);
  return exact[0]?.value;
}

/** Sum over the series named `name` whose labels include `labels`. */
export function total(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  return samples(families, name, labels).reduce((sum, s) => sum + s.value, 0);
}

/** Every label value of `label` among series of `name`. */
export function labelValues(families: Map<string, Family>, name: string, label: string): string[] {
  return [
    ...new Set(
      samples(families, name)
        .map((s) => s.labels[label])
        .filter((v): v is string => v !== undefined),
    ),
  ].sort();
}

/** Every series as `name{sorted labels} value`, sorted: two scrapes compare equal when their numbers do. */
export function canonical(families: Map<string, Family>): string[] {
  const lines: string[] = [];
  for (const family of families.values()) {
    for (const s of family.samples) {
      const labels = Object.entries(s.labels)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(',');
      lines.push(`${s.name}{${labels}} ${s.value}`);
    }
  }
  return lines.sort();
}
