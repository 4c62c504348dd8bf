// Queue lengths on RabbitMQ over AMQP: a passive queue.declare per queue
// gives its ready messages and consumers (rabbitmq-api.ts reads more, when
// the management API is there).

import type { Channel } from 'amqplib';
import type { Logger } from '../../src/shared/log';
import type { BrokerUrl } from '../transport/broker-url';
import { AmqpLink, amqpCode, defaultLogger, LazyChannel, NOT_FOUND } from './amqp-link';
import type { QueueLength, QueueProbe } from './types';

export class AmqpQueueProbe implements QueueProbe {
  private readonly link: AmqpLink;
  private readonly channel: LazyChannel<Channel>;
  private closed = false;
  /** One probe at a time on the channel: a missing queue closes it under every other check. */
  private serial: Promise<unknown> = Promise.resolve();

  constructor(broker: BrokerUrl | AmqpLink, log: Logger = defaultLogger()) {
    this.link = (broker instanceof AmqpLink ? broker : new AmqpLink(broker, log)).retain();
    this.channel = new LazyChannel(
      this.link,
      (model) => model.createChannel(),
      async () => undefined,
      log,
      'queue probe',
    );
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
