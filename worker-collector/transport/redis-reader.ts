// The Redis event reader thread (see transport/redis.ts). It owns the
// PSUBSCRIBE connection, opens each message's kombu envelope (the first half
// of decoding: decode/index.ts, redisMessageBody) and hands the bodies over:
// each turn of its event loop packs what the socket delivered into one
// transferable buffer of frames (4-byte length, a kind byte, then the body's
// JSON text, or the reason an envelope was refused). So the socket is
// drained whatever the collector's thread is doing, Redis never sees a slow
// subscriber to cut off, and the collector thread parses only event bodies.
// What the collector has not consumed yet is bounded by bytes: past the
// bound, messages are shed here, unopened, and counted as `overload`;
// oversized ones as `too-large`.

import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { redisMessageBody } from '../decode';
import { createBackoff } from './backoff';
import { FRAME_BODY, FRAME_HEADER, FRAME_REFUSED } from './frames';
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
  | { kind: 'frames'; frames: ArrayBuffer; bytes: number; shed: number }
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
let chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
let used = 0;
let shed = 0;
let scheduled = false;

function handOver(): void {
  scheduled = false;
  if (used === 0 && shed === 0) return;
  const frames = chunk.buffer;
  send({ kind: 'frames', frames, bytes: used, shed }, [frames]);
  backlog += used;
  chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  used = 0;
  shed = 0;
}

function later(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(handOver);
}

/** Append one frame; its text is at most 3 bytes a UTF-16 unit once encoded. */
function frame(kind: number, text: string): void {
  const most = FRAME_HEADER + text.length * 3;
  if (used + most > chunk.length) {
    handOver();
    if (most > chunk.length) chunk = Buffer.allocUnsafeSlow(most);
  }
  const length = chunk.write(text, used + FRAME_HEADER, kind === FRAME_BODY ? 'utf8' : 'latin1');
  chunk.writeUInt32LE(length, used);
  chunk[used + 4] = kind;
  used += FRAME_HEADER + length;
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
  // An oversized message is refused unread by redisMessageBody, as too-large, not shed.
  if (message.length <= data.maxEventBytes && backlog + used + message.length > data.maxBacklogBytes) shed += 1;
  else {
    const body = redisMessageBody(message, data.maxEventBytes);
    if (typeof body === 'string') frame(FRAME_BODY, body);
    else frame(FRAME_REFUSED, body.reason);
    if (used >= CHUNK_BYTES / 2) handOver();
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
