// A disk spool for the Redis reader thread (transport/redis-reader.ts).
// Pub/sub keeps nothing for a reader that falls behind, so when the
// collector cannot take more (its memory budget is full, or it is told to
// pause while the database catches up) the reader appends its chunks of
// frames here instead of shedding them, and hands them over, oldest first,
// once the collector has room again. Events are delayed, not lost, until
// the spool is full (`--max-spool-mb`); only then does the reader shed.
//
// The file is unlinked as soon as it is opened: nothing is left behind by a
// crash, and what is spooled when the collector stops is lost with it (as
// anything published while no collector runs is). Writes go to the page
// cache, so a spool costs disk and kernel cache, not the process's memory.
//
// Layout: one record per chunk, a 4-byte length (little-endian), a 4-byte
// message count, then the chunk's frames as the reader built them.

import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const RECORD_HEADER = 8;

export interface SpooledChunk {
  frames: ArrayBuffer;
  bytes: number;
  messages: number;
}

export class Spool {
  private readonly fd: number;
  private writeAt = 0;
  private readAt = 0;
  private chunks = 0;
  private messageCount = 0;
  private readonly header = Buffer.alloc(RECORD_HEADER);

  constructor(
    dir: string,
    /** Bytes the file may hold; past them append() refuses. */
    readonly maxBytes: number,
  ) {
    const own = mkdtempSync(join(dir, 'stalk-spool-'));
    const path = join(own, 'events');
    this.fd = openSync(path, 'w+', 0o600);
    unlinkSync(path);
    rmSync(own, { recursive: true, force: true });
  }

  /** Bytes waiting in the spool. */
  get bytes(): number {
    return this.writeAt - this.readAt;
  }

  /** Messages waiting in the spool. */
  get messages(): number {
    return this.messageCount;
  }

  get isEmpty(): boolean {
    return this.chunks === 0;
  }

  /**
   * Append a chunk; false (nothing written) when it would pass maxBytes. A
   * failed write (a full disk) is undone before its error is thrown.
   */
  append(chunk: Buffer, bytes: number, messages: number): boolean {
    if (this.bytes + RECORD_HEADER + bytes > this.maxBytes) return false;
    const start = this.writeAt;
    this.header.writeUInt32LE(bytes, 0);
    this.header.writeUInt32LE(messages, 4);
    try {
      this.writeFully(this.header, RECORD_HEADER);
      this.writeFully(chunk, bytes);
    } catch (error) {
      this.writeAt = start;
      ftruncateSync(this.fd, start);
      throw error;
    }
    this.chunks += 1;
    this.messageCount += messages;
    return true;
  }

  /** The oldest chunk, removed from the spool; undefined when it is empty. */
  take(): SpooledChunk | undefined {
    if (this.chunks === 0) return undefined;
    this.readFully(this.header, RECORD_HEADER);
    const bytes = this.header.readUInt32LE(0);
    const messages = this.header.readUInt32LE(4);
    const frames = Buffer.allocUnsafeSlow(bytes);
    this.readFully(frames, bytes);
    this.chunks -= 1;
    this.messageCount -= messages;
    if (this.chunks === 0) {
      // Drained: start the file again, so it never grows past one backlog.
      ftruncateSync(this.fd, 0);
      this.writeAt = 0;
      this.readAt = 0;
    }
    return { frames: frames.buffer, bytes, messages };
  }

  close(): void {
    closeSync(this.fd);
  }

  private writeFully(buffer: Buffer, length: number): void {
    for (let done = 0; done < length; ) {
      const n = writeSync(this.fd, buffer, done, length - done, this.writeAt);
      done += n;
      this.writeAt += n;
    }
  }

  private readFully(buffer: Buffer, length: number): void {
    for (let done = 0; done < length; ) {
      const n = readSync(this.fd, buffer, done, length - done, this.readAt);
      if (n === 0) throw new Error('the event spool ended early');
      done += n;
      this.readAt += n;
    }
  }
}
