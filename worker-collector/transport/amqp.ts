// Celery events over RabbitMQ: a queue of our own bound with '#' to the
// durable `celeryev` topic exchange. By default the queue is exclusive and
// auto-delete, like Celery's own receiver; its message TTL is longer than
// Celery's 5 s and its length is bounded, so a slow collector loses nothing
// short of the bound. Naming the queue (`--event-queue`) makes it outlive a
// collector restart (it expires after `--event-queue-expires` unused), and
// lets several collectors share it: RabbitMQ gives each message to one.
//
// Deliveries are acknowledged only once the events they carried are written
// (the collector commits the checkpoint it took when it swapped the batch
// out), so a collector that dies loses nothing: RabbitMQ gives what it had
// not acknowledged to another consumer of the queue, or to the next run.
// Acks are cumulative (`multiple`), per channel: after a reconnect the old
// channel's deliveries are the broker's again, so they are never acked.
//
// Over 300 lines on purpose: one consumer's lifecycle (connect, declare,
// consume, pause by cancelling, acknowledge after commit, reconnect) whose
// steps share the channel and the delivery tags; control broadcasts reuse
// its connection.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { createRateLimitedLog, type Logger } from '../../src/shared/log';
import { PIDBOX_EXCHANGE, pyAmqpTable } from '../kombu-wire';
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
  /**
   * Messages RabbitMQ delivers ahead of the acks (`--event-prefetch`). Acks
   * follow the writes, so this bounds what one flush interval can take in.
   */
  prefetch: number;
}

export const DEFAULT_AMQP_QUEUE: AmqpQueueOptions = {
  messageTtlMs: 60_000,
  maxLength: 1_000_000,
  expiresMs: 3_600_000,
  prefetch: 20_000,
};

type Connection = ChannelModel;
type Message = ConsumeMessage;

/** What checkpoint() hands out: the newest delivery, on the channel it came on. */
interface Checkpoint {
  channel: Channel;
  message: Message;
}

/** How long stop() waits for RabbitMQ to confirm the consumer is cancelled. */
const CANCEL_TIMEOUT_MS = 5_000;

export class AmqpEventTransport implements EventTransport {
  readonly kind = 'amqp' as const;
  readonly holdsMessagesWhenPaused = true;
  private connection: Connection | undefined;
  /** The events channel; its delivery tags count every delivery on it from 1. */
  private channel: Channel | undefined;
  private controlChannel: Channel | undefined;
  /** The consumer on `channel`, while consuming (not paused, not stopped). */
  private consumerTag: string | undefined;
  /** The newest delivery on `channel` handed to onMessage. */
  private delivered: Message | undefined;
  /** The highest delivery tag acknowledged on `channel`. */
  private ackedTag = 0;
  private backlogSignalled = false;
  private connected = false;
  private stopping = false;
  /** After stop(): deliveries still arriving are left unacknowledged for the broker to give out again. */
  private receiving = true;
  private paused = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly backoff = createBackoff();
  private readonly reclaimer = new LargeMessageReclaimer();
  private readonly queueName: string;
  private readonly backlogAt: number;
  private readonly noteRedelivered: (key: string, message: string) => void;
  private redelivered = 0;

  constructor(
    private readonly broker: BrokerUrl,
    private readonly handlers: TransportHandlers,
    private readonly log: Logger,
    private readonly options: AmqpQueueOptions = DEFAULT_AMQP_QUEUE,
    private readonly maxEventBytes = DEFAULT_MAX_EVENT_BYTES,
  ) {
    this.queueName = options.queueName ?? `stalk.events.${hostname()}.${randomUUID().slice(0, 8)}`;
    this.backlogAt = Math.max(1, Math.floor(options.prefetch / 2));
    this.noteRedelivered = createRateLimitedLog((m) => log.info(m));
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
      // A channel the broker closed (an ack it refused, a consumer timeout)
      // while the connection stays up: start over on a new connection.
      channel.on('close', () => {
        if (this.channel === channel && !this.stopping) void this.connection?.close().catch(() => undefined);
      });
      await channel.assertExchange('celeryev', 'topic', { durable: true, autoDelete: false });
      const named = this.options.queueName !== undefined;
      // A named queue is shared: not exclusive, so any number of collectors
      // consume it, each message going to one of them, and what a consumer
      // leaves unacknowledged goes back to the others when it disconnects.
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
      if (this.stopping) throw new Error('stopping');
      // Before consuming: deliveries can arrive before consume() resolves.
      this.channel = channel;
      this.delivered = undefined;
      this.ackedTag = 0;
      this.backlogSignalled = false;
      if (!this.paused) await this.consume(channel);
      this.backoff.reset();
      this.setConnected(true);
    } catch (error) {
      if (!this.stopping) this.log.warn(`broker ${this.broker.display} unreachable (${(error as Error).message})`);
      this.channel = undefined;
      await this.connection?.close().catch(() => undefined);
      this.connection = undefined;
      this.scheduleReconnect();
    }
  }

  private async consume(channel: Channel): Promise<void> {
    const tag = `stalk.${randomUUID()}`;
    this.consumerTag = tag;
    await channel.consume(this.queueName, (message) => this.onDelivery(channel, message), { noAck: false, consumerTag: tag });
  }

  /** Cancel the consumer: RabbitMQ delivers nothing more to it; what it delivered stays ours to ack. */
  private async cancelConsumer(): Promise<void> {
    const tag = this.consumerTag;
    const channel = this.channel;
    this.consumerTag = undefined;
    if (!tag || !channel) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, CANCEL_TIMEOUT_MS)));
    await Promise.race([
      channel.cancel(tag).then(
        () => undefined,
        (error: Error) => this.log.debug(`amqp cancel failed: ${error.message}`),
      ),
      timeout,
    ]);
    clearTimeout(timer);
  }

  private onDelivery(channel: Channel, message: Message | null): void {
    if (channel !== this.channel) return;
    if (message === null) {
      // The broker cancelled our consumer (queue deleted): start over.
      this.log.warn(`amqp consumer cancelled by the broker; reconnecting`);
      void this.connection?.close().catch(() => undefined);
      return;
    }
    if (!this.receiving) return;
    if (message.fields.redelivered) {
      this.redelivered += 1;
      this.noteRedelivered(
        'redelivered',
        `taking redelivered messages (${this.redelivered} so far): a consumer of ${this.queueName} left them unacknowledged`,
      );
    }
    // Before onMessage: a checkpoint taken from here on covers this message.
    this.delivered = message;
    const { contentType, contentEncoding, headers } = message.properties;
    this.handlers.onMessage(
      decodeAmqpMessage(message.content, { contentType, contentEncoding, headers }, Date.now() / 1000, this.maxEventBytes),
    );
    this.reclaimer.noteMessage(message.content.length);
    if (!this.backlogSignalled && message.fields.deliveryTag - this.ackedTag >= this.backlogAt) {
      this.backlogSignalled = true;
      this.handlers.onBacklog?.();
    }
  }

  checkpoint(): unknown {
    if (!this.channel || !this.delivered) return undefined;
    const token: Checkpoint = { channel: this.channel, message: this.delivered };
    return token;
  }

  commit(token: unknown): void {
    if (token === undefined) return;
    const { channel, message } = token as Checkpoint;
    // A token from before a reconnect: the broker took those deliveries back
    // (and redelivers them, on a named queue); acking them is impossible.
    if (channel !== this.channel) return;
    const tag = message.fields.deliveryTag;
    // Acks are cumulative, and acking a tag twice closes the channel (PRECONDITION_FAILED).
    if (tag <= this.ackedTag) return;
    this.ackedTag = tag;
    this.backlogSignalled = false;
    try {
      channel.ack(message, true);
    } catch (error) {
      this.log.debug(`amqp ack failed: ${(error as Error).message}`);
    }
  }

  /** Delivered on the current channel and not acknowledged yet. */
  get unacknowledged(): number {
    return this.delivered ? this.delivered.fields.deliveryTag - this.ackedTag : 0;
  }

  private onClosed(): void {
    const wasConnected = this.connected;
    this.channel = undefined;
    this.controlChannel = undefined;
    this.connection = undefined;
    this.consumerTag = undefined;
    this.delivered = undefined;
    this.ackedTag = 0;
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

  /** Stop receiving; the channel stays open so the final flush can still commit. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.reclaimer.stop();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    await this.cancelConsumer();
    this.receiving = false;
  }

  /** Close the connection: whatever is still unacknowledged goes back to the queue. */
  async close(): Promise<void> {
    if (!this.stopping) await this.stop();
    // The channel first: its close follows the last ack on the same channel,
    // while a connection close (channel 0) could overtake it in amqplib's
    // multiplexer, and the broker would take the acked messages back.
    await this.channel?.close().catch(() => undefined);
    await this.connection?.close().catch(() => undefined);
    this.connected = false;
  }

  /**
   * The collector's buffer is full: cancel the consumer, so RabbitMQ keeps
   * the rest queued. (Without it the buffer is bounded anyway by the
   * prefetch, since nothing is acked before it is written; but a prefetch of
   * task.multi batches can hold many times --max-buffer-mb.)
   */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    void this.cancelConsumer();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const channel = this.channel;
    if (!channel || this.stopping || this.consumerTag) return;
    this.consume(channel).catch((error: Error) => {
      // The channel is going away; the reconnect consumes again.
      this.log.debug(`amqp consume failed: ${error.message}`);
    });
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
      await channel.assertExchange(PIDBOX_EXCHANGE, 'fanout', { durable: false, autoDelete: false });
      this.controlChannel = channel;
    }
    this.controlChannel.publish(PIDBOX_EXCHANGE, '', Buffer.from(JSON.stringify(message.body)), {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      // py-amqp misreads amqplib's 16-bit integers: send them as Celery expects.
      headers: pyAmqpTable(message.headers),
      deliveryMode: 1,
    });
  }
}
