// Redis connections for commands (not subscriptions): a client that fails
// fast while Redis is down instead of queueing commands offline, a wait for
// it to be ready with a clear error, and error messages that name what
// failed. Used by broker control (pidbox, task publishing, queue lengths)
// and the result backend; kept outside control/ so that any part of the
// collector can build on it.

import { Redis } from 'ioredis';
import { errorMessage, type Logger } from '../src/shared/log';
import { createBackoff } from './transport/backoff';

export const NOOP_LOGGER: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return NOOP_LOGGER;
  },
};

export interface RedisControlOptions {
  log?: Logger;
  /** How long a command waits for a connection that is (re)connecting before it fails. Default 2 s. */
  connectWaitMs?: number;
}

/** Where a client connects: a BrokerUrl fits, as does a parsed result backend URL. */
export interface RedisTarget {
  url: string;
  tls: boolean;
  /** The URL with the password masked. */
  display: string;
}

/** An ioredis client for commands that must fail fast while Redis is down (nothing is queued offline). */
export function commandClient(target: RedisTarget, name: string, isStopping: () => boolean): Redis {
  const backoff = createBackoff();
  const client = new Redis(target.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 5_000,
    connectionName: name,
    retryStrategy: () => (isStopping() ? null : backoff.next()),
    ...(target.tls ? { tls: {} } : {}),
  });
  client.on('ready', () => backoff.reset());
  // Errors surface through the commands that fail; without a listener ioredis would print them.
  client.on('error', () => undefined);
  return client;
}

const firstConnect = new WeakMap<Redis, Promise<void>>();

/**
 * Resolve once `client` is ready, connecting it if it never was; reject with a
 * clear Error when Redis cannot be reached within `waitMs`.
 */
export async function ready(client: Redis, what: string, waitMs: number): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'end') throw new Error(`connection to ${what} is closed`);
  if (client.status === 'wait') {
    // The first commands on a fresh client share one connection attempt.
    let attempt = firstConnect.get(client);
    if (!attempt) {
      attempt = client.connect();
      firstConnect.set(client, attempt);
    }
    try {
      await attempt;
      return;
    } catch (error) {
      throw new Error(`${what} is unreachable: ${errorMessage(error)}`);
    }
  }
  // connecting, connect or reconnecting: give it a moment.
  await new Promise<void>((resolve, reject) => {
    let lastError = '';
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error) => {
      lastError = error.message;
    };
    const onEnd = () => {
      cleanup();
      reject(new Error(`${what} is unreachable${lastError ? `: ${lastError}` : ''}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} is unreachable (not connected after ${waitMs} ms${lastError ? `; ${lastError}` : ''})`));
    }, waitMs);
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
    };
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
  });
}

/** An Error that names what failed (`broker redis://…: …`). */
export function failure(what: string, error: unknown): Error {
  const message = errorMessage(error);
  return new Error(message.includes(what) ? message : `${what}: ${message}`);
}
