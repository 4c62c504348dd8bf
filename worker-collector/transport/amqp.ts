// Celery events over RabbitMQ: a queue of our own bound with '#' to the
// durable `celeryev` topic exchange. By default the queue is exclusive and
// auto-delete, like Celery's own receiver; its message TTL is longer than
// Celery's 5 s and its length is bounded, so a slow collector loses nothing
// short of the bound. Naming the queue (`--event-queue`) makes it outlive a
// collector restart (it expires after `--event-queue-expires` unused).

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../../src/shared/log';
import { pyAmqpTable } from '../control/amqp';
import { DEFAULT_MAX_EVENT_BYTES, decodeAmqpMessage } from '../decode';
import { createBackoff } from './backoff';
import { LargeMessageReclaimer } from './large-messages';
import type { BrokerUrl } from './broker-url';
import type { EventTransport, PidboxMessage, TransportHandlers } from './types';

export interface AmqpQueueOptions {
  /** A fixed queue name that survives restarts; otherwise an exclusive auto-delete queue. */
  queueName?: string | undefined;
  messageTtlMs: number;
  maxLength: number;
  /** Unused-queue expiry for a named queue. */
  expiresMs: number;
  prefetch: number;
}

export const DEFAULT_AMQP_QUEUE: AmqpQueueOptions = {
  messageTtlMs: 60_000,
  maxLength: 1_000_000,
  expiresMs: 3_600_000,
  prefetch: 2_000,
};

type Connection = ChannelModel;
type Message = ConsumeMessage;

const ACK_EVERY = 200;
const ACK_INTERVAL_MS = 20;

export class AmqpEventTransport implements EventTransport {
  readonly kind = 'amqp' as const;
  readonly holdsMessagesWhenPaused = true;
  private connection: Connection | undefined;
  private channel: Channel | undefined;
  private controlChannel: Channel | undefined;
  private connected = false;
  private stopping = false;
  private paused = false;
  private unacked: Message | undefined;
  private unackedCount = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly backoff = createBackoff();
  private readonly reclaimer = new LargeMessageReclaimer();
  private readonly queueName: string;

  constructor(
    private readonly broker: BrokerUrl,
    private readonly handlers: TransportHandlers,
    private readonly log: Logger,
    private readonly options: AmqpQueueOptions = DEFAULT_AMQP_QUEUE,
    private readonly maxEventBytes = DEFAULT_MAX_EVENT_BYTES,
  ) {
    this.queueName = options.queueName ?? `stalk.events.${hostname()}.${randomUUID().slice(0, 8)}`;
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopping) return;
    try {
      // Loaded on first use, so Redis deployments never load amqplib.
      const { connect } = await import('amqplib');
      const connection = await connect(this.broker.url, { clientProperties: { connection_name: 'stalk-collector' } });
      connection.on('error', (error: Error) => this.log.debug(`amqp connection error: ${error.message}`));
      connection.on('close', () => this.onClosed());
      this.connection = connection;
      const channel = await connection.createChannel();
      channel.on('error', (error: Error) => this.log.warn(`amqp event channel error: ${error.message}`));
      await channel.assertExchange('celeryev', 'topic', { durable: true, autoDelete: false });
      const named = this.options.queueName !== undefined;
      await channel.assertQueue(this.queueName, {
        exclusive: !named,
        autoDelete: !named,
        durable: false,
        arguments: {
          'x-message-ttl': this.options.messageTtlMs,
          'x-max-length': this.options.maxLength,
          ...(named ? { 'x-expires': this.options.expiresMs } : {}),
        },
      });
      await channel.bindQueue(this.queueName, 'celeryev', '#');
      await channel.prefetch(this.options.prefetch);
      await channel.consume(this.queueName, (message) => this.onDelivery(message), { noAck: false });
      this.channel = channel;
      this.backoff.reset();
      this.setConnected(true);
    } catch (error) {
      this.log.warn(`broker ${this.broker.display} unreachable (${(error as Error).message})`);
      await this.connection?.close().catch(() => undefined);
      this.connection = undefined;
      this.scheduleReconnect();
    }
  }

  private onDelivery(message: Message | null): void {
    if (message === null) {
      // The broker cancelled our consumer (queue deleted): start over.
      this.log.warn(`amqp consumer cancelled by the broker; reconnecting`);
      void this.connection?.close().catch(() => undefined);
      return;
    }
    const { contentType, contentEncoding, headers } = message.properties;
    this.handlers.onMessage(
      decodeAmqpMessage(message.content, { contentType, contentEncoding, headers }, Date.now() / 1000, this.maxEventBytes),
    );
    this.reclaimer.noteMessage(message.content.length);
    this.unacked = message;
    this.unackedCount += 1;
    if (this.paused) return;
    if (this.unackedCount >= ACK_EVERY) this.flushAcks();
    else this.ackTimer ??= setTimeout(() => this.flushAcks(), ACK_INTERVAL_MS);
  }

  private flushAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (!this.unacked || !this.channel) return;
    try {
      this.channel.ack(this.unacked, true);
    } catch (error) {
      this.log.debug(`amqp ack failed: ${(error as Error).message}`);
    }
    this.unacked = undefined;
    this.unackedCount = 0;
  }

  private onClosed(): void {
    const wasConnected = this.connected;
    this.channel = undefined;
    this.controlChannel = undefined;
    this.connection = undefined;
    this.unacked = undefined;
    this.unackedCount = 0;
    this.setConnected(false);
    if (!this.stopping && wasConnected) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer) return;
    const delay = this.backoff.next();
    this.log.warn(`reconnecting to ${this.broker.display} in ${delay} ms`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
  }

  private setConnected(connected: boolean): void {
    if (connected === this.connected) return;
    this.connected = connected;
    if (connected) this.log.info(`connected to ${this.broker.display}, consuming celeryev via queue ${this.queueName}`);
    else if (!this.stopping) this.log.warn(`lost connection to ${this.broker.display}`);
    this.handlers.onConnectionChange?.(connected);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.reclaimer.stop();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.flushAcks();
    await this.connection?.close().catch(() => undefined);
    this.connected = false;
  }

  /** Stop acknowledging: RabbitMQ stops delivering at the prefetch limit and keeps the rest queued. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.flushAcks();
  }

  isConnected(): boolean {
    return this.connected;
  }

  async broadcast(message: PidboxMessage): Promise<void> {
    if (!this.connection) throw new Error(`broker ${this.broker.display} is not connected`);
    if (!this.controlChannel) {
      const channel = await this.connection.createChannel();
      channel.on('error', (error: Error) => this.log.warn(`amqp control channel error: ${error.message}`));
      channel.on('close', () => {
        if (this.controlChannel === channel) this.controlChannel = undefined;
      });
      // Declared as kombu declares it, so the declaration always agrees.
      await channel.assertExchange('celery.pidbox', 'fanout', { durable: false, autoDelete: false });
      this.controlChannel = channel;
    }
    this.controlChannel.publish('celery.pidbox', '', Buffer.from(JSON.stringify(message.body)), {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      // py-amqp misreads amqplib's 16-bit integers: send them as Celery expects.
      headers: pyAmqpTable(message.headers),
      deliveryMode: 1,
    });
  }
}
