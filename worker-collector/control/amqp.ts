// Control over RabbitMQ: pidbox broadcasts and their replies, task
// publishing and queue lengths, as kombu and Celery do them on AMQP
// (formats: ../../../shared/celery-protocol.md).
//
// - One connection per factory (createAmqpControl), opened on first use,
//   shared by the mailbox, the publisher and the probe, each on its own
//   channel. When it is lost it is reopened in the background with capped,
//   jittered backoff; calls made while it is down reject at once with the
//   reason instead of queueing up.
// - Mailbox: requests go to the `celery.pidbox` fanout exchange; replies
//   come back through the `reply.celery.pidbox` direct exchange into this
//   mailbox's own queue `<oid>.reply.celery.pidbox` and are handed to the
//   waiting call by their `ticket` header, so any number of calls can wait
//   at once. Exchanges and the reply queue are declared with kombu's
//   arguments, so our declarations never conflict with the workers'.
// - Publisher: a confirm channel, so send() resolves once RabbitMQ has the
//   message; published `mandatory`, so a message no queue takes is an error,
//   not a silent loss.
// - Probe: a passive queue.declare per queue (message and consumer counts).

import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import { createLogger, errorMessage, type Logger } from '../../src/shared/log';
import { PIDBOX_EXCHANGE, pyAmqpTable, REPLY_EXCHANGE } from '../kombu-wire';
import { createBackoff } from '../transport/backoff';
import type { BrokerUrl } from '../transport/broker-url';
import { pidboxMessage } from './pidbox';
import { RabbitMqApiQueueProbe } from './rabbitmq-api';
import { buildTaskMessage, taskBodyBytes } from './task-message';
import type { BroadcastOptions, Mailbox, OutgoingTask, QueueLength, QueueProbe, Replies, TaskPublisher } from './types';

/** Celery's control_queue_expires (10 s) and control_queue_ttl (300 s), which it also uses for reply queues. */
const REPLY_QUEUE_EXPIRES_MS = 10_000;
const REPLY_QUEUE_MESSAGE_TTL_MS = 300_000;
/** A publish RabbitMQ has not confirmed by then (a blocked connection, a stuck broker) fails. */
const CONFIRM_TIMEOUT_MS = 10_000;
/** Bound on opening the TCP connection, so an unreachable host fails instead of hanging calls. */
const CONNECT_TIMEOUT_MS = 5_000;

function defaultLogger(): Logger {
  return createLogger('control.amqp');
}

/** AMQP error codes amqplib attaches to channel errors. */
function amqpCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}
const NOT_FOUND = 404;
const PRECONDITION_FAILED = 406;

// ---------------------------------------------------------------------------
// The connection

/**
 * One AMQP connection, opened on first use and reopened after a loss with
 * capped backoff. Shared by reference counting: each user retain()s it and
 * release()s it in its close(); the last release closes the connection.
 */
export class AmqpLink {
  private model: ChannelModel | undefined;
  private opening: Promise<ChannelModel> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt = 0;
  private lastError = '';
  private closed = false;
  private users = 0;
  private readonly backoff = createBackoff(250, 15_000);

  constructor(
    readonly broker: BrokerUrl,
    private readonly log: Logger = defaultLogger(),
    private readonly connectionName = 'stalk-control',
  ) {
    if (broker.kind !== 'amqp') throw new Error(`AMQP control needs an amqp:// or amqps:// broker, not ${broker.display}`);
  }

  retain(): this {
    this.users += 1;
    return this;
  }

  async release(): Promise<void> {
    this.users -= 1;
    if (this.users <= 0) await this.close();
  }

  isConnected(): boolean {
    return this.model !== undefined;
  }

  /**
   * The open connection; opens it on first use. While a reconnect is
   * pending, rejects at once saying why and when the next attempt is.
   */
  connection(): Promise<ChannelModel> {
    if (this.closed) return Promise.reject(new Error(`connection to ${this.broker.display} is closed`));
    if (this.model) return Promise.resolve(this.model);
    if (this.opening) return this.opening;
    if (this.retryTimer) {
      const seconds = Math.max(0, (this.retryAt - Date.now()) / 1000).toFixed(1);
      return Promise.reject(new Error(`RabbitMQ ${this.broker.display} is unreachable (${this.lastError}); next attempt in ${seconds} s`));
    }
    return this.open();
  }

  private open(): Promise<ChannelModel> {
    const opening = this.connect().finally(() => {
      if (this.opening === opening) this.opening = undefined;
    });
    this.opening = opening;
    return opening;
  }

  private async connect(): Promise<ChannelModel> {
    let model: ChannelModel;
    try {
      // Loaded on first use, so Redis deployments never load amqplib.
      const { connect } = await import('amqplib');
      model = await connect(this.broker.url, { timeout: CONNECT_TIMEOUT_MS, clientProperties: { connection_name: this.connectionName } });
    } catch (error) {
      this.lastError = errorMessage(error);
      this.scheduleRetry();
      throw new Error(`RabbitMQ ${this.broker.display} is unreachable (${this.lastError})`);
    }
    if (this.closed) {
      await model.close().catch(() => undefined);
      throw new Error(`connection to ${this.broker.display} is closed`);
    }
    model.on('error', (error: Error) => {
      this.lastError = error.message;
      this.log.debug(`control connection error: ${error.message}`);
    });
    model.on('blocked', (reason: string) => this.log.warn(`RabbitMQ blocked the control connection: ${reason}`));
    model.on('close', () => this.onClosed(model));
    this.model = model;
    this.lastError = '';
    if (this.backoff.attempts > 0) this.log.info(`control connection to ${this.broker.display} is back`);
    this.backoff.reset();
    return model;
  }

  private onClosed(model: ChannelModel): void {
    if (this.model !== model) return;
    this.model = undefined;
    if (this.closed) return;
    this.lastError ||= 'connection closed';
    this.log.warn(`lost the control connection to ${this.broker.display} (${this.lastError})`);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.backoff.next();
    this.retryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      // Errors are recorded and the next attempt scheduled by connect().
      this.open().catch(() => undefined);
    }, delay);
    // Reconnecting alone must not keep the process alive.
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const model = this.model ?? (await this.opening?.catch(() => undefined));
    this.model = undefined;
    await model?.close().catch(() => undefined);
  }
}

/**
 * A channel of the link's connection, created on demand (and set up by
 * `setup`), dropped when it or the connection closes, recreated on next use.
 */
class LazyChannel<C extends Channel> {
  private channel: C | undefined;
  private opening: Promise<C> | undefined;

  constructor(
    private readonly link: AmqpLink,
    private readonly create: (model: ChannelModel) => Promise<C>,
    private readonly setup: (channel: C) => Promise<void>,
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  get(): Promise<C> {
    if (this.channel) return Promise.resolve(this.channel);
    if (!this.opening) {
      const opening = this.open().finally(() => {
        if (this.opening === opening) this.opening = undefined;
      });
      this.opening = opening;
    }
    return this.opening;
  }

  current(): C | undefined {
    return this.channel;
  }

  private async open(): Promise<C> {
    const model = await this.link.connection();
    const channel = await this.create(model);
    // Channel errors (a failed passive declare, a conflicting declaration)
    // close only the channel; the operation that caused them rejects.
    channel.on('error', (error: Error) => this.log.debug(`${this.what} channel error: ${error.message}`));
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    try {
      await this.setup(channel);
    } catch (error) {
      await channel.close().catch(() => undefined);
      throw error;
    }
    this.channel = channel;
    return channel;
  }

  /** Forget the channel (it closed or is about to); the next get() opens another. */
  drop(channel: C): void {
    if (this.channel === channel) this.channel = undefined;
  }

  async close(): Promise<void> {
    const channel = this.channel ?? (await this.opening?.catch(() => undefined));
    this.channel = undefined;
    await channel?.close().catch(() => undefined);
  }
}

/** Publish on a confirm channel; resolves when RabbitMQ confirms, rejects on a nack, a closed channel or no confirm in time. */
function publishConfirmed(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: Options.Publish,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new Error(`RabbitMQ did not confirm the message within ${CONFIRM_TIMEOUT_MS / 1000} s`));
    }, CONFIRM_TIMEOUT_MS);
    try {
      channel.publish(exchange, routingKey, content, options, (error: unknown) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        if (error) reject(new Error(`RabbitMQ did not take the message (${errorMessage(error)})`));
        else resolve();
      });
    } catch (error) {
      // The channel was already closed: nothing was sent.
      clearTimeout(timer);
      settled = true;
      reject(new ChannelGoneError(errorMessage(error)));
    }
  });
}

/** publish() threw before anything went out (closed channel): safe to retry on a new channel. */
class ChannelGoneError extends Error {}

// ---------------------------------------------------------------------------
// Mailbox

interface PendingCall {
  add(body: Record<string, unknown>): void;
}

export class AmqpMailbox implements Mailbox {
  /** The routing key of this mailbox's replies (kombu's `oid`). */
  readonly oid = randomUUID();
  readonly replyQueue = `${this.oid}.${REPLY_EXCHANGE}`;
  private readonly link: AmqpLink;
  private readonly channel: LazyChannel<ConfirmChannel>;
  private readonly pending = new Map<string, PendingCall>();
  /** Lamport clock, as kombu keeps one per mailbox (sent in every request's headers). */
  private lamport = 0;
  private closed = false;

  constructor(broker: BrokerUrl | AmqpLink, private readonly log: Logger = defaultLogger()) {
    this.link = (broker instanceof AmqpLink ? broker : new AmqpLink(broker, log)).retain();
    this.channel = new LazyChannel(
      this.link,
      (model) => model.createConfirmChannel(),
      (channel) => this.setup(channel),
      log,
      'pidbox',
    );
  }

  /** The Lamport clock value of the last request sent or reply seen. */
  get clock(): number {
    return this.lamport;
  }

  private async setup(channel: ConfirmChannel): Promise<void> {
    // As kombu's Mailbox declares them (Exchange(..., durable=False)).
    await channel.assertExchange(PIDBOX_EXCHANGE, 'fanout', { durable: false, autoDelete: false });
    await channel.assertExchange(REPLY_EXCHANGE, 'direct', { durable: false, autoDelete: false });
    // kombu's reply queue: not durable, deleted with its last consumer or after 10 s unused.
    await channel.assertQueue(this.replyQueue, {
      durable: false,
      autoDelete: true,
      exclusive: false,
      arguments: { 'x-expires': REPLY_QUEUE_EXPIRES_MS, 'x-message-ttl': REPLY_QUEUE_MESSAGE_TTL_MS },
    });
    await channel.bindQueue(this.replyQueue, REPLY_EXCHANGE, this.oid);
    await channel.consume(this.replyQueue, (message) => this.onReply(channel, message), { noAck: true });
  }

  async call(method: string, args: Record<string, unknown>, options: BroadcastOptions): Promise<Replies> {
    if (this.closed) throw new Error('the AMQP mailbox is closed');
    // kombu treats an empty destination list as "every worker" (and so do workers).
    const destination = options.destination && options.destination.length > 0 ? options.destination : undefined;
    const timeoutMs = Math.max(0, options.timeoutMs);
    const channel = await this.channel.get();
    this.lamport += 1;
    const message = pidboxMessage(method, args, {
      ...(destination ? { destination } : {}),
      timeout: timeoutMs / 1000,
      ...(options.reply ? { replyTo: this.oid } : {}),
      clock: this.lamport,
    });
    const content = Buffer.from(JSON.stringify(message.body), 'utf8');
    const properties: Options.Publish = {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers: pyAmqpTable(message.headers),
      deliveryMode: 2,
      priority: 0,
    };
    if (!options.reply) {
      await this.publish(channel, content, properties);
      return {};
    }
    const ticket = message.body.ticket as string;
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : destination?.length;
    return new Promise<Replies>((resolve, reject) => {
      const replies: Replies = {};
      let done = false;
      const finish = (error?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pending.delete(ticket);
        if (error) reject(error);
        else resolve(replies);
      };
      const timer = setTimeout(() => finish(), timeoutMs);
      this.pending.set(ticket, {
        add: (body) => {
          for (const [worker, reply] of Object.entries(body)) {
            if (worker === '__proto__') continue;
            replies[worker] = reply;
          }
          if (limit !== undefined && Object.keys(replies).length >= limit) finish();
        },
      });
      this.publish(channel, content, properties).catch((error: Error) => finish(error));
    });
  }

  private async publish(channel: ConfirmChannel, content: Buffer, properties: Options.Publish): Promise<void> {
    try {
      await publishConfirmed(channel, PIDBOX_EXCHANGE, '', content, properties);
    } catch (error) {
      if (!(error instanceof ChannelGoneError)) throw error;
      // The channel closed between get() and publish: nothing went out, so try once on a new one.
      this.channel.drop(channel);
      await publishConfirmed(await this.channel.get(), PIDBOX_EXCHANGE, '', content, properties);
    }
  }

  private onReply(channel: ConfirmChannel, message: ConsumeMessage | null): void {
    if (message === null) {
      // RabbitMQ cancelled the consumer (the reply queue was deleted): start over on the next call.
      this.log.warn(`reply queue ${this.replyQueue} went away; it is declared again on the next call`);
      this.channel.drop(channel);
      void channel.close().catch(() => undefined);
      return;
    }
    const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
    if (typeof headers.clock === 'number' && Number.isFinite(headers.clock)) this.lamport = Math.max(this.lamport, headers.clock) + 1;
    const ticket = headers.ticket;
    // Late replies (their call already returned) and strangers are skipped.
    const pending = typeof ticket === 'string' ? this.pending.get(ticket) : undefined;
    if (!pending) return;
    const contentType = message.properties.contentType as string | undefined;
    if (contentType && contentType !== 'application/json') {
      this.log.debug(`skipped a pidbox reply in ${contentType}`);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(message.content.toString('utf8'));
    } catch {
      this.log.debug('skipped a pidbox reply that is not JSON');
      return;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.log.debug('skipped a pidbox reply that is not {hostname: reply}');
      return;
    }
    pending.add(body as Record<string, unknown>);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.channel.close();
    await this.link.release();
  }
}

// ---------------------------------------------------------------------------
// Publisher

export class AmqpTaskPublisher implements TaskPublisher {
  private readonly link: AmqpLink;
  private readonly channel: LazyChannel<ConfirmChannel>;
  /** Queues this channel declared (or found declared), so each is declared once per channel. */
  private declared = new Set<string>();
  /** Queues whose declaration conflicts with how they exist (other arguments): published to without declaring. */
  private readonly conflicting = new Set<string>();
  /** Task ids RabbitMQ returned as unroutable (basic.return comes before the confirm). */
  private readonly returned = new Set<string>();
  /** kombu's reply_to for the RPC result backend: the producer's oid. */
  private readonly oid = randomUUID();
  private closed = false;

  constructor(broker: BrokerUrl | AmqpLink, private readonly log: Logger = defaultLogger()) {
    this.link = (broker instanceof AmqpLink ? broker : new AmqpLink(broker, log)).retain();
    this.channel = new LazyChannel(
      this.link,
      (model) => model.createConfirmChannel(),
      async (channel) => {
        this.declared = new Set();
        channel.on('return', (message: Message) => {
          const id = message.properties.correlationId as string | undefined;
          if (id) this.returned.add(id);
        });
      },
      log,
      'publisher',
    );
  }

  async send(task: OutgoingTask): Promise<string> {
    if (this.closed) throw new Error('the AMQP task publisher is closed');
    // Protocol 2, shared with the Redis publisher; on AMQP the JSON body goes raw.
    const built = buildTaskMessage(task, { replyTo: this.oid });
    const content = taskBodyBytes(built);
    const options: Options.Publish = {
      contentType: built.contentType,
      contentEncoding: built.contentEncoding,
      headers: pyAmqpTable(built.headers),
      correlationId: built.properties.correlation_id,
      replyTo: built.properties.reply_to,
      deliveryMode: built.properties.delivery_mode,
      priority: built.properties.priority,
      ...(built.properties.expiration !== undefined ? { expiration: built.properties.expiration } : {}),
      // A message no queue takes comes back (basic.return) instead of vanishing.
      mandatory: true,
    };
    for (let attempt = 0; ; attempt += 1) {
      const channel = await this.declaredChannel(built.queue);
      this.returned.delete(built.id);
      try {
        await publishConfirmed(channel, '', built.queue, content, options);
      } catch (error) {
        if (error instanceof ChannelGoneError && attempt === 0) {
          this.channel.drop(channel);
          continue;
        }
        throw error;
      }
      if (!this.returned.delete(built.id)) return built.id;
      // No queue took it: the queue was deleted since we declared it. Declare it again and retry once.
      if (attempt === 0 && !this.conflicting.has(built.queue)) {
        this.declared.delete(built.queue);
        continue;
      }
      throw new Error(`queue '${built.queue}' does not exist on ${this.link.broker.display}; the task was not sent`);
    }
  }

  /** The channel, with `queue` declared as Celery declares its default queue (durable, no arguments). */
  private async declaredChannel(queue: string): Promise<ConfirmChannel> {
    const channel = await this.channel.get();
    if (this.declared.has(queue) || this.conflicting.has(queue)) return channel;
    try {
      await channel.assertQueue(queue, { durable: true, autoDelete: false, exclusive: false });
      this.declared.add(queue);
      return channel;
    } catch (error) {
      this.channel.drop(channel);
      if (amqpCode(error) !== PRECONDITION_FAILED) throw error;
      // The queue exists with other arguments (x-max-priority, a quorum queue, ...); RabbitMQ
      // closed the channel. Use it as it is.
      this.log.info(`queue '${queue}' exists with other arguments than Celery's default; publishing without declaring it`);
      this.conflicting.add(queue);
      return this.channel.get();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.channel.close();
    await this.link.release();
  }
}

// ---------------------------------------------------------------------------
// Queue lengths

export class AmqpQueueProbe implements QueueProbe {
  private readonly link: AmqpLink;
  private readonly channel: LazyChannel<Channel>;
  private closed = false;
  /** One probe at a time on the channel: a missing queue closes it under every other check. */
  private serial: Promise<unknown> = Promise.resolve();

  constructor(broker: BrokerUrl | AmqpLink, log: Logger = defaultLogger()) {
    this.link = (broker instanceof AmqpLink ? broker : new AmqpLink(broker, log)).retain();
    this.channel = new LazyChannel(this.link, (model) => model.createChannel(), async () => undefined, log, 'queue probe');
  }

  lengths(names: string[]): Promise<QueueLength[]> {
    const run = this.serial.then(() => this.measure(names));
    this.serial = run.catch(() => undefined);
    return run;
  }

  private async measure(names: string[]): Promise<QueueLength[]> {
    if (this.closed) throw new Error('the AMQP queue probe is closed');
    const lengths: QueueLength[] = [];
    for (const name of names) {
      const channel = await this.channel.get();
      try {
        const { messageCount, consumerCount } = await channel.checkQueue(name);
        lengths.push({ name, messages: messageCount, ready: messageCount, unacked: null, consumers: consumerCount });
      } catch (error) {
        if (amqpCode(error) !== NOT_FOUND) throw error;
        // RabbitMQ closed the channel; the next queue gets a new one.
        this.channel.drop(channel);
        lengths.push({ name, messages: 0, ready: 0, unacked: null, consumers: 0 });
      }
    }
    return lengths;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.channel.close();
    await this.link.release();
  }
}

// ---------------------------------------------------------------------------

export interface AmqpControl {
  mailbox: AmqpMailbox;
  publisher: AmqpTaskPublisher;
  queues: QueueProbe;
  /** Closes all three (and so the shared connection). */
  close(): Promise<void>;
}

export interface AmqpControlOptions {
  /** RabbitMQ management API (Flower's --broker-api), e.g. http://guest:guest@localhost:15672/api/. */
  brokerApi?: string | undefined;
  log?: Logger | undefined;
}

/** Mailbox, publisher and queue probe for a RabbitMQ broker, sharing one connection. */
export function createAmqpControl(brokerUrl: BrokerUrl, options: AmqpControlOptions = {}): AmqpControl {
  const log = options.log ?? defaultLogger();
  const link = new AmqpLink(brokerUrl, log);
  const mailbox = new AmqpMailbox(link, log);
  const publisher = new AmqpTaskPublisher(link, log);
  const probe = new AmqpQueueProbe(link, log);
  const queues: QueueProbe = options.brokerApi ? new RabbitMqApiQueueProbe(options.brokerApi, brokerUrl, { fallback: probe, log }) : probe;
  return {
    mailbox,
    publisher,
    queues,
    async close() {
      await Promise.all([mailbox.close(), publisher.close(), queues.close()]);
    },
  };
}
