// A cheap load generator's wire formats: Celery task events exactly as a
// client and a worker put them on the broker. On Redis: the kombu envelope
// (base64 JSON body) PUBLISHed on the fanout channel /{db}.celeryev/<routing
// key>, written straight to a socket as RESP commands, so that the generator,
// not the collector, is the lighter process on a 2-core machine. On RabbitMQ:
// the raw JSON body on the durable `celeryev` topic exchange, with Celery's
// properties. JSON is written from templates for the same reason; the shapes
// match the captures in test/fixtures/celery-5.2.6 (docs/celery-protocol.md).

import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { Channel, ChannelModel } from 'amqplib';

export const WORKER = 'bench-worker@stalk';
/** task-sent, task-received, task-started, task-succeeded (or task-failed). */
export const EVENTS_PER_TASK = 4;
export const CLIENT = 'bench-client@stalk';

let clock = 0;
const tagPrefix = randomUUID().slice(0, 24);
let tag = 0;

function str(value: string): string {
  return JSON.stringify(value);
}

function head(type: string, hostname: string, uuid: string): string {
  clock += 1;
  return `{"hostname": ${str(hostname)}, "utcoffset": 0, "pid": 4242, "clock": ${clock}, "timestamp": ${Date.now() / 1000}, "type": "${type}", "uuid": "${uuid}"`;
}

export function taskSent(uuid: string, n: number, name = `bench.task_${n % 20}`): string {
  return `${head('task-sent', CLIENT, uuid)}, "root_id": "${uuid}", "parent_id": null, "name": ${str(name)}, "args": "(${n}, 'order-${n}')", "kwargs": "{'customer': 'c${n % 1000}', 'priority': ${n % 3}}", "retries": 0, "eta": null, "expires": null, "queue": "celery", "exchange": "", "routing_key": "celery"}`;
}

export function taskReceived(uuid: string, n: number, name = `bench.task_${n % 20}`): string {
  return `${head('task-received', WORKER, uuid)}, "name": ${str(name)}, "args": "(${n}, 'order-${n}')", "kwargs": "{'customer': 'c${n % 1000}', 'priority': ${n % 3}}", "root_id": "${uuid}", "parent_id": null, "retries": 0, "eta": null, "expires": null}`;
}

export function taskStarted(uuid: string): string {
  return `${head('task-started', WORKER, uuid)}}`;
}

/** Nine in ten succeed; the tenth fails, so failures and runtimes both get exercised. */
export function taskFinished(uuid: string, n: number): string {
  if (n % 10 === 0) {
    return `${head('task-failed', WORKER, uuid)}, "exception": "ValueError('order ${n} refused')", "traceback": "Traceback (most recent call last):\\n  ...\\nValueError"}`;
  }
  return `${head('task-succeeded', WORKER, uuid)}, "result": "{'order': ${n}, 'ok': True}", "runtime": ${0.001 + (n % 100) / 1000}}`;
}

export function envelope(bodyJson: string, routingKey: string, hostname: string): string {
  tag += 1;
  const body = Buffer.from(bodyJson, 'utf8').toString('base64');
  return `{"body": "${body}", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"hostname": ${str(hostname)}}, "properties": {"delivery_mode": 1, "delivery_info": {"exchange": "celeryev", "routing_key": "${routingKey}"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "${tagPrefix}${tag.toString(16).padStart(12, '0')}"}}`;
}

/**
 * PUBLISH over a raw connection, pipelined. Writes are buffered in the
 * process up to `bufferLimit` bytes before publish() asks the caller to wait
 * for drain(), so a publisher stalls only when the socket really is behind.
 */
export class RespPublisher {
  private readonly socket: Socket;
  private replies = 0;
  private sent = 0;
  private waiting: (() => void) | undefined;
  private pending = '';
  /** The reply being read: its type byte, and its integer so far. */
  private replyType = -1;
  private replyValue = 0;
  /** PUBLISH replies of 0: messages Redis delivered to no subscriber. */
  unheard = 0;
  /** Error replies (`-ERR ...`). */
  errors = 0;

  private constructor(
    socket: Socket,
    private readonly bufferLimit: number,
  ) {
    this.socket = socket;
    socket.setNoDelay(true);
    // Replies are small integers (a PUBLISH's subscriber count), +OK or -ERR:
    // read them a byte at a time, across chunk boundaries.
    socket.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i]!;
        if (this.replyType === -1) {
          this.replyType = byte;
          this.replyValue = 0;
        } else if (byte === 10) {
          if (this.replyType === 0x3a /* ':' */ && this.replyValue === 0) this.unheard += 1;
          else if (this.replyType === 0x2d /* '-' */) this.errors += 1;
          this.replies += 1;
          this.replyType = -1;
        } else if (byte >= 0x30 && byte <= 0x39) this.replyValue = this.replyValue * 10 + (byte - 0x30);
      }
      if (this.waiting && this.replies >= this.sent) {
        const done = this.waiting;
        this.waiting = undefined;
        done();
      }
    });
  }

  static open(url: string, bufferLimit = 16 * 1024): Promise<RespPublisher> {
    const parsed = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: parsed.hostname, port: Number(parsed.port || 6379) }, () => {
        const publisher = new RespPublisher(socket, bufferLimit);
        if (parsed.password)
          publisher.command(
            parsed.username
              ? ['AUTH', decodeURIComponent(parsed.username), decodeURIComponent(parsed.password)]
              : ['AUTH', decodeURIComponent(parsed.password)],
          );
        resolve(publisher);
      });
      socket.once('error', reject);
    });
  }

  private command(args: string[]): boolean {
    let frame = `*${args.length}\r\n`;
    for (const arg of args) frame += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
    this.sent += 1;
    // Commands written in one turn of the event loop leave as one string in
    // one write: one system call, and little garbage per command.
    if (this.pending === '') process.nextTick(() => this.flush());
    this.pending += frame;
    return this.pending.length + this.socket.writableLength < this.bufferLimit;
  }

  private flush(): void {
    const pending = this.pending;
    this.pending = '';
    if (pending !== '') this.socket.write(pending);
  }

  /** Returns false when more than `bufferLimit` bytes wait to be written: await drain() before writing more. */
  publish(channel: string, message: string): boolean {
    return this.command(['PUBLISH', channel, message]);
  }

  drain(): Promise<void> {
    this.flush();
    if (this.socket.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('drain', resolve));
  }

  /** Resolves when Redis has answered every command sent so far. */
  settled(): Promise<void> {
    this.flush();
    if (this.replies >= this.sent) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  close(): void {
    this.flush();
    this.socket.end();
  }
}

/** One broker's side of Celery's event exchange, for a generator. */
export interface EventPublisher {
  readonly kind: 'redis' | 'amqp';
  /**
   * One message on the `celeryev` exchange: one event's JSON, or a JSON
   * array of events for `task.multi`. Returns false when the caller should
   * await drain() before publishing more.
   */
  publish(routingKey: string, bodyJson: string, hostname: string): boolean;
  drain(): Promise<void>;
  /** Resolves once the broker has processed every message published so far. */
  settled(): Promise<void>;
  /** Messages the broker took but delivered to no one (Redis: PUBLISH answered 0; RabbitMQ: returned unroutable). */
  undelivered(): number;
  close(): Promise<void>;
}

/** Bytes (Redis) or frames (RabbitMQ) a publisher buffers in the process before it waits. */
const REDIS_BUFFER_LIMIT = 4 * 1024 * 1024;
const AMQP_FRAME_LIMIT = 16_384;

export async function openEventPublisher(url: string, connectionName = 'stalk-bench'): Promise<EventPublisher> {
  if (/^amqps?:\/\//i.test(url)) return openAmqpPublisher(url, connectionName);
  if (!/^rediss?:\/\//i.test(url)) throw new Error(`unsupported broker URL ${url} (redis:// or amqp://)`);
  const db = Number(new URL(url).pathname.slice(1) || 0);
  const publisher = await RespPublisher.open(url, REDIS_BUFFER_LIMIT);
  const prefix = `/${db}.celeryev/`;
  return {
    kind: 'redis',
    publish: (routingKey, bodyJson, hostname) => publisher.publish(prefix + routingKey, envelope(bodyJson, routingKey, hostname)),
    drain: () => publisher.drain(),
    settled: async () => {
      await publisher.settled();
      if (publisher.errors > 0) throw new Error(`Redis refused ${publisher.errors} commands`);
    },
    undelivered: () => publisher.unheard,
    close: async () => publisher.close(),
  };
}

/**
 * RabbitMQ as Celery publishes events (see docs/celery-protocol.md and test/
 * fixtures/celery-5.2.6/amqp-capture.jsonl): no publisher confirms (kombu's
 * default), but `mandatory`, so that a message no queue took comes back and
 * is counted. settled() is a round trip on the same channel: RabbitMQ handles
 * a channel's frames in order, so its answer means every publish before it
 * was routed.
 */
async function openAmqpPublisher(url: string, connectionName: string): Promise<EventPublisher> {
  const { connect } = await import('amqplib');
  const connection: ChannelModel = await connect(url, { clientProperties: { connection_name: connectionName } });
  const channel: Channel = await connection.createChannel({ highWaterMark: AMQP_FRAME_LIMIT });
  let failure: Error | undefined;
  channel.on('error', (error: Error) => (failure = error));
  connection.on('error', (error: Error) => (failure = error));
  let returned = 0;
  channel.on('return', () => (returned += 1));
  await channel.assertExchange('celeryev', 'topic', { durable: true, autoDelete: false });
  return {
    kind: 'amqp',
    publish: (routingKey, bodyJson, hostname) => {
      if (failure) throw failure;
      return channel.publish('celeryev', routingKey, Buffer.from(bodyJson, 'utf8'), {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        headers: { hostname },
        deliveryMode: 1,
        priority: 0,
        mandatory: true,
      });
    },
    drain: () => new Promise((resolve) => channel.once('drain', resolve)),
    settled: async () => {
      await channel.checkExchange('celeryev');
      if (failure) throw failure;
    },
    undelivered: () => returned,
    close: async () => {
      await connection.close().catch(() => undefined);
    },
  };
}
