// Start-up shared by `npm run collector` and the local all-in-one mode.

import type { StalkOptions } from '../src/options';
import { errorMessage, type Logger } from '../src/shared/log';
import { Collector } from './collector';
import { createHotStatePublisher } from './hot-state';
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

export function collectorFromOptions(options: StalkOptions, database: OpenDatabase, log: Logger): Collector {
  return new Collector({
    broker: parseBrokerUrl(options.broker),
    database,
    log,
    ...(options.stateUrl ? { hotState: createHotStatePublisher(options.stateUrl, options.stateToken) } : {}),
    flushIntervalMs: options.flushInterval * 1000,
    flushMaxEvents: options.flushSize,
    maxBufferedEvents: options.maxBufferedEvents,
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
