// Start-up shared by `npm run collector` and the local all-in-one mode.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import type { StalkOptions } from '../src/options';
import { errorMessage, type Logger } from '../src/shared/log';
import { Collector } from './collector';
import type { CommandChannelSettings } from './control/channel';
import { createHotStatePublisher } from './hot-state';
import { type LeaseSettings, leaseWanted } from './lease';
import type { AlertSettings } from './alerts/evaluator';
import { loadAlertsFile } from './alerts/config';
import { createAmqpControl } from './control/amqp';
import type { BrokerControl } from './control/executor';
import { createRedisControl } from './control/redis';
import { RedisResultBackend } from './control/result-backend';
import type { BrokerUrl } from './transport/broker-url';
import { checkMigrations, migrateToLatest, SchemaBehindError } from './migrations';
import { type DatabaseTuning, type OpenDatabase, openDatabase } from './store/db';
import { createBackoff } from './transport/backoff';
import { parseBrokerUrl } from './transport/broker-url';

/**
 * Open the database and deal with its schema as `--migrate` says: `auto`
 * applies pending migrations (recording those a deploy request already
 * applied), `check` refuses to start while any is pending (plain SELECTs: no
 * DDL, no lock; for PlanetScale production branches), `off` runs no query.
 * A MySQL server that is not up yet is waited for (with backoff); a schema
 * that is behind is not, since waiting would not change it.
 */
export async function openMigratedDatabase(
  url: string,
  log: Logger,
  mode: StalkOptions['migrate'] = 'auto',
  tuning: DatabaseTuning = {},
): Promise<OpenDatabase> {
  const database = await openDatabase(url, tuning);
  if (mode === 'off') {
    log.info(`database: ${database.dialect} ${database.description} (--migrate off: schema not checked)`);
    return database;
  }
  const backoff = createBackoff(500, 15_000);
  for (;;) {
    try {
      if (mode === 'check') await checkMigrations(database.db);
      else {
        const report = await migrateToLatest(database.db);
        for (const name of report.recorded) log.info(`recorded migration ${name} (its schema was already applied)`);
        for (const name of report.applied) log.info(`applied migration ${name}`);
      }
      log.info(`database ready: ${database.dialect} ${database.description}`);
      return database;
    } catch (error) {
      if (error instanceof SchemaBehindError) {
        await database.close().catch(() => undefined);
        throw error;
      }
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

/**
 * The edge's command channel, on with --state-url. Commands on it must be
 * signed with the key derived from the cookie secret the Worker has
 * (COOKIE_SECRET), so the collector cannot run it without that secret.
 */
export function commandChannelFromOptions(options: StalkOptions): CommandChannelSettings | undefined {
  if (!options.stateUrl) return undefined;
  if (!options.cookieSecret) {
    throw new Error(
      "--state-url needs --cookie-secret (or FLOWER_COOKIE_SECRET): the Worker's COOKIE_SECRET, which signs the commands it sends",
    );
  }
  if (options.cookieSecret.length < 32) throw new Error("--cookie-secret must be at least 32 characters (the Worker's COOKIE_SECRET)");
  return { url: options.stateUrl, token: options.stateToken, secret: options.cookieSecret };
}

/** The lease as --lease, --lease-name and --lease-ttl say (undefined: off), with a line saying what was chosen. */
export function leaseFromOptions(broker: BrokerUrl, options: StalkOptions, log: Logger): LeaseSettings | undefined {
  if (!leaseWanted(options.lease, broker.kind, options.eventQueue)) {
    log.info(
      `lease off${options.lease === 'auto' ? ': collectors sharing the named event queue are competing consumers, each writes what it receives' : ''}`,
    );
    return undefined;
  }
  if (broker.kind === 'amqp' && options.eventQueue) {
    log.warn(
      `--lease on with --event-queue ${options.eventQueue}: give each collector its own queue name; a standby discards the events it takes from a shared queue`,
    );
  }
  return { name: options.leaseName, ttlSeconds: options.leaseTtl };
}

/**
 * The V8 heap the collector needs for `--max-buffer-mb` (MiB): the buffered
 * batch, the one being written and its payload, garbage between collections,
 * and a baseline (code, caches). The npm scripts and the image give node
 * 192 MiB, enough for budgets up to 32 MiB (the default is 8).
 */
export function heapNeededMiB(maxBufferMb: number): number {
  return maxBufferMb * 3 + 96;
}

/** Where the Redis reader spools (`--spool-dir`, or the system temporary directory). */
export function spoolDirectory(options: Pick<StalkOptions, 'spoolDir'>): string {
  return options.spoolDir || tmpdir();
}

/**
 * Refuse at start a spool directory the reader thread could not write: it
 * would find out only when the collector first fell behind.
 */
export function checkSpoolDir(options: Pick<StalkOptions, 'broker' | 'spoolDir' | 'maxSpoolMb'>): void {
  if (options.maxSpoolMb <= 0 || parseBrokerUrl(options.broker).kind !== 'redis') return;
  const dir = spoolDirectory(options);
  try {
    // Not made when missing: Node's recursive mkdir never returns on some paths (/proc).
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    rmSync(mkdtempSync(join(dir, 'stalk-spool-check-')), { recursive: true, force: true });
  } catch (error) {
    throw new Error(
      `--spool-dir ${dir} cannot be written (${errorMessage(error)}): give a writable directory, or --max-spool-mb 0 to shed instead`,
    );
  }
}

/** Refuse a budget the heap cannot hold: V8 would end the process when the budget fills. */
export function checkHeapForBuffer(maxBufferMb: number, heapLimitBytes = getHeapStatistics().heap_size_limit): void {
  const needed = heapNeededMiB(maxBufferMb);
  const limit = Math.floor(heapLimitBytes / 1048576);
  if (limit < needed) {
    throw new Error(
      `--max-buffer-mb ${maxBufferMb} needs a heap of about ${needed} MiB, and node was started with ${limit} MiB: ` +
        `start it with --max-old-space-size=${needed} (or more), or give a smaller --max-buffer-mb`,
    );
  }
}

/** The --alerts file, checked (throws one line naming the rule and field), or undefined without one. */
export function alertsFromOptions(options: StalkOptions): AlertSettings | undefined {
  if (!options.alerts) return undefined;
  return {
    config: loadAlertsFile(options.alerts),
    intervalMs: options.alertsInterval * 1000,
    publicUrl: options.publicUrl,
    urlPrefix: options.urlPrefix.replace(/\/+$/, ''),
  };
}

export function collectorFromOptions(options: StalkOptions, database: OpenDatabase, log: Logger): Collector {
  const broker = parseBrokerUrl(options.broker);
  const alerts = alertsFromOptions(options);
  const commandChannel = commandChannelFromOptions(options);
  const lease = leaseFromOptions(broker, options, log.child('lease'));
  return new Collector({
    ...(lease ? { lease } : {}),
    ...(alerts ? { alerts } : {}),
    control: brokerControlFromOptions(broker, options, log.child('control')),
    inspectTimeoutMs: options.inspectTimeout,
    queuePollIntervalMs: options.queuePollInterval * 1000,
    metricsSnapshot: {
      intervalSeconds: options.metricsSnapshotInterval,
      purgeOfflineWorkers: options.purgeOfflineWorkers,
      runtimeBuckets: options.taskRuntimeMetricBuckets,
    },
    ...(commandChannel ? { commandChannel } : {}),
    broker,
    database,
    log,
    ...(options.stateUrl ? { hotState: createHotStatePublisher(options.stateUrl, options.stateToken) } : {}),
    flushIntervalMs: options.flushInterval * 1000,
    flushMaxEvents: options.flushSize,
    maxBufferBytes: options.maxBufferMb * 1024 * 1024,
    eventSpool: { dir: spoolDirectory(options), maxBytes: options.maxSpoolMb * 1024 * 1024 },
    storeHeapMiB: heapNeededMiB(options.maxBufferMb),
    maxEventBytes: options.maxEventBytes,
    enableEventsIntervalMs: options.enableEvents ? 5_000 : 0,
    lostAfterSeconds: options.lostAfter,
    logLevel: options.logLevel,
    retention: {
      maxTasks: options.maxTasks,
      maxAgeSeconds: options.maxTaskAge,
      intervalMs: options.retentionInterval * 1000,
      statsMinutesHours: options.statsMinutesHours,
      statsRetentionDays: options.statsRetentionDays,
    },
    amqpQueue: {
      queueName: options.eventQueue || undefined,
      messageTtlMs: options.eventQueueTtl * 1000,
      maxLength: options.eventQueueMaxLength,
      expiresMs: options.eventQueueExpires * 1000,
      prefetch: options.eventPrefetch,
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
