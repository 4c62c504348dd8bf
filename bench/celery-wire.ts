// A cheap load generator for the ingest benchmark: Celery task events in the
// exact Redis wire format (kombu envelope, base64 JSON body, fanout channel
// /{db}.celeryev/<routing key>), written straight to a socket as RESP
// PUBLISH commands so that the generator, not the collector, is the lighter
// process on a 2-core machine. JSON is written from templates for the same
// reason; the shapes match the captures in ../shared/fixtures.

import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export const WORKER = 'bench-worker@stalk';
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

/** PUBLISH over a raw connection, pipelined, with socket back-pressure. */
export class RespPublisher {
  private readonly socket: Socket;
  private replies = 0;
  private sent = 0;
  private waiting: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    // Replies are small integers (subscriber counts): just count the lines.
    socket.on('data', (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.replies += 1;
      if (this.waiting && this.replies >= this.sent) {
        const done = this.waiting;
        this.waiting = undefined;
        done();
      }
    });
  }

  static open(url: string): Promise<RespPublisher> {
    const parsed = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: parsed.hostname, port: Number(parsed.port || 6379) }, () => {
        const publisher = new RespPublisher(socket);
        if (parsed.password) publisher.command(['AUTH', decodeURIComponent(parsed.password)]);
        resolve(publisher);
      });
      socket.once('error', reject);
    });
  }

  private command(args: string[]): boolean {
    let frame = `*${args.length}\r\n`;
    for (const arg of args) frame += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
    this.sent += 1;
    return this.socket.write(frame);
  }

  /** Returns false when the socket buffer is full: await drain() before writing more. */
  publish(channel: string, message: string): boolean {
    return this.command(['PUBLISH', channel, message]);
  }

  drain(): Promise<void> {
    return new Promise((resolve) => this.socket.once('drain', resolve));
  }

  /** Resolves when Redis has answered every command sent so far. */
  settled(): Promise<void> {
    if (this.replies >= this.sent) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  close(): void {
    this.socket.end();
  }
}
