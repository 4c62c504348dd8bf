// The pidbox mailbox on a Redis broker, the way kombu's Redis transport
// carries it (kombu/transport/redis.py): a broadcast is `PUBLISH
// /{db}.celery.pidbox` of kombu's JSON envelope; workers route replies
// through the `reply.celery.pidbox` direct exchange, i.e. they look up
// `_kombu.binding.reply.celery.pidbox` and LPUSH onto this mailbox's list
// `<oid>.reply.celery.pidbox`. One BRPOP loop on a dedicated connection reads
// that list; calls, tickets and filtering are the core's (pidbox.ts).

import { Redis } from 'ioredis';
import { errorMessage } from '../../src/shared/log';
import { BINDING_PREFIX, KOMBU_SEP, PIDBOX_EXCHANGE, REPLY_EXCHANGE, redisEnvelope } from '../kombu-wire';
import { commandClient, failure, NOOP_LOGGER, ready, type RedisControlOptions } from '../redis-connection';
import { createBackoff } from '../transport/backoff';
import type { BrokerUrl } from '../transport/broker-url';
import type { PidboxMessage } from '../transport/types';
import { type MalformedReply, PidboxMailbox, type PidboxReply, replyBody, replyHeaders } from './pidbox';

/** Decode one reply from the reply list: the kombu envelope around `{hostname: result}`, ticket in the headers. */
export function decodePidboxReply(raw: string): PidboxReply | MalformedReply {
  let envelope: unknown;
  try {
    envelope = JSON.parse(raw);
  } catch {
    return 'envelope';
  }
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) return 'envelope';
  const record = envelope as Record<string, unknown>;
  const headers = replyHeaders(record.headers);
  if (typeof headers === 'string') return headers;
  if (typeof record.body !== 'string') return 'body';
  const properties = record.properties;
  const encoding =
    typeof properties === 'object' && properties !== null ? (properties as Record<string, unknown>).body_encoding : undefined;
  let text: string;
  if (encoding === 'base64') text = Buffer.from(record.body, 'base64').toString('utf8');
  else if (encoding === undefined || encoding === null) text = record.body;
  else return 'body';
  const body = replyBody(text, record['content-type']);
  return typeof body === 'string' ? body : { ...headers, body };
}

export class RedisMailbox extends PidboxMailbox {
  private readonly client: Redis;
  private readonly reader: Redis;
  private readonly connectWaitMs: number;
  /** Delays between failed reads (the connection's own retries use another). */
  private readonly readBackoff = createBackoff();
  private loop: Promise<void> | undefined;
  private wakeReader: (() => void) | undefined;

  constructor(
    private readonly broker: BrokerUrl,
    options: RedisControlOptions = {},
  ) {
    super(options.log ?? NOOP_LOGGER);
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

  /** The member of `_kombu.binding.reply.celery.pidbox` that routes replies to this mailbox. */
  get binding(): string {
    return [this.oid, '', this.replyQueue].join(KOMBU_SEP);
  }

  protected async publish(message: PidboxMessage, replies: boolean): Promise<void> {
    const envelope = redisEnvelope(message.body, message.headers, PIDBOX_EXCHANGE, '');
    const channel = `/${this.broker.db}.${PIDBOX_EXCHANGE}`;
    const display = `broker ${this.broker.display}`;
    try {
      await ready(this.client, display, this.connectWaitMs);
      if (!replies) {
        await this.client.publish(channel, envelope);
        return;
      }
      this.startReader();
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
      throw failure(display, error);
    }
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
      if (item) this.receive(decodePidboxReply(item[1]), item[1]);
    }
  }

  protected async release(): Promise<void> {
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
