// The --alerts file, read and checked once at start. Every problem is one
// line naming the file, the rule (its number and name) and the field, and
// stops the start (exit 2): a typo must never quietly switch a rule off, so
// unknown fields are refused too.

import { readFileSync } from 'node:fs';
import { parseDuration } from '../../src/options';
import { ALERT_KINDS, type AlertKind, type AlertRule, type AlertsConfig } from '../../src/shared/alerts';
import { KEY } from '../../src/shared/schema';

export class AlertsConfigError extends Error {
  override name = 'AlertsConfigError';
}

type FieldKind = 'glob' | 'duration' | 'count' | 'ratio';

/** Each kind's fields besides name, kind and notify: whether required, and the default when not. */
const FIELDS: Record<AlertKind, Record<string, { type: FieldKind; default?: string | number }>> = {
  'task-failures': { task: { type: 'glob', default: '*' }, window: { type: 'duration' }, threshold: { type: 'count' } },
  'task-failure-rate': {
    task: { type: 'glob', default: '*' },
    window: { type: 'duration' },
    ratio: { type: 'ratio' },
    min_count: { type: 'count', default: 1 },
  },
  'worker-offline': { worker: { type: 'glob', default: '*' }, for: { type: 'duration', default: 0 } },
  'queue-length': { queue: { type: 'glob' }, threshold: { type: 'count' }, for: { type: 'duration', default: 0 } },
  'task-stuck': { task: { type: 'glob', default: '*' }, running_longer_than: { type: 'duration' } },
  'tasks-lost': { window: { type: 'duration' }, threshold: { type: 'count', default: 1 } },
  'collector-silent': { for: { type: 'duration' } },
};

const show = (value: unknown) => JSON.stringify(value) ?? String(value);
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Read and check the file; throws AlertsConfigError with one line. */
export function loadAlertsFile(path: string): AlertsConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new AlertsConfigError(`--alerts ${path}: cannot be read (${code ?? String(error)})`);
  }
  return parseAlertsConfig(text, path);
}

export function parseAlertsConfig(text: string, source: string): AlertsConfig {
  const fail = (message: string): never => {
    throw new AlertsConfigError(`--alerts ${source}: ${message}`);
  };
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (error) {
    return fail(`not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!isObject(root)) return fail('must be a JSON object with "webhooks" and "rules"');
  for (const key of Object.keys(root)) if (key !== 'webhooks' && key !== 'rules') fail(`unknown field "${key}" (use webhooks, rules)`);

  const webhooks: Record<string, string> = {};
  const hooks = root.webhooks ?? {};
  if (!isObject(hooks)) return fail('webhooks: must be an object of name -> URL');
  for (const [name, url] of Object.entries(hooks)) {
    if (typeof url !== 'string' || !isHttpUrl(url)) fail(`webhook "${name}": ${show(url)} is not an http(s) URL`);
    webhooks[name] = url as string;
  }

  if (!Array.isArray(root.rules)) return fail('rules: must be a list of rules');
  const names = new Set<string>();
  const rules = root.rules.map((raw: unknown, i: number) => {
    const rule = parseRule(raw, i + 1, webhooks, fail);
    if (names.has(rule.name)) fail(`rule ${i + 1} "${rule.name}": name: another rule has this name (names must be unique)`);
    names.add(rule.name);
    return rule;
  });
  return { webhooks, rules };
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function parseRule(raw: unknown, n: number, webhooks: Record<string, string>, fail: (message: string) => never): AlertRule {
  if (!isObject(raw)) return fail(`rule ${n}: must be an object`);
  const name = raw.name;
  if (typeof name !== 'string' || name.trim() === '' || name.length > KEY.name)
    return fail(`rule ${n}: name: ${show(name)} is not a name (1 to ${KEY.name} characters)`);
  const where = `rule ${n} "${name}"`;
  const kind = raw.kind;
  if (typeof kind !== 'string' || !(ALERT_KINDS as readonly string[]).includes(kind))
    return fail(`${where}: kind: ${show(kind)} is not one of ${ALERT_KINDS.join(', ')}`);
  const fields = FIELDS[kind as AlertKind];
  for (const key of Object.keys(raw)) {
    if (key !== 'name' && key !== 'kind' && key !== 'notify' && !(key in fields))
      fail(`${where}: unknown field "${key}" (a ${kind} rule takes ${['name', 'kind', 'notify', ...Object.keys(fields)].join(', ')})`);
  }

  const notifyRaw = raw.notify ?? [];
  if (!Array.isArray(notifyRaw) || notifyRaw.some((v) => typeof v !== 'string'))
    return fail(`${where}: notify: must be a list of webhook names`);
  for (const hook of notifyRaw as string[]) {
    if (!(hook in webhooks)) {
      const known = Object.keys(webhooks);
      fail(`${where}: notify: no webhook named "${hook}" (${known.length ? `defined: ${known.join(', ')}` : 'the file defines none'})`);
    }
  }

  const rule: Record<string, unknown> = { name, kind, notify: [...new Set(notifyRaw as string[])] };
  for (const [field, spec] of Object.entries(fields)) {
    const value = raw[field] ?? spec.default;
    if (value === undefined) fail(`${where}: ${field}: missing (a ${kind} rule needs ${field})`);
    rule[field] = fieldValue(value, spec.type, `${where}: ${field}`, fail);
  }
  return rule as unknown as AlertRule;
}

function fieldValue(value: unknown, type: FieldKind, at: string, fail: (message: string) => never): string | number {
  switch (type) {
    case 'glob':
      if (typeof value !== 'string' || value === '' || value.length > KEY.id)
        return fail(`${at}: ${show(value)} is not a name or glob (e.g. billing.*)`);
      return value;
    case 'duration': {
      const seconds = typeof value === 'number' ? value : typeof value === 'string' ? parseDuration(value) : undefined;
      if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0)
        return fail(`${at}: ${show(value)} is not a duration (e.g. 30s, 5m, 1h)`);
      return seconds;
    }
    case 'count':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
        return fail(`${at}: ${show(value)} is not a whole number of at least 1`);
      return value;
    case 'ratio':
      if (typeof value !== 'number' || !(value > 0 && value <= 1))
        return fail(`${at}: ${show(value)} is not a ratio above 0, at most 1 (e.g. 0.2)`);
      return value;
  }
}
