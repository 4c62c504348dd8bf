// Celery task messages on a Redis broker, as kombu's Redis transport sends
// them: protocol 2 (task-message.ts) in kombu's JSON envelope, LPUSHed onto
// `<queue>` or its priority sub-queue `<queue>\x06\x16<3|6|9>`.

import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BINDING_PREFIX, KOMBU_SEP } from '../kombu-wire';
import { commandClient, failure, ready, type RedisControlOptions } from '../redis-connection';
import type { BrokerUrl } from '../transport/broker-url';
import { buildTaskMessage, redisQueueKey, redisTaskEnvelope } from './task-message';
import type { OutgoingTask, TaskPublisher } from './types';

export interface RedisTaskPublisherOptions extends RedisControlOptions {
  /** headers.origin of the tasks sent. */
  origin?: string;
}

export class RedisTaskPublisher implements TaskPublisher {
  /** properties.reply_to of every message (Celery: the app's oid). */
  readonly oid = randomUUID();
  private readonly client: Redis;
  private readonly connectWaitMs: number;
  private readonly declared = new Set<string>();
  private closed = false;

  constructor(
    private readonly broker: BrokerUrl,
    private readonly options: RedisTaskPublisherOptions = {},
  ) {
    this.connectWaitMs = options.connectWaitMs ?? 2_000;
    this.client = commandClient(broker, `stalk-publisher-${this.oid.slice(0, 8)}`, () => this.closed);
  }

  async send(task: OutgoingTask): Promise<string> {
    if (this.closed) throw new Error('publisher is closed');
    const message = buildTaskMessage(task, { replyTo: this.oid, ...(this.options.origin ? { origin: this.options.origin } : {}) });
    const envelope = redisTaskEnvelope(message);
    const display = `broker ${this.broker.display}`;
    try {
      await ready(this.client, display, this.connectWaitMs);
      const pipeline = this.client.pipeline();
      if (!this.declared.has(message.queue)) {
        // Celery declares the queue when it publishes: a binding from the
        // queue's own direct exchange, which is how queues are found later.
        pipeline.sadd(`${BINDING_PREFIX}${message.queue}`, [message.queue, '', message.queue].join(KOMBU_SEP));
      }
      pipeline.lpush(redisQueueKey(message.queue, message.properties.priority), envelope);
      const results = await pipeline.exec();
      if (!results) throw new Error('pipeline aborted');
      const failed = results.find(([error]) => error);
      if (failed) throw failed[0];
      this.declared.add(message.queue);
    } catch (error) {
      throw failure(display, error);
    }
    return message.id;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client.quit().catch(() => undefined);
    this.client.disconnect();
  }
}
