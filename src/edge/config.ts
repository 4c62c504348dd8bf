// The Worker's configuration, read from its bindings (src/edge/bindings.ts)
// once per isolate: every problem is collected, so one ConfigError names
// them all (src/edge/config-error.ts shows it). Vars go through the Node
// entry's own option parser (src/options.ts), so both runtimes accept the
// same spellings.

import { authConfigured, type AuthSettings, authSettings } from '../auth/config';
import { OptionError, parseOptions, type StalkOptions } from '../options';
import { errorMessage, type LogLevel } from '../shared/log';
import { normalizePrefix, parseTaskColumns, type UiOptions } from '../ui/context';
import { AUTH_NAMES, type Binding, type SECRET_NAMES, type WorkerEnv } from './bindings';

/**
 * Who may use the Worker: signed-in users (auth configured), anyone but
 * read-only (PUBLIC_READ_ONLY=true), or nobody yet (`closed`: only
 * /healthcheck and /static/* are served; CLOSED_BY_DEFAULT says what to set).
 */
export type Access = { kind: 'auth' } | { kind: 'public-read-only' } | { kind: 'closed' };

/** What the configuration page says while no sign-in method is configured. */
export const CLOSED_BY_DEFAULT = {
  lead: 'No sign-in is configured, so this Worker serves only /healthcheck and /static/*. Set one of:',
  items: [
    'BASIC_AUTH (user:password[:role][,user:password[:role]]) and COOKIE_SECRET (32+ random characters), as secrets',
    'AUTH_PROVIDER (google, github, gitlab or okta) with AUTH, OAUTH2_KEY, OAUTH2_SECRET, OAUTH2_REDIRECT_URI and COOKIE_SECRET',
    'PUBLIC_READ_ONLY=true: pages, the read API and /metrics for anyone, every action refused',
  ],
} as const;

export interface WorkerConfig {
  access: Access;
  databaseUrl: string;
  redisUrl: string;
  redisToken: string;
  ui: UiOptions;
  purgeOfflineWorkers: number;
  /** Bounds of the runtime histograms on /metrics. */
  runtimeBuckets: number[];
  readOnly: boolean;
  inspectTimeoutMs: number;
  logLevel: LogLevel;
  auth: AuthSettings;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  /** `lead` introduces the list (otherwise: the bindings need fixing). */
  constructor(
    readonly problems: string[],
    readonly lead?: string,
  ) {
    super(`Stalk is not configured: ${lead ? `${lead} ` : ''}${problems.join('; ')}`);
  }
}

function text(value: Binding): string | undefined {
  if (value === undefined || value === null) return undefined;
  const s = String(value).trim();
  return s === '' ? undefined : s;
}

/** A secret's URL, judged without ever echoing it (it carries a password). */
function checkUrl(name: string, value: string, schemes: string[], needsCredentials: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${name} is not a URL`;
  }
  if (!schemes.includes(url.protocol))
    return `${name} must start with ${schemes.map((s) => `${s}//`).join(' or ')} (got ${url.protocol}//)`;
  if (!url.hostname) return `${name} has no host`;
  if (needsCredentials && (!url.username || !url.password))
    return `${name} must carry the database user and password (https://user:password@host)`;
  return undefined;
}

/**
 * One UI var through the Node entry's own option parser (src/options.ts), so
 * both runtimes accept the same spellings ('5m', 'yes', ...); its messages
 * name the flag, rewritten here to name the var.
 */
function option<K extends keyof StalkOptions>(
  key: K,
  flag: string,
  varName: string,
  value: Binding,
  problems: string[],
): StalkOptions[K] | undefined {
  const raw = value === undefined ? undefined : String(value);
  try {
    const env = raw === undefined ? {} : { [`STALK_${flag.replace(/-/g, '_').toUpperCase()}`]: raw };
    return parseOptions([], env)[key];
  } catch (error) {
    if (!(error instanceof OptionError)) throw error;
    problems.push(error.message.replace(`--${flag}`, varName));
    return undefined;
  }
}

/** Check the bindings; throws ConfigError listing every problem at once. */
export function readConfig(env: WorkerEnv): WorkerConfig {
  const problems: string[] = [];
  const required = (name: (typeof SECRET_NAMES)[number]) => {
    const value = text(env[name]);
    if (value === undefined) problems.push(`${name} is missing (set it with \`wrangler secret put ${name}\`, or in .dev.vars locally)`);
    return value ?? '';
  };
  const databaseUrl = required('DATABASE_URL');
  const redisUrl = required('UPSTASH_REDIS_REST_URL');
  const redisToken = required('UPSTASH_REDIS_REST_TOKEN');
  const badDatabase = databaseUrl && checkUrl('DATABASE_URL', databaseUrl, ['https:', 'http:', 'mysql:'], true);
  if (badDatabase) problems.push(badDatabase);
  const badRedis = redisUrl && checkUrl('UPSTASH_REDIS_REST_URL', redisUrl, ['https:', 'http:'], false);
  if (badRedis) problems.push(badRedis);
  if (redisToken && /\s/.test(redisToken)) problems.push('UPSTASH_REDIS_REST_TOKEN contains white space');

  const urlPrefix = option('urlPrefix', 'url-prefix', 'URL_PREFIX', env.URL_PREFIX, problems) ?? '';
  const naturalTime = option('naturalTime', 'natural-time', 'NATURAL_TIME', env.NATURAL_TIME, problems) ?? false;
  const autoRefresh = option('autoRefresh', 'auto-refresh', 'AUTO_REFRESH', env.AUTO_REFRESH, problems) ?? 0;
  const purge = option('purgeOfflineWorkers', 'purge-offline-workers', 'PURGE_OFFLINE_WORKERS', env.PURGE_OFFLINE_WORKERS, problems) ?? 0;
  const runtimeBuckets =
    option(
      'taskRuntimeMetricBuckets',
      'task-runtime-metric-buckets',
      'TASK_RUNTIME_METRIC_BUCKETS',
      env.TASK_RUNTIME_METRIC_BUCKETS,
      problems,
    ) ?? [];
  const readOnly = option('readOnly', 'read-only', 'READ_ONLY', env.READ_ONLY, problems) ?? false;
  const inspectTimeoutMs = option('inspectTimeout', 'inspect-timeout', 'INSPECT_TIMEOUT', env.INSPECT_TIMEOUT, problems) ?? 1000;
  const logLevel = option('logLevel', 'log-level', 'LOG_LEVEL', env.LOG_LEVEL, problems) ?? 'info';
  let tasksColumns: UiOptions['tasksColumns'] = [];
  try {
    tasksColumns = parseTaskColumns(String(env.TASKS_COLUMNS ?? ''));
  } catch (error) {
    problems.push(errorMessage(error).replace('--tasks-columns', 'TASKS_COLUMNS'));
  }

  let auth: AuthSettings | undefined;
  try {
    const authEnv: Record<string, string> = {};
    for (const name of AUTH_NAMES) {
      const value = text(env[name]);
      if (value !== undefined) authEnv[`STALK_${name}`] = value;
    }
    auth = authSettings(parseOptions([], authEnv));
    // Every isolate must verify every other's sessions (and the collector the
    // commands signed with it): the key cannot be random here.
    if (auth.ephemeralKey && authConfigured(auth)) {
      problems.push(
        'COOKIE_SECRET is missing (32+ random characters; `wrangler secret put COOKIE_SECRET`): sessions must verify in every isolate',
      );
    }
  } catch (error) {
    // Option messages name flags; here the bindings have the same names in capitals.
    problems.push(errorMessage(error).replace(/--([a-z0-9-]+)/g, (_, flag: string) => flag.replace(/-/g, '_').toUpperCase()));
  }
  // Read as a boolean the way --read-only is; the message names the binding.
  const publicReadOnly = option('readOnly', 'read-only', 'PUBLIC_READ_ONLY', env.PUBLIC_READ_ONLY, problems) ?? false;
  if (publicReadOnly && auth && authConfigured(auth)) {
    problems.push(
      'PUBLIC_READ_ONLY=true opens the dashboard to everyone and cannot be combined with BASIC_AUTH or AUTH_PROVIDER (for signed-in users without actions, set READ_ONLY=true)',
    );
  }

  if (problems.length > 0 || !auth) throw new ConfigError(problems);
  const access: Access = authConfigured(auth) ? { kind: 'auth' } : publicReadOnly ? { kind: 'public-read-only' } : { kind: 'closed' };
  return {
    access,
    // Public read-only: the read API is as open as the pages are.
    auth: access.kind === 'public-read-only' ? { ...auth, unauthenticatedApi: true } : auth,
    databaseUrl,
    redisUrl,
    redisToken,
    ui: { prefix: normalizePrefix(urlPrefix), naturalTime, tasksColumns, refreshSeconds: autoRefresh },
    purgeOfflineWorkers: purge,
    runtimeBuckets,
    readOnly: readOnly || access.kind !== 'auth',
    inspectTimeoutMs,
    logLevel,
  };
}
