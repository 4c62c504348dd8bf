// Celery events over Redis: kombu publishes the `celeryev` fanout exchange on
// pub/sub channels `/{db}.celeryev/<routing key>`, so one PSUBSCRIBE reads
// every event. Pub/sub keeps nothing for a slow reader, so this transport
// only reads and decodes; folding and storing happen off the socket's path.

import { Redis } from 'ioredis';
import type { Logger } from '../../src/shared/log';
import { redisEnvelope } from '../control/pidbox';
import { DEFAULT_MAX_EVENT_BYTES, decodeRedisMessage } from '../decode';
import { createBackoff } from './backoff';
import { LargeMessageReclaimer } from './large-messages';
import type { BrokerUrl } from './broker-url';
import type { EventTransport, PidboxMessage, TransportHandlers } from './types';

export class RedisEventTransport implements EventTransport {
  readonly kind = 'redis' as const;
  readonly holdsMessagesWhenPaused = false;
  private subscriber: Redis | undefined;
  private publisher: Redis | undefined;
  private connected = false;
  private stopping = false;
  private readonly reclaimer = new LargeMessageReclaimer();
  /** One per connection: the events and control clients reconnect independently. */
  private readonly backoffs = { events: createBackoff(), control: createBackoff() };

  constructor(
    private readonly broker: BrokerUrl,
    private readonly handlers: TransportHandlers,
    private readonly log: Logger,
    private readonly maxEventBytes = DEFAULT_MAX_EVENT_BYTES,
  ) {}

  get eventPattern(): string {
    return `/${this.broker.db}.celeryev/*`;
  }

  private client(role: 'events' | 'control'): Redis {
    const backoff = this.backoffs[role];
    const client = new Redis(this.broker.url, {
      lazyConnect: true,
      maxRetriesPerRequest: role === 'events' ? null : 1,
      enableOfflineQueue: role === 'events',
      connectTimeout: 5_000,
      retryStrategy: () => (this.stopping ? null : backoff.next()),
      ...(this.broker.tls ? { tls: {} } : {}),
    });
    client.on('ready', () => backoff.reset());
    client.on('error', (error: Error) => {
      if (role === 'events') this.log.debug(`redis ${role} connection error: ${error.message}`);
    });
    return client;
  }

  async start(): Promise<void> {
    const subscriber = this.client('events');
    this.subscriber = subscriber;
    this.publisher = this.client('control');

    // The Buffer event, not 'pmessage': ioredis converts a message to a string
    // only for 'pmessage' listeners, and an oversized message must be refused
    // by its byte length before any copy of it is made (decode checks first).
    subscriber.on('pmessageBuffer', (_pattern: string, _channel: Buffer, message: Buffer) => {
      this.handlers.onMessage(decodeRedisMessage(message, Date.now() / 1000, this.maxEventBytes));
      this.reclaimer.noteMessage(message.length);
    });
    subscriber.on('ready', () => this.setConnected(true));
    subscriber.on('close', () => this.setConnected(false));
    subscriber.on('reconnecting', (delay: number) => {
      this.log.warn(`broker ${this.broker.display} unreachable; reconnecting in ${delay} ms`);
    });

    try {
      await subscriber.connect();
      await subscriber.psubscribe(this.eventPattern);
    } catch (error) {
      // ioredis keeps retrying with retryStrategy and re-subscribes when it
      // reconnects, so a broker that is down at start is not fatal.
      this.log.warn(`broker ${this.broker.display} unreachable at start (${(error as Error).message}); retrying`);
      if (!this.stopping) subscriber.psubscribe(this.eventPattern).catch(() => undefined);
    }
    this.publisher.connect().catch(() => undefined);
  }

  private setConnected(connected: boolean): void {
    if (connected === this.connected) return;
    this.connected = connected;
    if (connected) this.log.info(`connected to ${this.broker.display}, subscribed to ${this.eventPattern}`);
    else if (!this.stopping) this.log.warn(`lost connection to ${this.broker.display}`);
    this.handlers.onConnectionChange?.(connected);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.reclaimer.stop();
    await Promise.allSettled([this.subscriber?.quit(), this.publisher?.quit()]);
    this.subscriber?.disconnect();
    this.publisher?.disconnect();
    this.connected = false;
  }

  /** Pub/sub keeps nothing: stop() already let go of everything. */
  async close(): Promise<void> {}

  pause(): void {}
  resume(): void {}

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
    const channel = `/${this.broker.db}.celery.pidbox`;
    await this.publisher.publish(channel, redisEnvelope(message.body, message.headers, 'celery.pidbox', ''));
  }
}
