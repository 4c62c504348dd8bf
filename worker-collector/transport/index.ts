// The broker URL's scheme picks the transport.

import type { Logger } from '../../src/shared/log';
import { type AmqpQueueOptions, AmqpEventTransport, DEFAULT_AMQP_QUEUE } from './amqp';
import type { BrokerUrl } from './broker-url';
import { RedisEventTransport } from './redis';
import type { EventTransport, TransportHandlers } from './types';

export function createEventTransport(
  broker: BrokerUrl,
  handlers: TransportHandlers,
  log: Logger,
  amqpQueue: AmqpQueueOptions = DEFAULT_AMQP_QUEUE,
): EventTransport {
  return broker.kind === 'redis'
    ? new RedisEventTransport(broker, handlers, log)
    : new AmqpEventTransport(broker, handlers, log, amqpQueue);
}

export type { EventTransport, TransportHandlers } from './types';
