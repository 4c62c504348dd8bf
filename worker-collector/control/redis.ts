// Control for Redis brokers: the pidbox mailbox (pidbox-redis.ts), the task
// publisher (redis-publisher.ts), the queue probe (redis-queues.ts) and, when
// Celery's result backend is Redis too, the result backend (result-backend.ts).

import type { BrokerUrl } from '../transport/broker-url';
import { RedisMailbox } from './pidbox-redis';
import { RedisTaskPublisher, type RedisTaskPublisherOptions } from './redis-publisher';
import { RedisQueueProbe } from './redis-queues';
import { RedisResultBackend } from './result-backend';
import type { ResultBackend } from './types';

export interface RedisControl {
  mailbox: RedisMailbox;
  publisher: RedisTaskPublisher;
  queues: RedisQueueProbe;
  /** Absent without a result backend URL. */
  results?: ResultBackend | undefined;
  close(): Promise<void>;
}

/**
 * Everything control needs on a Redis broker. `resultBackendUrl` (Celery's
 * result_backend, e.g. redis://localhost:6379/1) may name another database or
 * server; only redis:// and rediss:// backends are supported.
 */
export function createRedisControl(brokerUrl: BrokerUrl, resultBackendUrl?: string, options: RedisTaskPublisherOptions = {}): RedisControl {
  if (brokerUrl.kind !== 'redis') throw new Error(`createRedisControl: ${brokerUrl.display} is not a Redis broker`);
  // The backend URL first: it is the one that can be refused.
  const results = resultBackendUrl ? new RedisResultBackend(resultBackendUrl, options) : undefined;
  const mailbox = new RedisMailbox(brokerUrl, options);
  const publisher = new RedisTaskPublisher(brokerUrl, options);
  const queues = new RedisQueueProbe(brokerUrl, options);
  return {
    mailbox,
    publisher,
    queues,
    results,
    async close() {
      await Promise.allSettled([mailbox.close(), publisher.close(), queues.close(), results?.close()]);
    },
  };
}
