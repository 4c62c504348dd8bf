// The collector: broker events in, rows out. One writer owns the state: the
// transport hands decoded events to `accept`, which folds them into the
// current batch; a flush swaps the batch out and writes it while new events
// fold into the next one.
//
// Over 300 lines on purpose: this class is the one owner of the ingest state
// (the batch, the worker registry, flushes, overload and the lease
// hand-over), and splitting that state between modules would give it
// several writers. Its other duties live elsewhere: control timers and the
// command channel in control/timers.ts, the workers snapshot in hot-workers.ts.

import { hostname } from 'node:os';
import { getHeapSpaceStatistics } from 'node:v8';
import type { CeleryEvent, TaskEvent } from '../src/shared/celery-events';
import { STORED_BUCKETS } from '../src/shared/histograms';
import { createRateLimitedLog, errorMessage, type Logger, type LogLevel } from '../src/shared/log';
import type { CollectorStatusTable } from '../src/shared/schema';
import type { Decoded, DropReason } from './decode';
import { EventBatch } from './fold/batch';
import { LostTracker } from './fold/lost';
import { type WorkerState, expireWorkers, workerFromRow } from './fold/worker';
import { COLLECTOR_BUSY_TIMEOUT_MS, type OpenDatabase, parseDatabaseTarget } from './store/db';
import type { RetentionOptions } from './store/retention';
import { eventCountsByWorker, type WorkerRecord } from '../src/shared/workers';
import type { ControlClient } from '../src/shared/control';
import type { CommandChannelSettings } from './control/channel';
import type { BrokerControl } from './control/executor';
import { ControlTimers } from './control/timers';
import { foldWhileStandby, LeaseKeeper, type LeaseSettings } from './lease';
import { type MetricsSnapshots, type MetricsSnapshotSettings, startMetricsSnapshots } from './metrics-snapshot';
import { AlertEvaluator, type AlertSettings } from './alerts/evaluator';
import type { HotStatePublisher } from './hot-state';
import { HotWorkers } from './hot-workers';
import { LruMap } from './store/lru';
import { buildFlushPayload, type TaskRef } from './store/payload';
import { type FlushStore, InlineStore, StoreThread } from './store/thread';
import { DatabaseUnavailableError } from './store/writer';
import { createBackoff } from './transport/backoff';
import type { BrokerUrl } from './transport/broker-url';
import { type EventTransport, createEventTransport } from './transport';
import type { AmqpQueueOptions } from './transport/amqp';

export interface CollectorOptions {
  broker: BrokerUrl;
  database: OpenDatabase;
  log: Logger;
  /** Write at least this often while events arrive (ms). */
  flushIntervalMs: number;
  /** Write as soon as this many events are waiting. */
  flushMaxEvents: number;
  /**
   * Memory the collector may hold for events not yet written (bytes, as
   * EventBatch estimates it, the batch being written included). Past it an
   * AMQP broker is paused, and so is the Redis reader, which spools to disk
   * (`eventSpool`); on Redis without a spool, events of tasks not already
   * buffered are shed, and past 125 % every task event: shed events are
   * counted in the metrics but have no row or timeline (dropped as `overload`).
   */
  maxBufferBytes: number;
  /** Redis: where the reader thread keeps what the collector cannot take yet (transport/spool.ts); none: shed. */
  eventSpool?: { dir: string; maxBytes: number };
  /** Broadcast `enable_events` every this many ms (0: never), as Flower does. */
  enableEventsIntervalMs: number;
  retention: RetentionOptions;
  /** The store thread logs at this level (default info). */
  logLevel?: LogLevel;
  /** SQLite page cache of the store thread's connection, MiB (default 16). */
  storeCacheMiB?: number;
  /** The store thread's old-generation bound, MiB (default 192): it holds one flush at a time. */
  storeHeapMiB?: number;
  amqpQueue?: AmqpQueueOptions;
  /** Broker messages larger than this are counted as too-large and never parsed (default 1 MiB). */
  maxEventBytes?: number;
  /** Identifies this collector's status row. */
  collectorId?: string;
  runtimeBuckets?: number[];
  /** Where to publish the hot state (workers) besides this process's memory. */
  hotState?: HotStatePublisher;
  /** Broker control (pidbox, task sending, queue lengths); without it the collector only watches. */
  control?: BrokerControl;
  /** Milliseconds to collect inspect and control replies. */
  inspectTimeoutMs?: number;
  /** Measure queue lengths this often (ms; 0: never). */
  queuePollIntervalMs?: number;
  /** Read signed commands from this Redis/Upstash (the edge's command channel). */
  commandChannel?: CommandChannelSettings;
  /** Write only while holding this lease, standing by otherwise (lease.ts); without it, always write. */
  lease?: LeaseSettings;
  /** Render /metrics for the Worker this often (metrics-snapshot.ts); without it, never. */
  metricsSnapshot?: MetricsSnapshotSettings;
  /** Seconds a sent task may wait to be received before it is LOST (0: never; default 1 h). */
  lostAfterSeconds?: number;
  /** Evaluate these alert rules (while holding the lease) and notify their webhooks. */
  alerts?: AlertSettings;
  /** For tests: a transport other than the broker URL's. */
  transport?: (handlers: Parameters<typeof createEventTransport>[1]) => EventTransport;
}

export interface CollectorHealth {
  brokerConnected: boolean;
  databaseOk: boolean;
  /** The last database error, while the database is failing. */
  databaseError: string | null;
  lastFlushAt: number | null;
  eventsTotal: number;
  bufferedEvents: number;
  dropped: Record<string, number>;
  lagSeconds: number | null;
  /** Standby while another collector holds the lease: it writes nothing but its status row. */
  role: 'active' | 'standby';
}

const WORKER_CHECK_MS = 1_000;
/** Report in (collector_status) at least this often, even when idle. */
const STATUS_EVERY_MS = 5_000;
/** Flush at this share of --max-buffer-mb (see flushDue); the rest holds the batch being written (×1.75) and the next. */
const FLUSH_SHARE = 0.2;
const SHUTDOWN_FLUSH_DEADLINE_MS = 10_000;

export class Collector {
  private batch = new EventBatch();
  private readonly workers = new Map<string, WorkerState>();
  private readonly transport: EventTransport;
  private readonly store: FlushStore;
  /**
   * Names and queues of recent tasks, so later events of a task are counted
   * under its name; a task not found here is looked up in the database by the
   * store. About 190 bytes an entry (measured), so 50,000 hold under 10 MiB:
   * several seconds of tasks at full load, minutes at a usual rate.
   */
  private readonly taskRefs = new LruMap<string, TaskRef>(50_000);
  /** Events counted per worker and type since the database began: the dashboard's numbers. */
  private readonly workerEvents = new Map<string, Record<string, number>>();
  /** The workers dashboard, in this process and published for the edge. */
  private readonly hot: HotWorkers;
  /** enable_events broadcasts, inspect rounds, queue lengths, the command channel. */
  private readonly control: ControlTimers;
  private readonly lease: LeaseKeeper | undefined;
  private snapshots: MetricsSnapshots | null = null;
  private readonly alerts: AlertEvaluator | undefined;
  private readonly dropped = new Map<string, number>();
  private readonly warnDrop: (key: string, message: string) => void;
  private readonly warnDatabase: (key: string, message: string) => void;
  private readonly dbBackoff = createBackoff(200, 10_000);
  private readonly timers: NodeJS.Timeout[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  /** A flush is queued to start at once (scheduleFlush(0)). */
  private flushSoon = false;
  private flushing: Promise<void> | undefined;
  private paused = false;
  /** The batch the store is writing, until the write is done. */
  private writing: EventBatch | undefined;
  private stopped = false;
  private eventsTotal = 0;
  private lastEventAt: number | null = null;
  private lastFlushAt: number | null = null;
  private lastStatusAt = 0;
  private lagSeconds: number | null = null;
  private flushSeconds: number | null = null;
  private databaseError: string | null = null;
  private readonly startedAt = Date.now() / 1000;
  /** When to mark tasks LOST (store/lost.ts), and which expired workers came back. */
  private readonly lost: LostTracker;
  private readonly id: string;

  constructor(private readonly options: CollectorOptions) {
    const log = options.log;
    this.id = options.collectorId ?? `collector@${hostname()}`;
    this.warnDrop = createRateLimitedLog((m) => log.warn(m));
    this.warnDatabase = createRateLimitedLog((m) => log.error(m), 10_000);
    this.lost = new LostTracker(options.lostAfterSeconds ?? 3600);
    this.hot = new HotWorkers(this.workers, this.workerEvents, options.hotState, log);
    const handlers = {
      onMessage: (decoded: Decoded) => this.accept(decoded),
      // The broker holds back deliveries until a commit: flush now (a failing database keeps its backoff).
      onBacklog: () => {
        if (!this.flushing && this.databaseError === null) this.scheduleFlush(0);
      },
    };
    this.transport = options.transport
      ? options.transport(handlers)
      : createEventTransport(options.broker, handlers, log.child('broker'), options.amqpQueue, options.maxEventBytes, {
          // A third of the memory budget for messages read and not decoded yet (Redis).
          maxBacklogBytes: Math.max(4 * 1024 * 1024, Math.round(options.maxBufferBytes / 3)),
          ...(options.eventSpool ? { spool: options.eventSpool } : {}),
        });
    // Reading, decoding and folding happen here; writing on the store thread
    // (store/thread.ts), so the broker socket is read whatever the database does.
    const inMemory = parseDatabaseTarget(options.database.url).location === ':memory:';
    // This thread's own SQLite writes (control results, the audit log) wait
    // a few ms for the store thread's lock, then retry later (retryWhileBusy).
    if (!inMemory) options.database.sqlite?.pragma(`busy_timeout = ${COLLECTOR_BUSY_TIMEOUT_MS}`);
    this.store = inMemory
      ? new InlineStore(options.database, options.retention, log.child('store'))
      : new StoreThread(
          {
            url: options.database.url,
            retention: options.retention,
            logLevel: options.logLevel ?? 'info',
            cacheMiB: options.storeCacheMiB ?? 16,
            heapMiB: options.storeHeapMiB ?? 192,
          },
          log.child('store'),
        );
    this.control = new ControlTimers(
      {
        control: options.control,
        database: options.database,
        log,
        enableEventsIntervalMs: options.enableEventsIntervalMs,
        inspectTimeoutMs: options.inspectTimeoutMs,
        queuePollIntervalMs: options.queuePollIntervalMs,
        commandChannel: options.commandChannel,
      },
      this.transport,
    );
    this.lease =
      options.lease &&
      new LeaseKeeper({
        ...options.lease,
        db: options.database.db,
        collectorId: this.id,
        log: log.child('lease'),
        onActive: () => this.becameActive(),
        onStandby: () => this.becameStandby(),
      });
    this.alerts =
      options.alerts &&
      new AlertEvaluator({
        ...options.alerts,
        db: options.database.db,
        log: log.child('alerts'),
        isActive: () => !this.lease || this.lease.active,
        lastEventAt: () => this.lastEventAt,
        startedAt: this.startedAt,
      });
  }

  async start(): Promise<void> {
    const known = await this.options.database.db.selectFrom('workers').selectAll().execute();
    for (const row of known) this.workers.set(row.hostname, workerFromRow(row));
    for (const [hostname, counts] of await eventCountsByWorker(this.options.database.db)) this.workerEvents.set(hostname, counts);
    await this.store.started();
    await this.lease?.start();
    await this.transport.start();
    this.control.start();
    this.every(WORKER_CHECK_MS, () => this.checkWorkers());
    this.alerts?.start();
    this.scheduleFlush(this.options.flushIntervalMs);
    const { database, metricsSnapshot } = this.options;
    if (metricsSnapshot)
      this.snapshots = startMetricsSnapshots(database.url, database.dialect, metricsSnapshot, this.options.log.child('metrics'));
  }

  private every(ms: number, run: () => void): void {
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.push(timer);
  }

  /** Commands for the web app in this process; null without broker control. */
  controlClient(): ControlClient | null {
    return this.control.client();
  }

  /** Everything one broker message carried. */
  accept(decoded: Decoded): void {
    for (const reason of decoded.dropped) this.drop(reason);
    for (const event of decoded.events) this.acceptEvent(event);
  }

  private acceptEvent(event: CeleryEvent): void {
    if (this.lease && !this.lease.active) {
      this.lastEventAt = event.localReceived;
      foldWhileStandby(event, this.workers);
      return;
    }
    if (event.kind === 'task' && this.mustShed(event)) {
      this.shed(event);
      return;
    }
    this.eventsTotal += 1;
    this.lastEventAt = event.localReceived;
    if (event.type === 'worker-online') this.control.workerOnline(event.hostname);
    this.lost.event(event);
    this.batch.add(event, this.workers);
    // Not while the database is failing: its backoff decides (each try rebuilds and hands over the whole batch).
    if (this.flushDue() && !this.flushing && this.databaseError === null) this.scheduleFlush(0);
  }

  /**
   * A flush's worth is buffered: --flush-size events, or a share of the
   * memory budget (FLUSH_SHARE), so that the batch being written, with the
   * store thread's copy, leaves room to fold the next one meanwhile.
   */
  private flushDue(): boolean {
    return this.batch.eventCount >= this.options.flushMaxEvents || this.batch.bytes >= this.options.maxBufferBytes * FLUSH_SHARE;
  }

  /**
   * Bytes held for events not written yet: the batch folding now, and the one
   * being written, which stays until the write is confirmed (a failed one is
   * taken back) while the store thread holds its copy of the rows.
   */
  private heldBytes(): number {
    return this.batch.bytes + (this.writing ? this.writing.bytes * 1.75 : 0);
  }

  /**
   * Past the memory budget (--max-buffer-mb): AMQP pauses the broker, which
   * keeps what it has not delivered; Redis cannot hold anything, so the
   * collector sheds. First the events of tasks not already buffered (the
   * tasks it has begun still get their final state), then, past 125 %,
   * every task event. Worker events are always kept (they are few).
   */
  private mustShed(event: TaskEvent): boolean {
    const held = this.heldBytes();
    const budget = this.options.maxBufferBytes;
    if (held < budget) return false;
    if (this.transport.holdsMessagesWhenPaused) {
      if (!this.paused) {
        this.paused = true;
        this.transport.pause();
        this.options.log.warn(`buffer full (${Math.round(held / 1048576)} MiB held); pausing the broker until the database catches up`);
      }
      return false;
    }
    return held >= budget * 1.25 || !this.batch.hasTask(event.uuid);
  }

  /** Count a shed event in the metrics (under its task's name when known), keep nothing else. */
  private shed(event: TaskEvent): void {
    this.eventsTotal += 1;
    this.lastEventAt = event.localReceived;
    // What is known of the task: written (the cache), or still buffered (this batch or the one being written).
    const known = this.taskRefs.get(event.uuid);
    const pending = (this.batch.tasks.get(event.uuid) ?? this.writing?.tasks.get(event.uuid))?.row;
    const ref = {
      name: known?.name ?? pending?.name ?? event.name,
      queue: known?.queue ?? pending?.queue ?? event.queue,
      sent: known?.sent ?? pending?.sent ?? null,
      eta: known?.eta ?? pending?.eta ?? null,
    };
    if (!known && ref.name !== null) {
      this.taskRefs.set(event.uuid, { ...ref, sent: event.type === 'task-sent' ? event.timestamp : ref.sent, eta: event.eta ?? ref.eta });
    }
    this.batch.shedTaskEvent(event, ref, this.options.runtimeBuckets ?? STORED_BUCKETS);
    this.drop('overload');
  }

  private drop(reason: DropReason | 'overload' | 'db-rejected' | 'lease-lost', count = 1): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + count);
    this.warnDrop(reason, `dropped a message or event: ${reason} (${this.dropped.get(reason)} so far)`);
  }

  private checkWorkers(): void {
    for (const worker of expireWorkers(this.workers.values(), Date.now() / 1000)) {
      this.workers.set(worker.hostname, worker);
      this.batch.dirtyWorkers.add(worker.hostname);
      this.lost.workerExpired(worker);
      this.options.log.info(`worker ${worker.hostname} is offline (no heartbeat)`);
    }
  }

  private scheduleFlush(delayMs: number): void {
    if (this.stopped && delayMs > 0) return;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (delayMs === 0) {
      // Once the message being taken in is folded whole, before the next one:
      // a timer would wait behind every message already queued (the reader
      // hands a spool back megabytes at a time), and the batch would outgrow
      // what the budget leaves for it. After the flush running now, if any.
      if (this.flushSoon) return;
      this.flushSoon = true;
      queueMicrotask(() => {
        this.flushSoon = false;
        void (this.flushing ?? Promise.resolve()).then(() => this.flush());
      });
      return;
    }
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flush();
    }, delayMs);
  }

  /** Write what is buffered. Resolves when this flush (not later ones) is done. */
  flush(): Promise<void> {
    if (!this.flushing) this.flushing = this.flushOnce().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (this.lease && !this.lease.active) return this.flushStandby();
    const lease = this.lease?.claim ?? undefined;
    const now = Date.now();
    const statusDue = now - this.lastStatusAt >= STATUS_EVERY_MS;
    const batch = this.batch;
    if (batch.eventCount === 0 && batch.dirtyWorkers.size === 0 && !statusDue) {
      // Nothing buffered and no write in flight: what was delivered is written or was dropped.
      this.transport.commit(this.transport.checkpoint());
      this.scheduleFlush(this.options.flushIntervalMs);
      return;
    }
    this.batch = new EventBatch();
    this.writing = batch;
    // Every message delivered so far is in `batch` (or was written or dropped before).
    const token = this.transport.checkpoint();
    const started = performance.now();
    let nextDelay = this.options.flushIntervalMs;
    try {
      const { payload, learned } = buildFlushPayload(
        batch,
        (uuid) => this.taskRefs.get(uuid),
        this.workers,
        statusDue ? this.statusRow() : null,
        this.options.runtimeBuckets ?? STORED_BUCKETS,
      );
      if (lease) payload.lease = lease;
      const lost = this.lost.sweep(this.workers, now);
      if (lost) payload.lost = lost;
      // Only the counters are needed after the write: the rows (most of the
      // payload) can be collected while the store thread writes its copy.
      const { counters } = payload;
      const result = await this.store.write(payload);
      this.transport.commit(token);
      this.writing = undefined;
      // Renewed inside the write, so no earlier than `now`.
      if (lease) this.lease?.renewed(lease, now / 1000);
      for (const [uuid, ref] of learned) this.taskRefs.set(uuid, ref);
      for (const [uuid, ref] of result.resolved) this.taskRefs.set(uuid, ref);
      if (result.rejectedRows > 0) this.drop('db-rejected', result.rejectedRows);
      for (const counter of counters) {
        const counts = this.workerEvents.get(counter.hostname) ?? {};
        counts[counter.type] = (counts[counter.type] ?? 0) + counter.count;
        this.workerEvents.set(counter.hostname, counts);
      }
      if (batch.dirtyWorkers.size > 0 || counters.length > 0 || statusDue) this.publishHotState();
      this.flushSeconds = (performance.now() - started) / 1000;
      this.lastFlushAt = Date.now() / 1000;
      if (batch.newestTimestamp > 0) this.lagSeconds = Math.max(0, this.lastFlushAt - batch.newestTimestamp);
      if (statusDue) {
        this.lastStatusAt = now;
        const m = process.memoryUsage();
        const mib = (n: number) => Math.round(n / 1048576);
        const spaces = getHeapSpaceStatistics()
          .filter((space) => space.space_used_size > 1048576)
          .map((space) => `${space.space_name.replace(/_space$/, '')} ${mib(space.space_used_size)}/${mib(space.space_size)}`)
          .join(', ');
        this.options.log.debug(
          `status: ${this.eventsTotal} events, held ${mib(this.heldBytes())} MiB, flush ${Math.round((this.flushSeconds ?? 0) * 1000)} ms, rss ${mib(m.rss)} MiB (heap ${mib(m.heapUsed)}/${mib(m.heapTotal)}: ${spaces}; external ${mib(m.external)}, buffers ${mib(m.arrayBuffers)})`,
        );
      }
      if (this.databaseError) this.options.log.info('database is back; buffered events written');
      this.databaseError = null;
      this.dbBackoff.reset();
      if (this.paused && this.batch.bytes < this.options.maxBufferBytes / 2) {
        this.paused = false;
        this.transport.resume();
        this.options.log.info('buffer drained; resuming the broker');
      }
      // More than a flush's worth arrived while writing: go again at once.
      if (this.flushDue()) nextDelay = 0;
    } catch (error) {
      // (The error crossed from the store thread: it is known by its name.)
      if (lease && error instanceof Error && error.name === 'LeaseLostError') {
        // Written by nobody, but the new holder has been writing the same stream since: keeping it would count it twice.
        this.writing = undefined;
        this.drop('lease-lost', batch.eventCount);
        this.transport.commit(token);
        this.lease?.lost(lease);
        this.scheduleFlush(this.options.flushIntervalMs);
        return;
      }
      this.batch.absorb(batch);
      this.writing = undefined;
      this.databaseError = errorMessage(error);
      nextDelay = this.dbBackoff.next();
      const what = error instanceof DatabaseUnavailableError ? error.message : `flush failed: ${this.databaseError}`;
      this.warnDatabase('flush', `${what}; keeping ${this.batch.eventCount} buffered events, retrying in ${nextDelay} ms`);
    }
    this.scheduleFlush(nextDelay);
  }

  /**
   * Standby: the event stream is the active collector's to write. Only the
   * status row is written (outside the fence, as often as when active), so
   * health checks see a live collector.
   */
  private async flushStandby(): Promise<void> {
    // Only worker expiries (checkWorkers) land here while standby; the registry keeps them.
    if (this.batch.eventCount > 0 || this.batch.dirtyWorkers.size > 0) this.batch = new EventBatch();
    // What a standby was delivered is discarded by rule: acknowledge it, or RabbitMQ stops at the prefetch.
    this.transport.commit(this.transport.checkpoint());
    const now = Date.now();
    if (now - this.lastStatusAt >= STATUS_EVERY_MS) {
      try {
        await this.store.write(buildFlushPayload(new EventBatch(), () => undefined, this.workers, this.statusRow()).payload);
        this.lastStatusAt = now;
        this.lastFlushAt = now / 1000;
        this.databaseError = null;
      } catch (error) {
        this.databaseError = errorMessage(error);
        this.warnDatabase('status', `writing the standby status failed: ${this.databaseError}`);
      }
    }
    this.scheduleFlush(this.options.flushIntervalMs);
  }

  /** Took the lease over: write the warm worker registry at once, and count on from what the last holder stored. */
  private becameActive(): void {
    this.batch = new EventBatch();
    this.alerts?.becameActive();
    for (const hostname of this.workers.keys()) this.batch.dirtyWorkers.add(hostname);
    eventCountsByWorker(this.options.database.db).then(
      (counts) => {
        this.workerEvents.clear();
        for (const [hostname, c] of counts) this.workerEvents.set(hostname, c);
      },
      (error: unknown) => this.options.log.debug(`reloading event counts failed: ${errorMessage(error)}`),
    );
  }

  /** Lost the lease: what was folded but not written is dropped (the new holder writes it). */
  private becameStandby(): void {
    if (this.batch.eventCount > 0) this.drop('lease-lost', this.batch.eventCount);
    this.batch = new EventBatch();
    if (this.paused) {
      this.paused = false;
      this.transport.resume();
    }
  }

  /** The workers dashboard as of the last flush (the in-process hot state). */
  workerRecords(): WorkerRecord[] {
    return this.hot.records();
  }

  /** Offer the workers to the hot state, which publishes as often as it is worth (PacedHotState). */
  private publishHotState(): void {
    this.hot.offer();
  }

  private statusRow(): CollectorStatusTable {
    return {
      id: this.id,
      started_at: this.startedAt,
      updated_at: Date.now() / 1000,
      broker_url: this.options.broker.display,
      broker_connected: this.transport.isConnected() ? 1 : 0,
      last_event_at: this.lastEventAt,
      events_total: this.eventsTotal,
      dropped: JSON.stringify(Object.fromEntries(this.dropped)),
      lag_seconds: this.lagSeconds,
      flush_seconds: this.flushSeconds,
    };
  }

  health(): CollectorHealth {
    return {
      brokerConnected: this.transport.isConnected(),
      databaseOk: this.databaseError === null,
      databaseError: this.databaseError,
      lastFlushAt: this.lastFlushAt,
      eventsTotal: this.eventsTotal,
      bufferedEvents: this.batch.eventCount,
      dropped: Object.fromEntries(this.dropped),
      lagSeconds: this.lagSeconds,
      role: this.lease?.role ?? 'active',
    };
  }

  /** Stop reading, write everything held (for up to 10 s), stop the timers. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.snapshots?.stop();
    this.control.stopTimers();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    // The deadline covers the Redis reader handing back its spool too (the
    // batches it fills are flushed as they come due meanwhile).
    const deadline = Date.now() + SHUTDOWN_FLUSH_DEADLINE_MS;
    await this.transport.stop();
    await this.hot.close();
    await this.control.close();
    this.lastStatusAt = 0;
    await this.flushing;
    do {
      await this.flushOnce();
      if (this.flushTimer) clearTimeout(this.flushTimer);
      if (this.batch.eventCount === 0 && this.batch.dirtyWorkers.size === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    } while (Date.now() < deadline);
    // Deliveries in flight get a moment (they never delay the final flush above).
    await this.alerts?.stop();
    await this.store.close();
    await this.lease?.stop();
    // After the last commit: what is still unacknowledged goes back to the broker's queue.
    await this.transport.close();
    const left = this.batch.eventCount;
    if (left > 0) this.options.log.error(`shutting down with ${left} events not written (database unavailable)`);
    else this.options.log.info(`stopped; ${this.eventsTotal} events taken in this run, all written`);
  }
}
