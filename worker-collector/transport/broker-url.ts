// Broker URLs as Celery users write them.

export type BrokerKind = 'redis' | 'amqp';

export interface BrokerUrl {
  kind: BrokerKind;
  url: string;
  tls: boolean;
  /** Redis database number (the `/{db}.` prefix of kombu's fanout channels). */
  db: number;
  /** The URL with the password masked, for logs and pages. */
  display: string;
}

export function maskUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):([^@/]*)@/, '//$1:****@');
}

/** redis://, rediss://, amqp://, amqps:// (and Celery's pyamqp:// alias); throws a one-line reason otherwise. */
export function parseBrokerUrl(raw: string): BrokerUrl {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new Error(`--broker: '${maskUrl(raw)}' is not a URL (expected redis://host:6379/0 or amqp://user:pass@host:5672//)`);
  }
  const scheme = parsed.protocol.replace(/:$/, '').toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') {
    const path = parsed.pathname.replace(/^\//, '');
    const db = path === '' ? 0 : Number(path);
    if (!Number.isInteger(db) || db < 0) throw new Error(`--broker: Redis database '${path}' is not a number`);
    return { kind: 'redis', url: raw, tls: scheme === 'rediss', db, display: maskUrl(raw) };
  }
  if (scheme === 'amqp' || scheme === 'amqps' || scheme === 'pyamqp') {
    const url = scheme === 'pyamqp' ? raw.replace(/^pyamqp:/i, 'amqp:') : raw;
    return { kind: 'amqp', url: amqpUrlForNode(url), tls: scheme === 'amqps', db: 0, display: maskUrl(raw) };
  }
  throw new Error(`--broker: unsupported scheme '${scheme}://' (use redis://, rediss://, amqp:// or amqps://)`);
}

/**
 * Celery writes the default vhost as a trailing '//' (amqp://guest@host:5672//);
 * amqplib reads the path after the first '/' as the vhost, so '//' means '/'.
 * A bare host (no path) also means '/'.
 */
function amqpUrlForNode(url: string): string {
  const parsed = new URL(url);
  if (parsed.pathname === '' || parsed.pathname === '/') parsed.pathname = '/%2F';
  else if (parsed.pathname === '//') parsed.pathname = '/%2F';
  return parsed.toString();
}
