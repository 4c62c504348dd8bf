// Control for Redis brokers, the way kombu's Redis transport does it
// (kombu/pidbox.py, kombu/transport/redis.py; formats in
// ../../../shared/celery-protocol.md):
//
// - RedisMailbox: pidbox broadcasts are `PUBLISH /{db}.celery.pidbox`; replies
//   come back through the `reply.celery.pidbox` direct exchange, i.e. workers
//   look up `_kombu.binding.reply.celery.pidbox` and LPUSH into
//   `<oid>.reply.celery.pidbox`. One BRPOP loop on a dedicated connection reads
//   that list and hands each reply to the call waiting for its ticket, so many
//   calls can be in flight at once.
// - RedisTaskPublisher: protocol-2 task messages LPUSHed onto `<queue>` (or its
//   priority sub-queue `<queue>\x06\x16<3|6|9>`).
// - RedisQueueProbe: LLEN of a queue and its priority sub-queues.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { errorMessage, type Logger } from '../../src/shared/log';
import { BINDING_PREFIX, KOMBU_SEP, PIDBOX_EXCHANGE, REPLY_EXCHANGE, redisEnvelope } from '../kombu-wire';
import { commandClient, failure, NOOP_LOGGER, ready, type RedisControlOptions } from '../redis-connection';
import { createBackoff } from '../transport/backoff';
import type { BrokerUrl } from '../transport/broker-url';
import { pidboxMessage } from './pidbox';
import { RedisResultBackend } from './result-backend';
import { buildTaskMessage, redisQueueKey, redisQueueKeys, redisTaskEnvelope } from './task-message';
import type { BroadcastOptions, Mailbox, OutgoingTask, QueueLength, QueueProbe, Replies, ResultBackend, TaskPublisher } from './types';


interface PendingCall {
  replies: Replies;
  count: number;
  limit: number | undefined;
  finish: () => void;
}

/** Why a reply could not be used (counted in `RedisMailbox.malformed`). */
export type MalformedReply = 'envelope' | 'body' | 'ticket';

/** Decode one reply from the reply list: the kombu envelope around `{hostname: result}`, ticket in the headers. */
export function decodePidboxReply(raw: string): { ticket: string; clock: number | undefined; expires: number | undefined; body: Replies } | MalformedReply {
  let envelope: unknown;
  try {
    envelope = JSON.parse(raw);
  } catch {
    return 'envelope';
  }
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) return 'envelope';
  const record = envelope as Record<string, unknown>;
  const headers = record.headers;
  if (typeof headers !== 'object' || headers === null) return 'ticket';
  const { ticket, clock, expires } = headers as Record<string, unknown>;
  if (typeof ticket !== 'string' || ticket === '') return 'ticket';
  if (typeof record.body !== 'string') return 'body';
  const contentType = record['content-type'];
  if (contentType !== undefined && contentType !== null && contentType !== 'application/json') return 'body';
  const properties = record.properties;
  const encoding = typeof properties === 'object' && properties !== null ? (properties as Record<string, unknown>).body_encoding : undefined;
  let text: string;
  if (encoding === 'base64') text = Buffer.from(record.body, 'base64').toString('utf8');
  else if (encoding === undefined || encoding === null) text = record.body;
  else return 'body';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'body';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body';
  return {
    ticket,
    clock: typeof clock === 'number' ? clock : undefined,
    expires: typeof expires === 'number' ? expires : undefined,
    body: body as Replies,
  };
}

export class RedisMailbox implements Mailbox {
  /** This mailbox's id: the reply routing key, `<oid>.reply.celery.pidbox` is its reply list. */
  readonly oid = randomUUID();
  /** Replies that could not be decoded, by reason. */
  readonly malformed: Record<MalformedReply, number> = { envelope: 0, body: 0, ticket: 0 };
  /** Replies that arrived for a call that had already finished (or another requester's ticket). */
  lateReplies = 0;
  private readonly client: Redis;
  private readonly reader: Redis;
  private readonly pending = new Map<string, PendingCall>();
  private readonly log: Logger;
  private readonly connectWaitMs: number;
  /** Delays between failed reads (the connection's own retries use another). */
  private readonly readBackoff = createBackoff();
  private clock = 0;
  private closed = false;
  private loop: Promise<void> | undefined;
  private wakeReader: (() => void) | undefined;

  constructor(
    private readonly broker: BrokerUrl,
    options: RedisControlOptions = {},
  ) {
    this.log = options.log ?? NOOP_LOGGER;
    this.connectWaitMs = options.connectWaitMs ?? 2_000;
    const short = this.oid.slice(0, 8);
    this.client = commandClient(broker, `stalk-pidbox-${short}`, () => this.closed);
    const retryBackoff = createBackoff();
    // The reader may wait out an outage: its BRPOP is resent once the connection is back.
    this.reader = new Redis(broker.url, {
      lazyConnect: true,
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      connectTimeout: 5_000,
      connectionName: `stalk-pidbox-replies-${short}`,
      retryStrategy: () => (this.closed ? null : retryBackoff.next()),
      ...(broker.tls ? { tls: {} } : {}),
    });
    this.reader.on('ready', () => retryBackoff.reset());
    this.reader.on('error', (error: Error) => this.log.debug(`pidbox reply reader: ${error.message}`));
  }

  get replyQueue(): string {
    return `${this.oid}.${REPLY_EXCHANGE}`;
  }

  /** The member of `_kombu.binding.reply.celery.pidbox` that routes replies to this mailbox. */
  get binding(): string {
    return [this.oid, '', this.replyQueue].join(KOMBU_SEP);
  }

  async call(method: string, args: Record<string, unknown>, options: BroadcastOptions): Promise<Replies> {
    if (this.closed) throw new Error('mailbox is closed');
    const destination = options.destination;
    // kombu treats an empty destination as "everyone"; here it means nobody.
    if (destination && destination.length === 0) return {};
    const timeoutMs = Math.max(0, options.timeoutMs);
    this.clock += 1;
    const message = pidboxMessage(method, args, {
      ...(destination ? { destination } : {}),
      timeout: timeoutMs / 1000,
      ...(options.reply ? { replyTo: this.oid } : {}),
      clock: this.clock,
    });
    const envelope = redisEnvelope(message.body, message.headers, PIDBOX_EXCHANGE, '');
    const channel = `/${this.broker.db}.${PIDBOX_EXCHANGE}`;
    const display = `broker ${this.broker.display}`;

    try {
      await ready(this.client, display, this.connectWaitMs);
    } catch (error) {
      throw failure(display, error);
    }

    if (!options.reply) {
      try {
        await this.client.publish(channel, envelope);
      } catch (error) {
        throw failure(display, error);
      }
      return {};
    }

    const ticket = message.body.ticket as string;
    const limit = options.limit ?? (destination ? destination.length : undefined);
    let resolveCall!: (replies: Replies) => void;
    const done = new Promise<Replies>((resolve) => {
      resolveCall = resolve;
    });
    let timer: NodeJS.Timeout | undefined;
    const call: PendingCall = {
      replies: {},
      count: 0,
      limit,
      finish: () => {
        if (timer) clearTimeout(timer);
        this.pending.delete(ticket);
        resolveCall(call.replies);
      },
    };
    // Registered before publishing: a fast worker may answer before PUBLISH returns.
    this.pending.set(ticket, call);
    this.startReader();
    try {
      // The binding is (re)declared with every request, as kombu does: cheap, and
      // it survives a Redis restart that lost it. Same connection, so it lands first.
      const results = await this.client
        .pipeline()
        .sadd(`${BINDING_PREFIX}${REPLY_EXCHANGE}`, this.binding)
        .publish(channel, envelope)
        .exec();
      if (!results) throw new Error('pipeline aborted');
      const failed = results.find(([error]) => error);
      if (failed) throw failed[0];
    } catch (error) {
      this.pending.delete(ticket);
      throw failure(display, error);
    }
    if (limit !== undefined && limit <= 0) call.finish();
    else timer = setTimeout(call.finish, timeoutMs);
    return done;
  }

  private startReader(): void {
    if (this.loop || this.closed) return;
    this.loop = this.readLoop().catch((error: unknown) => {
      this.log.error(`pidbox reply reader stopped: ${errorMessage(error)}`);
    });
  }

  private async readLoop(): Promise<void> {
    while (!this.closed) {
      let item: [string, string] | null;
      try {
        // A short block so that an idle loop notices close() and outages.
        item = await this.reader.brpop(this.replyQueue, 1);
        this.readBackoff.reset();
      } catch (error) {
        if (this.closed) return;
        const delay = this.readBackoff.next();
        this.log.debug(`pidbox reply read failed (${errorMessage(error)}); retrying in ${delay} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.wakeReader = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeReader = undefined;
        continue;
      }
      if (item) this.dispatch(item[1]);
    }
  }

  /** Hand one raw reply to the call waiting for its ticket; never throws. */
  private dispatch(raw: string): void {
    const reply = decodePidboxReply(raw);
    if (typeof reply === 'string') {
      this.malformed[reply] += 1;
      this.log.debug(`pidbox: skipped a malformed reply (${reply}): ${raw.slice(0, 200)}`);
      return;
    }
    if (reply.clock !== undefined) this.clock = Math.max(this.clock, reply.clock);
    if (reply.expires && Date.now() / 1000 > reply.expires) return;
    const call = this.pending.get(reply.ticket);
    if (!call) {
      this.lateReplies += 1;
      return;
    }
    for (const [hostname, result] of Object.entries(reply.body)) {
      call.replies[hostname] = result;
      call.count += 1;
    }
    if (call.limit !== undefined && call.count >= call.limit) call.finish();
  }

  /** Calls waiting for replies right now. */
  get inFlight(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Whoever waits gets what arrived.
    for (const call of [...this.pending.values()]) call.finish();
    if (this.client.status === 'ready') {
      // As kombu does after collecting: drop the binding and whatever is left in the list.
      await this.client
        .pipeline()
        .srem(`${BINDING_PREFIX}${REPLY_EXCHANGE}`, this.binding)
        .del(this.replyQueue)
        .exec()
        .catch(() => undefined);
    }
    this.reader.disconnect();
    this.wakeReader?.();
    await this.loop;
    await this.client.quit().catch(() => undefined);
    this.client.disconnect();
  }
}

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
