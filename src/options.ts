// Every option of the Node programs in one place (`npm start` and
// `npm run collector`). Flower-like names; each can be given as a flag
// (`--max-tasks 5000`, `--max-tasks=5000`, `--max_tasks`), or as the env
// variable STALK_<NAME> (STALK_MAX_TASKS). Flags win over env, env over
// defaults. The broker also reads Celery's CELERY_BROKER_URL. One file on
// purpose, like Flower's options.py: every option is found here.

import type { AuthInput } from './auth/config';
import { BucketOptionError, parseRuntimeBuckets } from './metrics/buckets';

export type OptionKind = 'string' | 'int' | 'bool' | 'duration' | 'level' | 'buckets' | 'bytes' | 'choice';

interface OptionSpec {
  kind: OptionKind;
  default: string;
  help: string;
  /** Extra env names read after STALK_<NAME>. */
  env?: string[];
  min?: number;
  max?: number;
  /** The values a 'choice' option takes. */
  choices?: readonly string[];
}

export const OPTION_SPECS = {
  broker: {
    kind: 'string',
    default: 'redis://localhost:6379/0',
    env: ['CELERY_BROKER_URL'],
    help: 'Celery broker URL: redis://, rediss://, amqp:// or amqps://',
  },
  port: { kind: 'int', default: '5555', min: 0, help: 'HTTP port of the web app (0 picks a free one)' },
  address: { kind: 'string', default: '127.0.0.1', help: 'address to listen on (0.0.0.0 for all interfaces)' },
  db: {
    kind: 'string',
    default: './data/stalk.db',
    help: 'database: a SQLite file path, or mysql://user:pass@host:3306/name',
  },
  'max-tasks': { kind: 'int', default: '0', min: 0, help: 'keep at most this many tasks, oldest pruned first (0: no limit)' },
  'max-task-age': { kind: 'duration', default: '7d', help: 'prune tasks whose last event is older than this (0: keep forever)' },
  'retention-interval': { kind: 'duration', default: '60s', help: 'how often retention runs' },
  'stats-minutes-hours': {
    kind: 'int',
    default: '48',
    min: 1,
    max: 24 * 90,
    help: 'task statistics: keep per-minute buckets this many hours, then roll them up into hourly buckets',
  },
  'stats-retention-days': {
    kind: 'int',
    default: '90',
    min: 1,
    max: 3650,
    help: 'task statistics: delete buckets (minute and hour) older than this many days',
  },
  'lost-after': {
    kind: 'duration',
    default: '1h',
    help: 'a sent task not received within this long becomes LOST (needs task_send_sent_event; 0: never)',
  },
  'flush-interval': { kind: 'duration', default: '500ms', help: 'write buffered events at least this often' },
  'flush-size': { kind: 'int', default: '20000', min: 1, help: 'write as soon as this many events are buffered' },
  'max-buffer-mb': {
    kind: 'int',
    default: '8',
    min: 4,
    help: 'memory the collector may hold for events not yet written (MiB); past it, RabbitMQ is paused and the Redis reader spools to disk (see --max-spool-mb)',
  },
  'max-spool-mb': {
    kind: 'int',
    default: '1024',
    min: 0,
    help: 'Redis: disk the reader may fill with events the collector cannot take yet (MiB); past it, or with 0, events are shed (counted, dropped as overload)',
  },
  'spool-dir': {
    kind: 'string',
    default: '',
    help: 'Redis: an existing directory for that spool (default: the system temporary directory), checked at start; the file is unlinked at once and never outlives the collector',
  },
  'max-event-bytes': {
    kind: 'bytes',
    default: '1MiB',
    min: 1024,
    help: 'largest broker message read as events (bytes; 512KiB, 4MiB); larger ones are counted as too-large and never parsed',
  },
  migrate: {
    kind: 'choice',
    default: 'auto',
    choices: ['auto', 'check', 'off'],
    help: 'schema migrations at start: auto applies them, check refuses to start when the schema is behind (PlanetScale production), off does neither',
  },
  'enable-events': { kind: 'bool', default: 'true', help: 'broadcast enable_events every 5 s so workers started without -E send events' },
  'event-queue': {
    kind: 'string',
    default: '',
    help: 'RabbitMQ: a named event queue that outlives restarts (default: exclusive, auto-delete)',
  },
  'event-queue-ttl': { kind: 'duration', default: '60s', help: 'RabbitMQ: message TTL of the event queue (Celery uses 5 s)' },
  'event-queue-max-length': { kind: 'int', default: '1000000', min: 1, help: 'RabbitMQ: bound on events waiting in the event queue' },
  'event-queue-expires': { kind: 'duration', default: '1h', help: 'RabbitMQ: a named event queue is deleted after being unused this long' },
  lease: {
    kind: 'choice',
    default: 'auto',
    choices: ['auto', 'on', 'off'],
    help: 'one collector writes, others on the same database stand by (a lease in the database); auto: on, except for RabbitMQ with --event-queue (competing consumers)',
  },
  'lease-name': { kind: 'string', default: 'collector', help: 'collectors that back each other up share this lease name' },
  'lease-ttl': {
    kind: 'duration',
    default: '8s',
    min: 3,
    help: 'a standby takes over this long after the active collector stopped renewing (it renews every flush, at least every 2 s)',
  },
  'event-prefetch': {
    kind: 'int',
    default: '20000',
    min: 10,
    max: 65535,
    help: 'RabbitMQ: event messages delivered ahead of acknowledgements (acks follow the database writes; this bounds what one flush interval can take in)',
  },
  collector: {
    kind: 'bool',
    default: 'true',
    help: 'run the collector in this process (npm start); --no-collector serves stored data only',
  },
  'inspect-timeout': {
    kind: 'int',
    default: '1000',
    min: 10,
    help: "milliseconds to collect inspect and control replies (Flower's inspect_timeout)",
  },
  'result-backend': {
    kind: 'string',
    default: '',
    env: ['CELERY_RESULT_BACKEND'],
    help: 'Redis result backend for task results and abort (default: the broker when it is Redis)',
  },
  'broker-api': {
    kind: 'string',
    default: '',
    help: 'RabbitMQ management API URL for queue lengths, e.g. http://guest:guest@localhost:15672/api/',
  },
  'queue-poll-interval': { kind: 'duration', default: '5s', help: 'how often the collector measures queue lengths (0: never)' },
  'metrics-snapshot-interval': {
    kind: 'duration',
    default: '15s',
    help: 'how often the collector renders /metrics for the Worker to serve (MySQL/PlanetScale; 0: never)',
  },
  'read-only': { kind: 'bool', default: 'false', help: "refuse every control and task action (Flower's --read-only)" },
  'allow-anonymous-control': {
    kind: 'bool',
    default: 'false',
    help: 'allow control and task actions without authentication on a non-loopback --address (otherwise --read-only or auth is required there)',
  },
  'trust-proxy': {
    kind: 'bool',
    default: 'false',
    env: ['FLOWER_XHEADERS'],
    help: 'believe X-Forwarded-Proto from a reverse proxy (HSTS, Secure cookies); only behind a proxy that sets it',
  },
  'basic-auth': {
    kind: 'string',
    default: '',
    env: ['FLOWER_BASIC_AUTH'],
    help: 'user:password[:role][,...] allowed by HTTP Basic authentication; role viewer, operator or admin (the default)',
  },
  auth: {
    kind: 'string',
    default: '',
    env: ['FLOWER_AUTH'],
    help: 'regular expression an OAuth email must match in full, e.g. .*@example\\.com',
  },
  'auth-operators': {
    kind: 'string',
    default: '',
    help: 'regular expression (full match, as --auth) of OAuth emails with the operator role; with it or --auth-admins, others are viewers',
  },
  'auth-admins': {
    kind: 'string',
    default: '',
    help: 'regular expression (full match, as --auth) of OAuth emails with the admin role; with it or --auth-operators, others are viewers',
  },
  'auth-provider': {
    kind: 'string',
    default: '',
    env: ['FLOWER_AUTH_PROVIDER'],
    help: "OAuth2 provider: google, github, gitlab or okta (Flower's class names work too)",
  },
  'oauth2-key': { kind: 'string', default: '', env: ['FLOWER_OAUTH2_KEY'], help: 'OAuth2 client id' },
  'oauth2-secret': { kind: 'string', default: '', env: ['FLOWER_OAUTH2_SECRET'], help: 'OAuth2 client secret' },
  'oauth2-redirect-uri': {
    kind: 'string',
    default: '',
    env: ['FLOWER_OAUTH2_REDIRECT_URI'],
    help: 'OAuth2 callback: https://host[/prefix]/login',
  },
  'oauth2-okta-base-url': {
    kind: 'string',
    default: '',
    env: ['FLOWER_OAUTH2_OKTA_BASE_URL'],
    help: 'Okta: the authorization server, e.g. https://org.okta.com/oauth2/default',
  },
  'github-oauth-domain': {
    kind: 'string',
    default: 'github.com',
    env: ['FLOWER_GITHUB_OAUTH_DOMAIN'],
    help: 'GitHub: the GitHub (Enterprise) host',
  },
  'gitlab-oauth-domain': { kind: 'string', default: 'gitlab.com', env: ['FLOWER_GITLAB_OAUTH_DOMAIN'], help: 'GitLab: the GitLab host' },
  'gitlab-auth-allowed-groups': {
    kind: 'string',
    default: '',
    env: ['FLOWER_GITLAB_AUTH_ALLOWED_GROUPS'],
    help: 'GitLab: comma-separated group paths a user must belong to (subgroups as group/sub)',
  },
  'gitlab-min-access-level': {
    kind: 'int',
    default: '20',
    min: 0,
    env: ['FLOWER_GITLAB_MIN_ACCESS_LEVEL'],
    help: 'GitLab: minimum access level in those groups',
  },
  'oauth2-google-base': {
    kind: 'string',
    default: '',
    help: "Google: one host for Google's OAuth endpoints (a proxy or a test server); default Google's own",
  },
  'cookie-secret': {
    kind: 'string',
    default: '',
    env: ['FLOWER_COOKIE_SECRET'],
    help: "key (32+ characters) that signs sessions and API tokens, and keys the command channel (the collector needs the Worker's COOKIE_SECRET with --state-url); default: random per process, so sessions end at restart",
  },
  'session-ttl': { kind: 'duration', default: '12h', help: 'how long a sign-in lasts' },
  'unauthenticated-api': {
    kind: 'bool',
    default: 'false',
    env: ['FLOWER_UNAUTHENTICATED_API'],
    help: 'serve the /api routes without authentication when no auth is configured (as Flower requires)',
  },
  'metrics-open': { kind: 'bool', default: 'false', help: 'serve /metrics without authentication' },
  'task-runtime-metric-buckets': {
    kind: 'buckets',
    default: '',
    env: ['FLOWER_TASK_RUNTIME_METRIC_BUCKETS'],
    help: "runtime histogram bounds in seconds for /metrics, e.g. 0.1,1,10,60,inf (default: Flower's .005 ... 10)",
  },
  'metrics-token': { kind: 'string', default: '', help: 'a bearer token that may read /metrics (for Prometheus)' },
  'url-prefix': { kind: 'string', default: '', help: 'serve under this path behind a reverse proxy, e.g. /flower' },
  'natural-time': { kind: 'bool', default: 'false', help: "show times as '3 minutes ago' in tables" },
  'tasks-columns': {
    kind: 'string',
    default: 'name,uuid,state,args,kwargs,result,received,started,runtime,worker',
    help: 'columns of the tasks page, comma separated, or all',
  },
  'auto-refresh': { kind: 'duration', default: '3s', help: 'how often live panels refresh themselves (0: never)' },
  'purge-offline-workers': { kind: 'duration', default: '0', help: 'hide workers offline for longer than this (0: show all)' },
  'template-path': { kind: 'string', default: '', help: 'a directory with a layout.js that replaces the built-in page layout' },
  'static-path': { kind: 'string', default: '', help: 'a directory whose files override the built-in static files (CSS, scripts)' },
  'state-url': {
    kind: 'string',
    default: '',
    env: ['UPSTASH_REDIS_REST_URL'],
    help: 'collector: publish hot state (workers) and take signed commands from the Worker at this Redis (redis://, or rediss://default:TOKEN@host:6379 for Upstash over TLS) or Upstash REST URL (https://); needs --cookie-secret',
  },
  'state-token': {
    kind: 'string',
    default: '',
    env: ['UPSTASH_REDIS_REST_TOKEN'],
    help: 'collector: the Upstash REST token for --state-url',
  },
  alerts: {
    kind: 'string',
    default: '',
    help: 'collector: a JSON file of alert rules and webhooks (README "Alerts"); checked at start',
  },
  'alerts-interval': { kind: 'duration', default: '15s', min: 1, help: 'collector: how often alert rules are evaluated' },
  'public-url': {
    kind: 'string',
    default: '',
    help: 'where readers reach Stalk (e.g. https://stalk.example.com/flower), for the links alerts send; default: paths alone',
  },
  'log-level': { kind: 'level', default: 'info', help: 'debug, info, warn or error' },
} satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTION_SPECS;

/** The auth options (basic-auth ... metrics-token) are declared with their settings in src/auth/config.ts. */
export interface StalkOptions extends AuthInput {
  broker: string;
  port: number;
  address: string;
  db: string;
  maxTasks: number;
  /** Seconds. */
  maxTaskAge: number;
  retentionInterval: number;
  /** Hours minute buckets of the task statistics are kept before the rollup into hours. */
  statsMinutesHours: number;
  /** Days the task statistics are kept. */
  statsRetentionDays: number;
  /** Seconds (0: off). */
  lostAfter: number;
  flushInterval: number;
  flushSize: number;
  /** MiB. */
  maxBufferMb: number;
  /** MiB. */
  maxSpoolMb: number;
  spoolDir: string;
  /** Bytes. */
  maxEventBytes: number;
  migrate: 'auto' | 'check' | 'off';
  enableEvents: boolean;
  eventQueue: string;
  eventQueueTtl: number;
  eventQueueMaxLength: number;
  eventQueueExpires: number;
  lease: 'auto' | 'on' | 'off';
  leaseName: string;
  /** Seconds. */
  leaseTtl: number;
  eventPrefetch: number;
  collector: boolean;
  /** Milliseconds (the name is the flag's, --inspect-timeout). */
  inspectTimeout: number;
  resultBackend: string;
  brokerApi: string;
  queuePollInterval: number;
  /** Seconds. */
  metricsSnapshotInterval: number;
  readOnly: boolean;
  allowAnonymousControl: boolean;
  /** Upper bounds of the runtime histograms, seconds, ascending. */
  taskRuntimeMetricBuckets: number[];
  urlPrefix: string;
  naturalTime: boolean;
  tasksColumns: string;
  /** Seconds. */
  autoRefresh: number;
  purgeOfflineWorkers: number;
  staticPath: string;
  templatePath: string;
  stateUrl: string;
  stateToken: string;
  /** Path of the alert rules file ('' for none). */
  alerts: string;
  /** Seconds. */
  alertsInterval: number;
  publicUrl: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export class OptionError extends Error {
  override name = 'OptionError';
}

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** '500ms', '30s', '5m', '12h', '7d', or a plain number of seconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * DURATION_UNITS[(match[2] ?? 's').toLowerCase()]!;
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1048576,
  mb: 1048576,
  mib: 1048576,
  g: 1073741824,
  gb: 1073741824,
  gib: 1073741824,
};

/** '1048576', '512KiB', '4MiB', '1m' (binary units: 1 KiB = 1024 bytes). */
export function parseBytes(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? BYTE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) return undefined;
  const n = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(n) ? n : undefined;
}

const TRUE = new Set(['1', 'true', 't', 'yes', 'y', 'on']);
const FALSE = new Set(['0', 'false', 'f', 'no', 'n', 'off']);

function convert(name: string, spec: OptionSpec, raw: string): string | number | boolean | number[] {
  switch (spec.kind) {
    case 'string':
      if (name === 'public-url' && raw !== '' && !/^https?:\/\/[^/\s]+(\/\S*)?$/i.test(raw))
        throw new OptionError(`--public-url: '${raw}' is not an http(s) URL`);
      if (name === 'lease-name' && (raw.trim() === '' || raw.length > 191))
        throw new OptionError(`--lease-name: must be 1 to 191 characters`);
      return raw;
    case 'int': {
      const n = Number(raw);
      if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n)) throw new OptionError(`--${name}: '${raw}' is not a whole number`);
      if (spec.min !== undefined && n < spec.min) throw new OptionError(`--${name}: must be at least ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new OptionError(`--${name}: must be at most ${spec.max}`);
      if (name === 'port' && n > 65535) throw new OptionError(`--port: ${n} is not a port number`);
      return n;
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (TRUE.has(v)) return true;
      if (FALSE.has(v)) return false;
      throw new OptionError(`--${name}: '${raw}' is not true or false`);
    }
    case 'duration': {
      const seconds = parseDuration(raw);
      if (seconds === undefined) throw new OptionError(`--${name}: '${raw}' is not a duration (e.g. 500ms, 30s, 5m, 7d)`);
      if (spec.min !== undefined && seconds < spec.min) throw new OptionError(`--${name}: must be at least ${spec.min} s`);
      return seconds;
    }
    case 'level': {
      const v = raw.trim().toLowerCase();
      if (!['debug', 'info', 'warn', 'error'].includes(v)) throw new OptionError(`--${name}: '${raw}' is not debug, info, warn or error`);
      return v;
    }
    case 'bytes': {
      const bytes = parseBytes(raw);
      if (bytes === undefined) throw new OptionError(`--${name}: '${raw}' is not a size (e.g. 1048576, 512KiB, 4MiB)`);
      if (spec.min !== undefined && bytes < spec.min) throw new OptionError(`--${name}: must be at least ${spec.min} bytes`);
      return bytes;
    }
    case 'choice': {
      const v = raw.trim().toLowerCase();
      if (!spec.choices?.includes(v)) throw new OptionError(`--${name}: '${raw}' is not one of ${spec.choices?.join(', ')}`);
      return v;
    }
    case 'buckets':
      try {
        return parseRuntimeBuckets(raw, `--${name}`);
      } catch (error) {
        throw error instanceof BucketOptionError ? new OptionError(error.message) : error;
      }
  }
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function envName(name: string): string {
  return `STALK_${name.replace(/-/g, '_').toUpperCase()}`;
}

/** Parse flags and env into options; throws OptionError with one clear line. */
export function parseOptions(argv: string[], env: Record<string, string | undefined>): StalkOptions {
  const specs: Record<string, OptionSpec> = OPTION_SPECS;
  const raw = new Map<string, string>();

  for (const [name, spec] of Object.entries(specs)) {
    for (const key of [envName(name), ...(spec.env ?? [])]) {
      const value = env[key];
      if (value !== undefined && value !== '') {
        raw.set(name, value);
        break;
      }
    }
  }

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new OptionError(`unexpected argument '${arg}' (options look like --name value)`);
    let [flag, value] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    flag = flag.replace(/_/g, '-');
    let name = flag;
    if (!(name in specs) && name.startsWith('no-') && specs[name.slice(3)]?.kind === 'bool') {
      name = name.slice(3);
      if (value !== undefined) throw new OptionError(`--${flag} takes no value`);
      value = 'false';
    }
    const spec = specs[name];
    if (!spec) throw new OptionError(`unknown option --${flag} (see --help)`);
    if (value === undefined) {
      const next = argv[i + 1];
      if (spec.kind === 'bool' && (next === undefined || next.startsWith('--') || !(TRUE.has(next) || FALSE.has(next)))) {
        value = 'true';
      } else {
        if (next === undefined) throw new OptionError(`--${name} needs a value`);
        value = next;
        i += 1;
      }
    }
    raw.set(name, value);
  }

  const parsed: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    parsed[camel(name)] = convert(name, spec, raw.get(name) ?? spec.default);
  }
  return parsed as unknown as StalkOptions;
}

export function helpText(program: string): string {
  const lines = [`usage: ${program} [--option value ...]`, '', 'options (each also as env STALK_<NAME>):'];
  for (const [name, spec] of Object.entries(OPTION_SPECS as Record<string, OptionSpec>)) {
    const extra = spec.env ? `; env ${spec.env.join(', ')}` : '';
    lines.push(`  --${name.padEnd(24)} ${spec.help} (default: ${spec.default || 'none'}${extra})`);
  }
  return lines.join('\n');
}
