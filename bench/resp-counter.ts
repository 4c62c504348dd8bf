// A TCP proxy in front of Redis that counts the commands its clients send,
// by name, reading the RESP stream on its way through (MONITOR would count
// every client of a shared server; this counts only the ones pointed here).
// For benchmarks only.

import { createConnection, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface RespCounter {
  /** The port to point clients at (on 127.0.0.1). */
  readonly port: number;
  /** Commands seen so far, by lower-case name. */
  counts(): Map<string, number>;
  close(): Promise<void>;
}

/**
 * Reads client-to-server RESP incrementally: a command is an array
 * (`*N\r\n` then N bulk strings `$len\r\n...\r\n`) or an inline line.
 * Returns the names of the commands completed by `chunk`.
 */
export function respCommandReader(): (chunk: Buffer) => string[] {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const names: string[] = [];
    for (;;) {
      const parsed = parseOne(pending);
      if (!parsed) break;
      names.push(parsed.name);
      pending = pending.subarray(parsed.end);
    }
    return names;
  };
}

const lineEnd = (buffer: Buffer, from: number): number => buffer.indexOf('\r\n', from);

function parseOne(buffer: Buffer): { name: string; end: number } | null {
  if (buffer.length === 0) return null;
  const headerEnd = lineEnd(buffer, 0);
  if (headerEnd < 0) return null;
  if (buffer[0] !== 0x2a /* '*' */) {
    // An inline command: one line, words separated by spaces.
    const line = buffer.subarray(0, headerEnd).toString('utf8').trim();
    return { name: (line.split(/\s+/)[0] ?? '').toLowerCase(), end: headerEnd + 2 };
  }
  const count = Number(buffer.subarray(1, headerEnd).toString('ascii'));
  let at = headerEnd + 2;
  let name = '';
  for (let i = 0; i < count; i++) {
    const lenEnd = lineEnd(buffer, at);
    if (lenEnd < 0) return null;
    const length = Number(buffer.subarray(at + 1, lenEnd).toString('ascii'));
    const start = lenEnd + 2;
    if (buffer.length < start + length + 2) return null;
    if (i === 0)
      name = buffer
        .subarray(start, start + length)
        .toString('utf8')
        .toLowerCase();
    at = start + length + 2;
  }
  return { name, end: at };
}

export async function startRespCounter(redisHost: string, redisPort: number): Promise<RespCounter> {
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: redisHost, port: redisPort });
    sockets.add(client);
    sockets.add(upstream);
    const read = respCommandReader();
    client.on('data', (chunk: Buffer) => {
      for (const name of read(chunk)) counts.set(name, (counts.get(name) ?? 0) + 1);
      upstream.write(chunk);
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    counts: () => new Map(counts),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
