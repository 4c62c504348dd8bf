// One AMQP connection shared by the control parts (mailbox, task publisher,
// queue probe), each on channels of its own:
//
// - AmqpLink: the connection, opened on first use. When it is lost it is
//   reopened in the background with capped, jittered backoff; calls made
//   while it is down reject at once with the reason instead of queueing up.
// - LazyChannel: a channel of it, created and set up on demand, dropped when
//   it or the connection closes, recreated on next use.
// - publishConfirmed: publish on a confirm channel and wait for RabbitMQ's
//   confirm, so that a send resolves only once the broker has the message.

import type { Channel, ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { createLogger, errorMessage, type Logger } from '../../src/shared/log';
import { createBackoff } from '../transport/backoff';
import type { BrokerUrl } from '../transport/broker-url';

/** A publish RabbitMQ has not confirmed by then (a blocked connection, a stuck broker) fails. */
const CONFIRM_TIMEOUT_MS = 10_000;
/** Bound on opening the TCP connection, so an unreachable host fails instead of hanging calls. */
const CONNECT_TIMEOUT_MS = 5_000;

/** The control parts' logger when none is given. */
export function defaultLogger(): Logger {
  return createLogger('control.amqp');
}

/** AMQP error codes amqplib attaches to channel errors. */
export function amqpCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}
export const NOT_FOUND = 404;
export const PRECONDITION_FAILED = 406;

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
export class LazyChannel<C extends Channel> {
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
export function publishConfirmed(
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
export class ChannelGoneError extends Error {}
