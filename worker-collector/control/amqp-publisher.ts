// Celery task messages published on RabbitMQ: protocol 2 (task-message.ts),
// the JSON body raw with its headers and properties as AMQP properties. On a
// confirm channel, so send() resolves once RabbitMQ has the message; published
// `mandatory`, so a message no queue takes is an error, not a silent loss.

import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, Message, Options } from 'amqplib';
import type { Logger } from '../../src/shared/log';
import { pyAmqpTable } from '../kombu-wire';
import type { BrokerUrl } from '../transport/broker-url';
import { AmqpLink, amqpCode, ChannelGoneError, defaultLogger, LazyChannel, PRECONDITION_FAILED, publishConfirmed } from './amqp-link';
import { buildTaskMessage, taskBodyBytes } from './task-message';
import type { OutgoingTask, TaskPublisher } from './types';

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

  constructor(
    broker: BrokerUrl | AmqpLink,
    private readonly log: Logger = defaultLogger(),
  ) {
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
