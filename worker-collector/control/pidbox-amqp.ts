// The pidbox mailbox on RabbitMQ, as kombu declares it: requests go to the
// `celery.pidbox` fanout exchange on a confirm channel; replies come back
// through the `reply.celery.pidbox` direct exchange into this mailbox's own
// queue `<oid>.reply.celery.pidbox`. Exchanges and the reply queue are
// declared with kombu's arguments, so our declarations never conflict with
// the workers'. Calls, tickets and filtering are the core's (pidbox.ts).

import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import type { Logger } from '../../src/shared/log';
import { PIDBOX_EXCHANGE, pyAmqpTable, REPLY_EXCHANGE } from '../kombu-wire';
import type { BrokerUrl } from '../transport/broker-url';
import type { PidboxMessage } from '../transport/types';
import { AmqpLink, ChannelGoneError, defaultLogger, LazyChannel, publishConfirmed } from './amqp-link';
import { PidboxMailbox, replyBody, replyHeaders } from './pidbox';

/** Celery's control_queue_expires (10 s) and control_queue_ttl (300 s), which it also uses for reply queues. */
const REPLY_QUEUE_EXPIRES_MS = 10_000;
const REPLY_QUEUE_MESSAGE_TTL_MS = 300_000;

export class AmqpMailbox extends PidboxMailbox {
  private readonly link: AmqpLink;
  private readonly channel: LazyChannel<ConfirmChannel>;

  constructor(broker: BrokerUrl | AmqpLink, log: Logger = defaultLogger()) {
    super(log);
    this.link = (broker instanceof AmqpLink ? broker : new AmqpLink(broker, log)).retain();
    this.channel = new LazyChannel(
      this.link,
      (model) => model.createConfirmChannel(),
      (channel) => this.setup(channel),
      log,
      'pidbox',
    );
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

  /** Publish on the channel that also consumes the replies, so the reply queue exists before any worker answers. */
  protected async publish(message: PidboxMessage): Promise<void> {
    const channel = await this.channel.get();
    const content = Buffer.from(JSON.stringify(message.body), 'utf8');
    const properties: Options.Publish = {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers: pyAmqpTable(message.headers),
      deliveryMode: 2,
      priority: 0,
    };
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
    const headers = replyHeaders(message.properties.headers ?? {});
    if (typeof headers === 'string') {
      this.receive(headers);
      return;
    }
    const text = message.content.toString('utf8');
    const body = replyBody(text, message.properties.contentType);
    this.receive(typeof body === 'string' ? body : { ...headers, body }, text);
  }

  protected async release(): Promise<void> {
    await this.channel.close();
    await this.link.release();
  }
}
