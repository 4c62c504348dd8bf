// Control over RabbitMQ: the pidbox mailbox (pidbox-amqp.ts), the task
// publisher (amqp-publisher.ts) and the queue probe (amqp-queues.ts, or the
// management API in rabbitmq-api.ts) on one shared connection (amqp-link.ts).

import type { Logger } from '../../src/shared/log';
import type { BrokerUrl } from '../transport/broker-url';
import { AmqpLink, defaultLogger } from './amqp-link';
import { AmqpTaskPublisher } from './amqp-publisher';
import { AmqpQueueProbe } from './amqp-queues';
import { AmqpMailbox } from './pidbox-amqp';
import { RabbitMqApiQueueProbe } from './rabbitmq-api';
import type { QueueProbe } from './types';

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
