// The Cloudflare Worker entry (production at the edge, and `npm run dev:edge`).
//
// Bindings (secrets; `wrangler secret put NAME`, or .dev.vars / --var locally):
//   DATABASE_URL              PlanetScale over HTTP: https://user:password@host (the
//                             mysql://user:password@host/db form PlanetScale shows works too;
//                             http:// only for the local stand-in)
//   UPSTASH_REDIS_REST_URL    Upstash REST endpoint, where the collector publishes hot state
//   UPSTASH_REDIS_REST_TOKEN  its token: the read-write one, to push commands (read-only is
//                             enough with PUBLIC_READ_ONLY or READ_ONLY)
// Optional vars (wrangler.toml [vars]), parsed like the Node entry's options:
//   URL_PREFIX, NATURAL_TIME, TASKS_COLUMNS, AUTO_REFRESH (duration, seconds by default),
//   PURGE_OFFLINE_WORKERS (duration), TASK_RUNTIME_METRIC_BUCKETS, READ_ONLY, INSPECT_TIMEOUT (milliseconds), LOG_LEVEL,
//   PUBLIC_READ_ONLY (serve pages and the read API to anyone, refuse every action)
//
// Secure by default: without a sign-in method (BASIC_AUTH, or AUTH_PROVIDER
// and its settings) and without PUBLIC_READ_ONLY=true, the Worker serves only
// /healthcheck and /static/*; everything else is a configuration page (500)
// saying what to set. A Worker is on the internet the moment it is deployed.
//
// The configuration is checked once per isolate (per distinct set of bindings):
// a missing or malformed binding answers every request with a 500 naming it
// (JSON under /api/, a short page elsewhere) and is logged once. Services are
// built once per isolate too: the database and Redis clients are plain fetch
// callers, holding no connection across requests.

import { Redis } from '@upstash/redis/cloudflare';
import { UpstashControlClient } from './edge/control-client';
import { deriveCommandKey } from './shared/command-signing';
import { upstashRest } from './shared/upstash-rest';
import type { Hono, MiddlewareHandler } from 'hono';
import { Kysely } from 'kysely';
import { PlanetScaleDialect } from 'kysely-planetscale';
import { ConfigErrorPage } from '../templates/pages/config-error';
import { createApp } from './app';
import { authConfigured, type AuthSettings, authSettings } from './auth/config';
import { sharedPageCache } from './edge/shared-cache';
import { OptionError, parseOptions, type StalkOptions } from './options';
import { checkHealth } from './queries/health';
import type { AppEnv, Services } from './services';
import type { ControlClient } from './shared/control';
import { HOT_WORKERS_KEY, type HotState, readWorkersSnapshot } from './shared/hot-state';
import { createLogger, createRateLimitedLog, errorMessage, type Logger, type LogLevel } from './shared/log';
import type { Database } from './shared/schema';
import { normalizePrefix, parseTaskColumns, type UiOptions } from './ui/context';

/** A binding as wrangler hands it over: vars may be TOML strings, numbers or booleans. */
type Binding = string | number | boolean | undefined;

export interface WorkerEnv {
  DATABASE_URL?: Binding;
  UPSTASH_REDIS_REST_URL?: Binding;
  UPSTASH_REDIS_REST_TOKEN?: Binding;
  URL_PREFIX?: Binding;
  NATURAL_TIME?: Binding;
  TASKS_COLUMNS?: Binding;
  AUTO_REFRESH?: Binding;
  PURGE_OFFLINE_WORKERS?: Binding;
  TASK_RUNTIME_METRIC_BUCKETS?: Binding;
  READ_ONLY?: Binding;
  PUBLIC_READ_ONLY?: Binding;
  INSPECT_TIMEOUT?: Binding;
  LOG_LEVEL?: Binding;
  // Authentication (see the README): secrets for keys and passwords, vars otherwise.
  BASIC_AUTH?: Binding;
  AUTH?: Binding;
  AUTH_PROVIDER?: Binding;
  OAUTH2_KEY?: Binding;
  OAUTH2_SECRET?: Binding;
  OAUTH2_REDIRECT_URI?: Binding;
  OAUTH2_OKTA_BASE_URL?: Binding;
  GITHUB_OAUTH_DOMAIN?: Binding;
  GITLAB_OAUTH_DOMAIN?: Binding;
  GITLAB_AUTH_ALLOWED_GROUPS?: Binding;
  GITLAB_MIN_ACCESS_LEVEL?: Binding;
  COOKIE_SECRET?: Binding;
  SESSION_TTL?: Binding;
  UNAUTHENTICATED_API?: Binding;
  METRICS_OPEN?: Binding;
  METRICS_TOKEN?: Binding;
  /** The [assets] binding, used to serve /static/* under a URL prefix. */
  ASSETS?: { fetch(request: Request): Promise<Response> };
}

/** What the Workers runtime passes as the third argument of fetch (Hono's own description of it). */
type ExecutionContext = Parameters<Hono<AppEnv>['fetch']>[2];

const SECRET_NAMES = ['DATABASE_URL', 'UPSTASH_REDIS_REST_URL', 'UPSTASH_REDIS_REST_TOKEN'] as const;
const VAR_NAMES = [
  'URL_PREFIX',
  'NATURAL_TIME',
  'TASKS_COLUMNS',
  'AUTO_REFRESH',
  'PURGE_OFFLINE_WORKERS',
  'TASK_RUNTIME_METRIC_BUCKETS',
  'READ_ONLY',
  'PUBLIC_READ_ONLY',
  'INSPECT_TIMEOUT',
  'LOG_LEVEL',
] as const;
/** Bindings read as the options of the same name (BASIC_AUTH is --basic-auth, ...). */
const AUTH_NAMES = [
  'BASIC_AUTH',
  'AUTH',
  'AUTH_PROVIDER',
  'OAUTH2_KEY',
  'OAUTH2_SECRET',
  'OAUTH2_REDIRECT_URI',
  'OAUTH2_OKTA_BASE_URL',
  'GITHUB_OAUTH_DOMAIN',
  'GITLAB_OAUTH_DOMAIN',
  'GITLAB_AUTH_ALLOWED_GROUPS',
  'GITLAB_MIN_ACCESS_LEVEL',
  'COOKIE_SECRET',
  'SESSION_TTL',
  'UNAUTHENTICATED_API',
  'METRICS_OPEN',
  'METRICS_TOKEN',
] as const;

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
    'BASIC_AUTH (user:password[,user:password]) and COOKIE_SECRET (32+ random characters), as secrets',
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
  if (!schemes.includes(url.protocol)) return `${name} must start with ${schemes.map((s) => `${s}//`).join(' or ')} (got ${url.protocol}//)`;
  if (!url.hostname) return `${name} has no host`;
  if (needsCredentials && (!url.username || !url.password)) return `${name} must carry the database user and password (https://user:password@host)`;
  return undefined;
}

/**
 * One UI var through the Node entry's own option parser (src/options.ts), so
 * both runtimes accept the same spellings ('5m', 'yes', ...); its messages
 * name the flag, rewritten here to name the var.
 */
function option<K extends keyof StalkOptions>(key: K, flag: string, varName: string, value: Binding, problems: string[]): StalkOptions[K] | undefined {
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
    option('taskRuntimeMetricBuckets', 'task-runtime-metric-buckets', 'TASK_RUNTIME_METRIC_BUCKETS', env.TASK_RUNTIME_METRIC_BUCKETS, problems) ?? [];
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
      problems.push('COOKIE_SECRET is missing (32+ random characters; `wrangler secret put COOKIE_SECRET`): sessions must verify in every isolate');
    }
  } catch (error) {
    // Option messages name flags; here the bindings have the same names in capitals.
    problems.push(errorMessage(error).replace(/--([a-z0-9-]+)/g, (_, flag: string) => flag.replace(/-/g, '_').toUpperCase()));
  }
  // Read as a boolean the way --read-only is; the message names the binding.
  const publicReadOnly = option('readOnly', 'read-only', 'PUBLIC_READ_ONLY', env.PUBLIC_READ_ONLY, problems) ?? false;
  if (publicReadOnly && auth && authConfigured(auth)) {
    problems.push('PUBLIC_READ_ONLY=true opens the dashboard to everyone and cannot be combined with BASIC_AUTH or AUTH_PROVIDER (for signed-in users without actions, set READ_ONLY=true)');
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

/**
 * Commands to the collector through Upstash, signed with the key derived
 * from COOKIE_SECRET (the collector derives the same one from its
 * --cookie-secret). Plain REST calls: waiting for a reply is a blocking
 * BLPOP, which @upstash/redis does not offer. Without COOKIE_SECRET the
 * client refuses to send (the key would be random per isolate).
 */
function upstashControl(config: WorkerConfig): ControlClient {
  const key = config.auth.ephemeralKey ? null : deriveCommandKey(config.auth.key);
  // Derivation of a valid key does not fail; a failure surfaces on the first command.
  key?.catch(() => undefined);
  return new UpstashControlClient(upstashRest(config.redisUrl, config.redisToken), key);
}

/** Hot state from Upstash: the collector's workers snapshot, or null (stale, missing, Upstash down) so routes ask the database. */
function upstashHotState(config: WorkerConfig, log: Logger): HotState {
  const redis = new Redis({
    url: config.redisUrl,
    token: config.redisToken,
    // The snapshot is read as the text the collector wrote; readWorkersSnapshot parses it.
    automaticDeserialization: false,
    enableTelemetry: false,
    readYourWrites: false,
    // A slow Upstash must not hold the page: give up quickly and use SQL.
    retry: false,
    signal: () => AbortSignal.timeout(2_000),
  });
  const warn = createRateLimitedLog((message) => log.warn(message));
  return {
    async workers() {
      try {
        const text = await redis.get<string>(HOT_WORKERS_KEY);
        return readWorkersSnapshot(text, Date.now() / 1000);
      } catch (error) {
        warn('upstash', `hot state unavailable, reading workers from the database: ${errorMessage(error)}`);
        return null;
      }
    },
  };
}

/** Without signed-in users nothing is sent to the collector, inspect refreshes included. */
const NO_ANONYMOUS_CONTROL: ControlClient = {
  run: async () => ({ ok: false, status: 403, error: 'Actions are disabled: this dashboard is public and read-only (PUBLIC_READ_ONLY)' }),
};

export function createServices(config: WorkerConfig): Services {
  const log = createLogger('stalk', config.logLevel);
  const db = new Kysely<Database>({ dialect: new PlanetScaleDialect({ url: config.databaseUrl }) });
  // Commands travel through Upstash to the collector (started with --state-url).
  const control: ControlClient = config.access.kind === 'auth' ? upstashControl(config) : NO_ANONYMOUS_CONTROL;
  return {
    db,
    dialect: 'mysql',
    log: log.child('web'),
    hot: upstashHotState(config, log.child('hot-state')),
    control,
    readOnly: config.readOnly,
    inspectTimeoutMs: config.inspectTimeoutMs,
    ui: config.ui,
    auth: config.auth,
    purgeOfflineWorkers: config.purgeOfflineWorkers,
    metrics: { runtimeBuckets: config.runtimeBuckets },
    // No collector in this process: its status row in the database says how it is.
    health: () => checkHealth(db, Date.now() / 1000),
    now: () => Date.now() / 1000,
  };
}

/**
 * /static/* under a URL prefix: Cloudflare serves assets at their own paths
 * (/static/...) before the Worker runs; a prefixed path reaches the Worker,
 * which asks the assets binding for the path without the prefix.
 */
function prefixedAssets(prefix: string): MiddlewareHandler<AppEnv>[] {
  if (!prefix) return [];
  const handler: MiddlewareHandler<AppEnv> = async (c, next) => {
    const assets = (c.env as WorkerEnv | undefined)?.ASSETS;
    if (!assets) return next();
    const url = new URL(c.req.url);
    url.pathname = url.pathname.slice(prefix.length);
    const response = await assets.fetch(new Request(url.toString(), c.req.raw));
    if (response.status === 404) return next();
    // The assets binding answers with immutable headers; later middleware adds some.
    return new Response(response.body, response);
  };
  return [handler];
}

type Built = { ok: true; app: Hono<AppEnv> } | { ok: false; error: ConfigError };

/** Per isolate: the app for the last set of bindings seen (they do not change within an isolate). */
let built: { fingerprint: string; value: Built } | undefined;

function fingerprint(env: WorkerEnv): string {
  return JSON.stringify([...SECRET_NAMES, ...VAR_NAMES, ...AUTH_NAMES].map((name) => env[name] ?? null));
}

export function buildWorkerApp(env: WorkerEnv): Built {
  const key = fingerprint(env);
  if (built?.fingerprint === key) return built.value;
  let value: Built;
  try {
    const config = readConfig(env);
    const services = createServices(config);
    const access = config.access;
    const app = createApp({
      services: () => services,
      prefix: config.ui.prefix,
      staticFiles: prefixedAssets(config.ui.prefix),
      sharedPages: sharedPageCache({ ttlSeconds: 1 }),
      ...(access.kind === 'closed' ? { gate: closedGate(config.ui.prefix) } : {}),
    });
    if (access.kind === 'closed') console.error(`stalk: ${new ConfigError([...CLOSED_BY_DEFAULT.items], CLOSED_BY_DEFAULT.lead).message}`);
    value = { ok: true, app };
  } catch (caught) {
    // A client refusing its settings is a configuration problem too (its message names no secret).
    const error = caught instanceof ConfigError ? caught : new ConfigError([`the bindings were refused: ${errorMessage(caught)}`]);
    console.error(`stalk: ${error.message}`);
    value = { ok: false, error };
  }
  built = { fingerprint: key, value };
  return value;
}

/** No sign-in configured: /healthcheck answers as usual (static files come before this); everything else is the configuration page. */
function closedGate(prefix: string): MiddlewareHandler<AppEnv> {
  const error = new ConfigError([...CLOSED_BY_DEFAULT.items], CLOSED_BY_DEFAULT.lead);
  return async (c, next) => {
    if (c.req.path === `${prefix}/healthcheck`) return next();
    return configErrorResponse(c.req.raw, error);
  };
}

export function configErrorResponse(request: Request, error: ConfigError): Response {
  const headers = { 'Cache-Control': 'no-store' };
  const path = new URL(request.url).pathname;
  if (path.includes('/api/') || (request.headers.get('Accept') ?? '').includes('application/json')) {
    return Response.json({ error: error.message, problems: error.problems }, { status: 500, headers });
  }
  if (path.endsWith('/healthcheck')) return new Response(`${error.message}\n`, { status: 500, headers });
  const html = `<!doctype html>${String(ConfigErrorPage({ problems: error.problems, lead: error.lead }))}`;
  return new Response(html, { status: 500, headers: { ...headers, 'Content-Type': 'text/html; charset=utf-8' } });
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Promise<Response> {
    const result = buildWorkerApp(env ?? {});
    if (!result.ok) return configErrorResponse(request, result.error);
    return result.app.fetch(request, env, ctx);
  },
};
