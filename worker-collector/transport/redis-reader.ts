// The Redis event reader thread (see transport/redis.ts). It owns the
// PSUBSCRIBE connection and does nothing but move messages: each turn of its
// event loop packs what the socket delivered into one transferable buffer
// (4-byte length, then the message, for each) and hands it over. So the
// socket is drained whatever the collector's thread is doing, and Redis never
// sees a slow subscriber to cut off. What the collector has not consumed yet
// is bounded by bytes: past the bound, messages are shed here, unread, and
// counted as `overload`; oversized ones as `too-large`.

import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { createBackoff } from './backoff';
import { LargeMessageReclaimer } from './large-messages';

export interface ReaderData {
  url: string;
  tls: boolean;
  pattern: string;
  maxEventBytes: number;
  /** Bytes handed over and not consumed yet, past which messages are shed. */
  maxBacklogBytes: number;
}

export type ToReader = { kind: 'consumed'; bytes: number } | { kind: 'stop' };

export type FromReader =
  | { kind: 'frames'; frames: ArrayBuffer; bytes: number; tooLarge: number; shed: number }
  | { kind: 'connection'; connected: boolean; delayMs?: number }
  | { kind: 'log'; level: 'debug' | 'info' | 'warn'; message: string }
  | { kind: 'started' }
  | { kind: 'stopped' };

/** Hand over at least this often in bytes, even within one turn of the loop. */
const CHUNK_BYTES = 256 * 1024;

const port = parentPort!;
const data = workerData as ReaderData;
const send = (message: FromReader, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer ?? []);
const backoff = createBackoff();
const reclaimer = new LargeMessageReclaimer();
let stopping = false;
let backlog = 0;
let pending: Buffer[] = [];
let pendingBytes = 0;
let tooLarge = 0;
let shed = 0;
let scheduled = false;

function handOver(): void {
  scheduled = false;
  if (pending.length === 0 && tooLarge === 0 && shed === 0) return;
  const frames = new ArrayBuffer(pendingBytes);
  const view = Buffer.from(frames);
  let offset = 0;
  for (const message of pending) {
    view.writeUInt32LE(message.length, offset);
    message.copy(view, offset + 4);
    offset += 4 + message.length;
  }
  send({ kind: 'frames', frames, bytes: pendingBytes, tooLarge, shed }, [frames]);
  backlog += pendingBytes;
  pending = [];
  pendingBytes = 0;
  tooLarge = 0;
  shed = 0;
}

function later(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(handOver);
}

const subscriber = new Redis(data.url, {
  lazyConnect: true,
  maxRetriesPerRequest: null,
  connectTimeout: 5_000,
  retryStrategy: () => (stopping ? null : backoff.next()),
  ...(data.tls ? { tls: {} } : {}),
});
subscriber.on('ready', () => {
  backoff.reset();
  send({ kind: 'connection', connected: true });
});
subscriber.on('close', () => send({ kind: 'connection', connected: false }));
subscriber.on('reconnecting', (delayMs: number) => send({ kind: 'connection', connected: false, delayMs }));
subscriber.on('error', (error: Error) => send({ kind: 'log', level: 'debug', message: `redis events connection error: ${error.message}` }));
// The Buffer event: ioredis makes a string only for 'pmessage' listeners.
subscriber.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, message: Buffer) => {
  reclaimer.noteMessage(message.length);
  if (message.length > data.maxEventBytes) tooLarge += 1;
  else if (backlog + pendingBytes + message.length > data.maxBacklogBytes) shed += 1;
  else {
    pending.push(message);
    pendingBytes += 4 + message.length;
    if (pendingBytes >= CHUNK_BYTES) handOver();
  }
  later();
});

port.on('message', (message: ToReader) => {
  if (message.kind === 'consumed') {
    backlog -= message.bytes;
    return;
  }
  stopping = true;
  reclaimer.stop();
  handOver();
  void subscriber
    .quit()
    .catch(() => undefined)
    .finally(() => {
      subscriber.disconnect();
      send({ kind: 'stopped' });
    });
});

try {
  await subscriber.connect();
  await subscriber.psubscribe(data.pattern);
} catch (error) {
  // ioredis keeps retrying with retryStrategy and subscribes again when it reconnects.
  send({ kind: 'log', level: 'warn', message: `unreachable at start (${(error as Error).message}); retrying` });
  if (!stopping) subscriber.psubscribe(data.pattern).catch(() => undefined);
}
send({ kind: 'started' });
