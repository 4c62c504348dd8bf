// Alert rules as both programs see them: the collector loads them from the
// --alerts file (worker-collector/alerts/config.ts), evaluates them and
// writes them to alert_rules; the web app, which cannot read the file (it
// may run as a Worker), reads them back from there. Durations are seconds.

export const ALERT_KINDS = [
  'task-failures',
  'task-failure-rate',
  'worker-offline',
  'queue-length',
  'task-stuck',
  'tasks-lost',
  'collector-silent',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

interface RuleBase {
  name: string;
  /** Webhook names (keys of the file's `webhooks`); empty: shown on /alerts and /metrics only. */
  notify: string[];
}

/** Failed tasks whose name matches `task` (a glob) in the last `window` s: fires at `threshold`. */
export interface TaskFailuresRule extends RuleBase {
  kind: 'task-failures';
  task: string;
  window: number;
  threshold: number;
}

/** failed / (failed + succeeded) in the last `window` s, once at least `min_count` finished: fires at `ratio`. */
export interface TaskFailureRateRule extends RuleBase {
  kind: 'task-failure-rate';
  task: string;
  window: number;
  ratio: number;
  min_count: number;
}

/** Each worker matching `worker` (a glob) offline for `for` s: one alert per worker. */
export interface WorkerOfflineRule extends RuleBase {
  kind: 'worker-offline';
  worker: string;
  for: number;
}

/** Each queue matching `queue` (a glob) holding at least `threshold` messages for `for` s: one alert per queue. */
export interface QueueLengthRule extends RuleBase {
  kind: 'queue-length';
  queue: string;
  threshold: number;
  for: number;
}

/** Tasks matching `task` (a glob) STARTED more than `running_longer_than` s ago: one alert per task name. */
export interface TaskStuckRule extends RuleBase {
  kind: 'task-stuck';
  task: string;
  running_longer_than: number;
}

/** Tasks that became LOST in the last `window` s: fires at `threshold`. */
export interface TasksLostRule extends RuleBase {
  kind: 'tasks-lost';
  window: number;
  threshold: number;
}

/** The collector took no event for `for` s. */
export interface CollectorSilentRule extends RuleBase {
  kind: 'collector-silent';
  for: number;
}

export type AlertRule =
  | TaskFailuresRule
  | TaskFailureRateRule
  | WorkerOfflineRule
  | QueueLengthRule
  | TaskStuckRule
  | TasksLostRule
  | CollectorSilentRule;

export interface AlertsConfig {
  /** Name -> http(s) URL. */
  webhooks: Record<string, string>;
  rules: AlertRule[];
}

export type AlertLabels = Record<string, string>;
export type AlertStatus = 'firing' | 'resolved';

/** One alert instance's identity within its rule: its labels as canonical JSON (keys sorted). */
export function labelsKey(labels: AlertLabels): string {
  return JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

export function parseLabels(text: string): AlertLabels {
  try {
    const value: unknown = JSON.parse(text);
    if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
  } catch {
    return {};
  }
}

/** Whether a name pattern has wildcards (`*` any run of characters, `?` one character). */
export function isGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

/** A glob as a whole-string, case-sensitive matcher; every other character is literal. */
export function globMatcher(pattern: string): (name: string) => boolean {
  if (!isGlob(pattern)) return (name) => name === pattern;
  const source = Array.from(pattern, (ch) => (ch === '*' ? '[^]*' : ch === '?' ? '[^]' : ch.replace(/[.+^${}()|[\]\\/]/g, '\\$&'))).join(
    '',
  );
  const regex = new RegExp(`^${source}$`, 'u');
  return (name) => regex.test(name);
}

/** '90s' -> '1m30s': durations as the file spells them. */
export function formatSeconds(seconds: number): string {
  if (seconds < 1 && seconds > 0) return `${Math.round(seconds * 1000)}ms`;
  let rest = Math.round(seconds);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}s`);
  return parts.join('');
}

/** What a rule's value is compared with, as stored and sent (`threshold` in the payload). */
export function ruleThreshold(rule: AlertRule): number {
  switch (rule.kind) {
    case 'task-failures':
    case 'queue-length':
    case 'tasks-lost':
      return rule.threshold;
    case 'task-failure-rate':
      return rule.ratio;
    case 'worker-offline':
    case 'collector-silent':
      return rule.for;
    case 'task-stuck':
      return rule.running_longer_than;
  }
}

/** The rule's condition in words (the page's rule list). */
export function describeRule(rule: AlertRule): string {
  switch (rule.kind) {
    case 'task-failures':
      return `at least ${rule.threshold} failures of ${rule.task} in ${formatSeconds(rule.window)}`;
    case 'task-failure-rate':
      return `at least ${pct(rule.ratio)} of ${rule.task} failing in ${formatSeconds(rule.window)} (of at least ${rule.min_count} finished)`;
    case 'worker-offline':
      return `${isGlob(rule.worker) ? 'a worker matching ' : ''}${rule.worker} offline for ${formatSeconds(rule.for)}`;
    case 'queue-length':
      return `${isGlob(rule.queue) ? 'a queue matching ' : 'queue '}${rule.queue} holding at least ${rule.threshold} messages for ${formatSeconds(rule.for)}`;
    case 'task-stuck':
      return `${rule.task} running longer than ${formatSeconds(rule.running_longer_than)}`;
    case 'tasks-lost':
      return `at least ${rule.threshold} tasks lost in ${formatSeconds(rule.window)}`;
    case 'collector-silent':
      return `no event for ${formatSeconds(rule.for)}`;
  }
}

const pct = (ratio: number) => `${Math.round(ratio * 1000) / 10}%`;

/** An alert's value in words, as its kind measures it. */
export function describeValue(kind: AlertKind, value: number): string {
  switch (kind) {
    case 'task-failures':
      return `${value} failed`;
    case 'task-failure-rate':
      return `${pct(value)} failed`;
    case 'worker-offline':
      return `offline for ${formatSeconds(value)}`;
    case 'queue-length':
      return `${value} messages`;
    case 'task-stuck':
      return `running for ${formatSeconds(value)}`;
    case 'tasks-lost':
      return `${value} lost`;
    case 'collector-silent':
      return `silent for ${formatSeconds(value)}`;
  }
}

/**
 * The page that shows what an alert is about, as a path under the web app's
 * root: the matching task list, the worker, the broker page, or /alerts.
 */
export function alertPath(rule: Pick<AlertRule, 'kind'> & { task?: string }, labels: AlertLabels): string {
  const tasks = (state: string, name: string | undefined) =>
    `/tasks?state=${state}${name && !isGlob(name) ? `&name=${encodeURIComponent(name)}` : ''}`;
  switch (rule.kind) {
    case 'task-failures':
    case 'task-failure-rate':
      return tasks('FAILURE', rule.task);
    case 'task-stuck':
      return tasks('STARTED', labels.task);
    case 'tasks-lost':
      return tasks('LOST', undefined);
    case 'worker-offline':
      return labels.worker ? `/worker/${encodeURIComponent(labels.worker)}` : '/workers';
    case 'queue-length':
      return '/broker';
    case 'collector-silent':
      return '/alerts';
  }
}

/** The webhook body (README "Alerts"): close to Alertmanager's, with `text` for Slack and Mattermost. */
export interface AlertPayload {
  alert: string;
  status: AlertStatus;
  kind: AlertKind;
  labels: AlertLabels;
  value: number;
  threshold: number;
  /** ISO 8601: when the alert started firing (for `resolved`, the firing it ends). */
  since: string;
  url: string;
  text: string;
}

/** The one-line message: `[FIRING] refunds failing (task=billing.refund): 3 failed; at least 3 failures of ... in 5m`. */
export function alertText(rule: AlertRule, status: AlertStatus, labels: AlertLabels, value: number): string {
  const labelText = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const head = `[${status === 'firing' ? 'FIRING' : 'RESOLVED'}] ${rule.name}${labelText ? ` (${labelText})` : ''}`;
  return `${head}: ${describeValue(rule.kind, value)}; rule: ${describeRule(rule)}`;
}

/** A rule's threshold in words, as its kind measures it. */
export function describeThreshold(kind: AlertKind, threshold: number): string {
  switch (kind) {
    case 'task-failure-rate':
      return pct(threshold);
    case 'worker-offline':
    case 'collector-silent':
    case 'task-stuck':
      return formatSeconds(threshold);
    default:
      return String(threshold);
  }
}

// What the web app reads back (src/queries/alerts.ts) and the page shows.

export interface StoredRule {
  rule: AlertRule;
  loaded_at: number;
}

export interface AlertInstance {
  alert: string;
  kind: AlertKind | null;
  labels: AlertLabels;
  status: 'pending' | 'firing';
  since: number;
  value: number;
  threshold: number;
  updated_at: number;
}

export interface AlertEvent {
  id: number;
  at: number;
  alert: string;
  kind: AlertKind | null;
  labels: AlertLabels;
  status: 'firing' | 'resolved';
  since: number;
  value: number;
  threshold: number;
  delivery: string | null;
}

export interface AlertsView {
  rules: StoredRule[];
  instances: AlertInstance[];
  history: AlertEvent[];
}
