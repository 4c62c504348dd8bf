// Queue lengths on a Redis broker: LLEN of a queue and its priority
// sub-queues, as kombu's Redis transport counts them.

import type { Redis } from 'ioredis';
import { commandClient, failure, ready, type RedisControlOptions } from '../redis-connection';
import type { BrokerUrl } from '../transport/broker-url';
import { redisQueueKeys } from './task-message';
import type { QueueLength, QueueProbe } from './types';

export class RedisQueueProbe implements QueueProbe {
  private readonly client: Redis;
  private readonly connectWaitMs: number;
  private closed = false;

  constructor(
    private readonly broker: BrokerUrl,
    options: RedisControlOptions = {},
  ) {
    this.connectWaitMs = options.connectWaitMs ?? 2_000;
    this.client = commandClient(broker, 'stalk-queue-probe', () => this.closed);
  }

  async lengths(names: string[]): Promise<QueueLength[]> {
    if (this.closed) throw new Error('queue probe is closed');
    if (names.length === 0) return [];
    const display = `broker ${this.broker.display}`;
    let results: [Error | null, unknown][] | null;
    try {
      await ready(this.client, display, this.connectWaitMs);
      const pipeline = this.client.pipeline();
      for (const name of names) for (const key of redisQueueKeys(name)) pipeline.llen(key);
      results = await pipeline.exec();
    } catch (error) {
      throw failure(display, error);
    }
    if (!results) throw new Error(`${display}: pipeline aborted`);
    const per = redisQueueKeys('').length;
    return names.map((name, i) => {
      let messages = 0;
      for (let j = 0; j < per; j++) {
        const entry = results[i * per + j];
        if (!entry) continue;
        const [error, value] = entry;
        // A key of another type (not a list) counts as empty, as kombu's _size does.
        if (!error && typeof value === 'number') messages += value;
      }
      return { name, messages, ready: null, unacked: null, consumers: null };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client.quit().catch(() => undefined);
    this.client.disconnect();
  }
}
