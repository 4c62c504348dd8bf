// The broker URL's scheme picks the transport.

import type { Logger } from '../../src/shared/log';
import { DEFAULT_MAX_EVENT_BYTES } from '../decode';
import { type AmqpQueueOptions, AmqpEventTransport, DEFAULT_AMQP_QUEUE } from './amqp';
import type { BrokerUrl } from './broker-url';
import { type RedisReading, RedisEventTransport } from './redis';
import type { EventTransport, TransportHandlers } from './types';

export function createEventTransport(
  broker: BrokerUrl,
  handlers: TransportHandlers,
  log: Logger,
  amqpQueue: AmqpQueueOptions = DEFAULT_AMQP_QUEUE,
  /** Larger messages are counted as too-large and never parsed (`--max-event-bytes`). */
  maxEventBytes = DEFAULT_MAX_EVENT_BYTES,
  /** Redis: how the reader thread bounds what it holds (backlog, disk spool). */
  redis: Omit<RedisReading, 'maxEventBytes'> = {},
): EventTransport {
  return broker.kind === 'redis'
    ? new RedisEventTransport(broker, handlers, log, { ...redis, maxEventBytes })
    : new AmqpEventTransport(broker, handlers, log, amqpQueue, maxEventBytes);
}

export type { EventTransport, TransportHandlers } from './types';
