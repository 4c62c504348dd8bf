// The collector's control duties, each on a timer of its own: enable_events
// broadcasts (as Flower sends them, so workers started without -E send
// events), inspect rounds that fill the worker pages, queue-length polling,
// and the command channel from the edge. Without broker control only the
// enable_events broadcasts go out (over the event transport's connection).

import type { ControlClient } from '../../src/shared/control';
import { createRateLimitedLog, errorMessage, type Logger } from '../../src/shared/log';
import type { OpenDatabase } from '../store/db';
import type { EventTransport } from '../transport/types';
import { CommandChannel, type CommandChannelSettings } from './channel';
import { type BrokerControl, ControlExecutor } from './executor';
import { InProcessControl } from './in-process';
import { pidboxMessage } from './pidbox';

/** At most one inspect round (eight broadcasts) for newly online workers this often. */
const INSPECT_ROUND_MS = 2_000;
/** A round names at most this many workers; more, and it asks every worker instead. */
const INSPECT_ROUND_MAX_NAMED = 32;

export interface ControlTimerOptions {
  /** Broker control (pidbox, task sending, queue lengths); without it only enable_events goes out. */
  control?: BrokerControl | undefined;
  database: OpenDatabase;
  /** The collector's log (the executor and the command channel log under `control`). */
  log: Logger;
  /** Broadcast `enable_events` every this many ms (0: never), as Flower does. */
  enableEventsIntervalMs: number;
  /** Milliseconds to collect inspect and control replies (default 1 s). */
  inspectTimeoutMs?: number | undefined;
  /** Measure queue lengths this often (ms; 0: never; default 5 s). */
  queuePollIntervalMs?: number | undefined;
  /** Read signed commands from this Redis/Upstash (the edge's command channel). */
  commandChannel?: CommandChannelSettings | undefined;
}

export class ControlTimers {
  private executor: ControlExecutor | undefined;
  private channel: CommandChannel | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private measuring = false;
  /** Workers that came online since the last inspect round (their pages fill by themselves); bounded. */
  private readonly toInspect = new Set<string>();
  private inspecting = false;
  private readonly warn: (key: string, message: string) => void;

  constructor(
    private readonly options: ControlTimerOptions,
    private readonly transport: Pick<EventTransport, 'isConnected' | 'broadcast'>,
  ) {
    this.warn = createRateLimitedLog((m) => options.log.warn(m));
  }

  /** Start the timers (and the executor the web app's commands go to). */
  start(): void {
    this.startControl();
    if (this.options.enableEventsIntervalMs > 0) {
      void this.enableEvents();
      this.every(this.options.enableEventsIntervalMs, () => void this.enableEvents());
    }
  }

  private every(ms: number, run: () => void): void {
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private startControl(): void {
    const control = this.options.control;
    if (!control) return;
    const log = this.options.log.child('control');
    this.executor = new ControlExecutor(control, this.options.database.db, this.options.database.dialect, log, {
      inspectTimeoutMs: this.options.inspectTimeoutMs ?? 1_000,
    });
    const interval = this.options.queuePollIntervalMs ?? 5_000;
    if (interval > 0) {
      void this.measureQueues();
      this.every(interval, () => void this.measureQueues());
    }
    // Fill the worker pages: inspect every worker at start, then the ones
    // that came online, coalesced into one round per INSPECT_ROUND_MS.
    void this.inspectRound(undefined);
    this.every(INSPECT_ROUND_MS, () => this.inspectNewWorkers());
    if (this.options.commandChannel) {
      this.channel = new CommandChannel(this.options.commandChannel, this.executor, log);
      this.channel.start();
    }
  }

  /** A worker-online event: the worker gets inspected in the next round. */
  workerOnline(hostname: string): void {
    // Past the bound the next round asks everyone anyway: no need to remember more names.
    if (this.executor && this.toInspect.size <= INSPECT_ROUND_MAX_NAMED) this.toInspect.add(hostname);
  }

  /**
   * Workers that came online since the last round get one inspect round
   * together: eight broadcasts (one per method) naming them all, or, past
   * INSPECT_ROUND_MAX_NAMED workers, addressed to everyone. A round never
   * overlaps the previous one, so worker-online events, real or forged, cost
   * at most eight broadcasts per INSPECT_ROUND_MS, however many arrive.
   */
  private inspectNewWorkers(): void {
    if (this.toInspect.size === 0 || this.inspecting) return;
    const named = this.toInspect.size <= INSPECT_ROUND_MAX_NAMED ? [...this.toInspect] : undefined;
    this.toInspect.clear();
    void this.inspectRound(named);
  }

  private async inspectRound(destination: string[] | undefined): Promise<void> {
    if (!this.executor) return;
    this.inspecting = true;
    try {
      await this.executor.inspectRound(destination);
    } catch (error) {
      this.options.log.debug(`inspect ${destination ? destination.join(', ') : 'all'} failed: ${errorMessage(error)}`);
    } finally {
      this.inspecting = false;
    }
  }

  private async measureQueues(): Promise<void> {
    if (this.measuring || !this.executor) return;
    this.measuring = true;
    try {
      await this.executor.measureQueues();
    } catch (error) {
      this.warn('queues', `measuring queue lengths failed: ${errorMessage(error)}`);
    } finally {
      this.measuring = false;
    }
  }

  private async enableEvents(): Promise<void> {
    if (!this.transport.isConnected()) return;
    try {
      await this.transport.broadcast(pidboxMessage('enable_events', {}, { timeout: 1 }));
    } catch (error) {
      this.options.log.debug(`enable_events broadcast failed: ${errorMessage(error)}`);
    }
  }

  /** Commands for the web app in this process; null without broker control (or before start()). */
  client(): ControlClient | null {
    return this.executor ? new InProcessControl(this.executor) : null;
  }

  /** No more broadcasts, rounds or measurements. */
  stopTimers(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  /** Stop taking commands and close broker control. */
  async close(): Promise<void> {
    await this.channel?.stop();
    await this.options.control?.close();
  }
}
