// The Redis event reader thread (see transport/redis.ts). It owns the
// PSUBSCRIBE connection, opens each message's kombu envelope (the first half
// of decoding: decode/index.ts, redisMessageBody) and hands the bodies over:
// each turn of its event loop packs what the socket delivered into one
// transferable buffer of frames (4-byte length, a kind byte, then the body's
// JSON text, or the reason an envelope was refused). So the socket is
// drained whatever the collector's thread is doing, Redis never sees a slow
// subscriber to cut off, and the collector thread parses only event bodies.
// What the collector has not consumed yet is bounded by bytes. Past the
// bound, or while the collector has paused the reader (its memory budget is
// full), chunks go to a disk spool (transport/spool.ts) and come back in
// order when there is room; only a full spool (or none, --max-spool-mb 0)
// makes the reader shed messages, unopened, counted as `overload`.

import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { redisMessageBody } from '../decode';
import { createBackoff } from './backoff';
import { FRAME_BODY, FRAME_HEADER, FRAME_REFUSED } from './frames';
import { LargeMessageReclaimer } from './large-messages';
import { Spool } from './spool';

export interface ReaderData {
  url: string;
  tls: boolean;
  pattern: string;
  maxEventBytes: number;
  /** Bytes handed over and not consumed yet, past which messages are spooled (or shed, without a spool). */
  maxBacklogBytes: number;
  /** Where and how much to spool on disk; none: shed instead. */
  spool?: { dir: string; maxBytes: number };
}

/**
 * `stop`: unsubscribe, then hand back what is spooled (as the collector makes
 * room) and answer `stopped` once the spool is empty; `abandon`: stop handing
 * back now (the collector's shutdown deadline passed), counting what is left.
 */
export type ToReader =
  | { kind: 'consumed'; bytes: number }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'stop' }
  | { kind: 'abandon' };

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
/** Messages in `chunk`. */
let count = 0;
let shed = 0;
let scheduled = false;
/** The collector asked for nothing more until it resumes us (its buffer is full). */
let paused = false;
const spool = data.spool && data.spool.maxBytes > 0 ? new Spool(data.spool.dir, data.spool.maxBytes) : undefined;
let spoolingSince = 0;
let spoolPeak = 0;
/** Stopping: unsubscribed, handing back what is spooled before answering `stopped`. */
let draining = false;
let finished = false;

function post(frames: ArrayBuffer, bytes: number): void {
  send({ kind: 'frames', frames, bytes, shed }, [frames]);
  backlog += bytes;
  shed = 0;
}

function handOver(): void {
  scheduled = false;
  if (used > 0 && spool && (paused || !spool.isEmpty || backlog + used > data.maxBacklogBytes)) {
    toSpool(spool);
    used = 0;
    count = 0;
  } else if (used > 0) {
    post(chunk.buffer, used);
    chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
    used = 0;
    count = 0;
  }
  if (shed > 0) post(new ArrayBuffer(0), 0);
}

/** Keep the chunk on disk (it is written at once, so the buffer is reused); shed it when the spool is full. */
function toSpool(into: Spool): void {
  const wasEmpty = into.isEmpty;
  let kept = false;
  try {
    kept = into.append(chunk, used, count);
  } catch (error) {
    send({ kind: 'log', level: 'warn', message: `writing the event spool failed (${(error as Error).message}); shedding` });
  }
  if (!kept) {
    shed += count;
    return;
  }
  spoolPeak = Math.max(spoolPeak, into.bytes);
  if (wasEmpty && Date.now() - spoolingSince > 30_000) {
    send({ kind: 'log', level: 'info', message: 'the collector is behind: spooling events to disk until it catches up' });
  }
  if (wasEmpty) spoolingSince = Date.now();
}

/** Hand spooled chunks back, oldest first, while the collector has room. */
function drain(): void {
  if (!spool || paused) return;
  while (!spool.isEmpty && backlog < data.maxBacklogBytes / 2) {
    const next = spool.take()!;
    post(next.frames, next.bytes);
    if (spool.isEmpty) {
      send({ kind: 'log', level: 'debug', message: `event spool drained (peak ${Math.round(spoolPeak / 1048576)} MiB)` });
      spoolPeak = 0;
    }
  }
  if (draining && spool.isEmpty) finish();
}

function finish(): void {
  if (finished) return;
  finished = true;
  if (spool && !spool.isEmpty)
    send({ kind: 'log', level: 'warn', message: `stopping with ${spool.messages} spooled messages not read; they are lost` });
  spool?.close();
  send({ kind: 'stopped' });
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
  count += 1;
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
  if (!spool && message.length <= data.maxEventBytes && backlog + used + message.length > data.maxBacklogBytes) shed += 1;
  else {
    const body = redisMessageBody(message, data.maxEventBytes);
    if (typeof body === 'string') frame(FRAME_BODY, body);
    else frame(FRAME_REFUSED, body.reason);
    if (used >= CHUNK_BYTES / 2) handOver();
  }
  later();
});

port.on('message', (message: ToReader) => {
  switch (message.kind) {
    case 'consumed':
      backlog -= message.bytes;
      drain();
      return;
    case 'pause':
      paused = true;
      return;
    case 'resume':
      paused = false;
      drain();
      return;
    case 'abandon':
      finish();
      return;
    case 'stop':
      break;
  }
  if (stopping) return;
  stopping = true;
  reclaimer.stop();
  void subscriber
    .quit()
    .catch(() => undefined)
    .finally(() => {
      subscriber.disconnect();
      // Nothing more arrives: what was read goes to the collector, the
      // spool first (it is older), as the collector makes room.
      handOver();
      if (!spool || spool.isEmpty) return finish();
      send({ kind: 'log', level: 'info', message: `stopping: handing back ${spool.messages} spooled messages first` });
      draining = true;
      drain();
    });
});

/**
 * On a busy machine this thread must still be scheduled in time: a subscriber
 * that stops reading for a second at 60,000 events/s passes Redis' 32 MB
 * output limit and is cut. Linux lets one thread (its id from
 * /proc/thread-self) run at a higher priority than the collector's others,
 * where the process may (root, or CAP_SYS_NICE); elsewhere it is left as is.
 */
function raisePriority(): string {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return 'no thread id';
    setPriority(tid, -10);
    return `thread ${tid} at nice -10`;
  } catch (error) {
    return `priority left as is (${(error as Error).message})`;
  }
}
send({ kind: 'log', level: 'debug', message: `redis reader: ${raisePriority()}` });

try {
  await subscriber.connect();
  await subscriber.psubscribe(data.pattern);
} catch (error) {
  // ioredis keeps retrying with retryStrategy and subscribes again when it reconnects.
  send({ kind: 'log', level: 'warn', message: `unreachable at start (${(error as Error).message}); retrying` });
  if (!stopping) subscriber.psubscribe(data.pattern).catch(() => undefined);
}
send({ kind: 'started' });
