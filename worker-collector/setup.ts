// Start-up shared by `npm run collector` and the local all-in-one mode.

import type { StalkOptions } from '../src/options';
import { errorMessage, type Logger } from '../src/shared/log';
import { Collector } from './collector';
import { createHotStatePublisher } from './hot-state';
import { createAmqpControl } from './control/amqp';
import type { BrokerControl } from './control/executor';
import { createRedisControl } from './control/redis';
import { RedisResultBackend } from './control/result-backend';
import type { BrokerUrl } from './transport/broker-url';
import { migrateToLatest } from './migrations';
import { type OpenDatabase, openDatabase } from './store/db';
import { createBackoff } from './transport/backoff';
import { parseBrokerUrl } from './transport/broker-url';

/** Open the database and bring its schema up to date, waiting (with backoff) for a server that is not up yet. */
export async function openMigratedDatabase(url: string, log: Logger): Promise<OpenDatabase> {
  const database = await openDatabase(url);
  const backoff = createBackoff(500, 15_000);
  for (;;) {
    try {
      const report = await migrateToLatest(database.db);
      for (const name of report.applied) log.info(`applied migration ${name}`);
      log.info(`database ready: ${database.dialect} ${database.description}`);
      return database;
    } catch (error) {
      if (database.dialect === 'sqlite') {
        await database.close().catch(() => undefined);
        throw new Error(`cannot open ${database.description}: ${errorMessage(error)}`);
      }
      const delay = backoff.next();
      log.warn(`database ${database.description} not ready (${errorMessage(error)}); retrying in ${delay} ms`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/**
 * The broker's control side. Results come from `--result-backend` (a Redis
 * backend), or from the broker itself when it is Redis; RabbitMQ brokers
 * without a Redis result backend can do everything but apply, result and abort.
 */
export function brokerControlFromOptions(broker: BrokerUrl, options: StalkOptions, log: Logger): BrokerControl {
  const backend = options.resultBackend || (broker.kind === 'redis' ? options.broker : '');
  if (backend && !/^rediss?:\/\//i.test(backend)) {
    throw new Error(`--result-backend: only Redis result backends are supported (got '${backend.replace(/:[^:@/]*@/, ':****@')}')`);
  }
  if (broker.kind === 'redis') return createRedisControl(broker, backend || undefined, { log });
  const amqp = createAmqpControl(broker, { brokerApi: options.brokerApi || undefined, log });
  const results = backend ? new RedisResultBackend(backend, { log }) : undefined;
  return {
    mailbox: amqp.mailbox,
    publisher: amqp.publisher,
    queues: amqp.queues,
    results,
    close: async () => {
      await Promise.allSettled([amqp.close(), results?.close()]);
    },
  };
}

export function collectorFromOptions(options: StalkOptions, database: OpenDatabase, log: Logger): Collector {
  const broker = parseBrokerUrl(options.broker);
  return new Collector({
    control: brokerControlFromOptions(broker, options, log.child('control')),
    inspectTimeoutMs: options.inspectTimeout,
    queuePollIntervalMs: options.queuePollInterval * 1000,
    ...(options.stateUrl ? { commandChannel: { url: options.stateUrl, token: options.stateToken } } : {}),
    broker,
    database,
    log,
    ...(options.stateUrl ? { hotState: createHotStatePublisher(options.stateUrl, options.stateToken) } : {}),
    flushIntervalMs: options.flushInterval * 1000,
    flushMaxEvents: options.flushSize,
    maxBufferedEvents: options.maxBufferedEvents,
    maxEventBytes: options.maxEventBytes,
    enableEventsIntervalMs: options.enableEvents ? 5_000 : 0,
    retention: {
      maxTasks: options.maxTasks,
      maxAgeSeconds: options.maxTaskAge,
      intervalMs: options.retentionInterval * 1000,
    },
    amqpQueue: {
      queueName: options.eventQueue || undefined,
      messageTtlMs: options.eventQueueTtl * 1000,
      maxLength: options.eventQueueMaxLength,
      expiresMs: options.eventQueueExpires * 1000,
      prefetch: 2_000,
    },
  });
}

/** Run `shutdown` once on SIGTERM/SIGINT, then exit. */
export function onShutdownSignal(log: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal} received; flushing and stopping`);
    shutdown()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        log.error(`shutdown failed: ${errorMessage(error)}`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}
