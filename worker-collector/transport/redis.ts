// Celery events over Redis: kombu publishes the `celeryev` fanout exchange on
// pub/sub channels `/{db}.celeryev/<routing key>`, so one PSUBSCRIBE reads
// every event. Pub/sub keeps nothing for a slow reader, and Redis cuts a
// subscriber whose output buffer passes its limit, losing everything in
// flight: the subscription lives on its own thread (transport/redis-reader.ts),
// which only moves messages, so the socket is read whatever this thread is
// doing. This side decodes what it hands over; control broadcasts go out on
// an ordinary connection from here.

import type { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
import type { Logger } from '../../src/shared/log';
import { PIDBOX_EXCHANGE, redisEnvelope } from '../kombu-wire';
import { DEFAULT_MAX_EVENT_BYTES, type DropReason, decodeEventBody } from '../decode';
import { startThread } from '../threads';
import { createBackoff } from './backoff';
import { LargeMessageReclaimer } from './large-messages';
import type { BrokerUrl } from './broker-url';
import { FRAME_BODY, FRAME_HEADER } from './frames';
import type { FromReader, ReaderData, ToReader } from './redis-reader';
import type { EventTransport, PidboxMessage, TransportHandlers } from './types';

/** The reader's default bound on messages handed over and not decoded yet. */
export const DEFAULT_MAX_BACKLOG_BYTES = 16 * 1024 * 1024;

/** The reader thread's young generation (V8 otherwise lets it grow to 32 MiB or more under load). */
const READER_YOUNG_GENERATION_MIB = 4;
/** How long stop() waits for the reader to hand back its spool (the collector's shutdown flush allows 10 s in all). */
const STOP_DRAIN_MS = 7_000;

export interface RedisReading {
  /** Larger messages are counted as too-large and never parsed. */
  maxEventBytes?: number;
  /** Messages read and not decoded yet, in bytes, past which the reader spools (or sheds). */
  maxBacklogBytes?: number;
  /** The reader's disk spool (transport/spool.ts); without it, or with maxBytes 0, it sheds. */
  spool?: { dir: string; maxBytes: number };
}

export class RedisEventTransport implements EventTransport {
  readonly kind = 'redis' as const;
  /** With a spool, pausing makes the reader keep messages on disk. */
  readonly holdsMessagesWhenPaused: boolean;
  private reader: Worker | undefined;
  private publisher: Redis | undefined;
  private connected = false;
  private stopping = false;
  private readonly reclaimer = new LargeMessageReclaimer();
  private readonly backoff = createBackoff();

  constructor(
    private readonly broker: BrokerUrl,
    private readonly handlers: TransportHandlers,
    private readonly log: Logger,
    private readonly reading: RedisReading = {},
  ) {
    this.holdsMessagesWhenPaused = (reading.spool?.maxBytes ?? 0) > 0;
  }

  get eventPattern(): string {
    return `/${this.broker.db}.celeryev/*`;
  }

  async start(): Promise<void> {
    const data: ReaderData = {
      url: this.broker.url,
      tls: this.broker.tls,
      pattern: this.eventPattern,
      maxEventBytes: this.reading.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES,
      maxBacklogBytes: this.reading.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES,
      ...(this.holdsMessagesWhenPaused ? { spool: this.reading.spool } : {}),
    };
    const reader = startThread(import.meta.url, './redis-reader.ts', 'redis-reader.js', {
      workerData: data,
      // What it allocates dies young (envelope text, base64); its frames are ArrayBuffers, outside the heap.
      resourceLimits: { maxYoungGenerationSizeMb: READER_YOUNG_GENERATION_MIB, maxOldGenerationSizeMb: 96 },
    });
    this.reader = reader;
    const started = new Promise<void>((resolve) => {
      reader.on('message', (message: FromReader) => {
        if (message.kind === 'started' || message.kind === 'stopped') resolve();
        else this.onReader(message);
      });
      reader.on('exit', () => resolve());
    });
    reader.on('error', (error) => this.log.error(`redis reader thread failed: ${error.stack ?? error.message}`));
    reader.on('exit', (code) => {
      this.setConnected(false);
      if (!this.stopping) this.log.error(`redis reader thread exited (code ${code}); no events are read`);
    });

    const publisher = new Redis(this.broker.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 5_000,
      retryStrategy: () => (this.stopping ? null : this.backoff.next()),
      ...(this.broker.tls ? { tls: {} } : {}),
    });
    publisher.on('ready', () => this.backoff.reset());
    publisher.on('error', () => undefined);
    this.publisher = publisher;
    publisher.connect().catch(() => undefined);
    await started;
  }

  private onReader(message: Exclude<FromReader, { kind: 'started' | 'stopped' }>): void {
    switch (message.kind) {
      case 'frames':
        this.decodeFrames(message.frames, message.bytes, message.shed);
        this.reader?.postMessage({ kind: 'consumed', bytes: message.bytes } satisfies ToReader);
        break;
      case 'connection':
        if (message.delayMs !== undefined)
          this.log.warn(`broker ${this.broker.display} unreachable; reconnecting in ${message.delayMs} ms`);
        this.setConnected(message.connected);
        break;
      case 'log':
        this.log[message.level](message.message);
        break;
    }
  }

  private decodeFrames(frames: ArrayBuffer, bytes: number, shed: number): void {
    const view = Buffer.from(frames, 0, bytes);
    const now = Date.now() / 1000;
    const dropped: DropReason[] = [];
    for (let offset = 0; offset < view.length; ) {
      const length = view.readUInt32LE(offset);
      const start = offset + FRAME_HEADER;
      offset = start + length;
      if (view[start - 1] === FRAME_BODY) {
        this.handlers.onMessage(decodeEventBody(view.toString('utf8', start, offset), now));
        this.reclaimer.noteMessage(length);
      } else dropped.push(view.toString('latin1', start, offset) as DropReason);
    }
    for (let i = 0; i < shed; i++) dropped.push('overload');
    if (dropped.length > 0) this.handlers.onMessage({ events: [], dropped });
  }

  private setConnected(connected: boolean): void {
    if (connected === this.connected) return;
    this.connected = connected;
    if (connected) this.log.info(`connected to ${this.broker.display}, subscribed to ${this.eventPattern}`);
    else if (!this.stopping) this.log.warn(`lost connection to ${this.broker.display}`);
    this.handlers.onConnectionChange?.(connected);
  }

  /**
   * Unsubscribe, and take in what the reader spooled before it answers, for
   * at most `drainMs` (the collector goes on folding and flushing meanwhile);
   * past that, what is still spooled is counted and lost.
   */
  async stop(drainMs = STOP_DRAIN_MS): Promise<void> {
    this.stopping = true;
    this.reclaimer.stop();
    const reader = this.reader;
    if (reader) {
      const answered = (ms: number) =>
        new Promise<boolean>((resolve) => {
          reader.on('message', (message: FromReader) => message.kind === 'stopped' && resolve(true));
          reader.on('exit', () => resolve(true));
          setTimeout(() => resolve(false), ms).unref();
        });
      reader.postMessage({ kind: 'stop' } satisfies ToReader);
      if (!(await answered(drainMs))) {
        reader.postMessage({ kind: 'abandon' } satisfies ToReader);
        await answered(1_000);
      }
      await reader.terminate();
    }
    await this.publisher?.quit().catch(() => undefined);
    this.publisher?.disconnect();
    this.connected = false;
  }

  /** Pub/sub keeps nothing: stop() already let go of everything. */
  async close(): Promise<void> {}

  /** The reader spools what arrives until resume() (without a spool, nothing changes: the collector sheds). */
  pause(): void {
    if (this.holdsMessagesWhenPaused) this.reader?.postMessage({ kind: 'pause' } satisfies ToReader);
  }

  resume(): void {
    if (this.holdsMessagesWhenPaused) this.reader?.postMessage({ kind: 'resume' } satisfies ToReader);
  }

  /** Pub/sub has nothing to acknowledge. */
  checkpoint(): unknown {
    return undefined;
  }

  commit(_token: unknown): void {}

  isConnected(): boolean {
    return this.connected;
  }

  async broadcast(message: PidboxMessage): Promise<void> {
    if (!this.publisher) throw new Error('transport not started');
    const channel = `/${this.broker.db}.${PIDBOX_EXCHANGE}`;
    await this.publisher.publish(channel, redisEnvelope(message.body, message.headers, PIDBOX_EXCHANGE, ''));
  }
}
