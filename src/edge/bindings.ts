// The Worker's bindings, as wrangler hands them to the fetch handler.
//
// Secrets (`wrangler secret put NAME`, or .dev.vars / --var locally):
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
// Authentication: the AUTH_NAMES below, read as the options of the same name.

/** A binding as wrangler hands it over: vars may be TOML strings, numbers or booleans. */
export type Binding = string | number | boolean | undefined;

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
  AUTH_OPERATORS?: Binding;
  AUTH_ADMINS?: Binding;
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

export const SECRET_NAMES = ['DATABASE_URL', 'UPSTASH_REDIS_REST_URL', 'UPSTASH_REDIS_REST_TOKEN'] as const;
export const VAR_NAMES = [
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
export const AUTH_NAMES = [
  'BASIC_AUTH',
  'AUTH',
  'AUTH_OPERATORS',
  'AUTH_ADMINS',
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

/** Every binding the configuration reads, as one string: equal strings give the same app. */
export function bindingsFingerprint(env: WorkerEnv): string {
  return JSON.stringify([...SECRET_NAMES, ...VAR_NAMES, ...AUTH_NAMES].map((name) => env[name] ?? null));
}
