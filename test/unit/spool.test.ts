import { fstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool } from '../../worker-collector/transport/spool';

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'spool-test-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function chunk(text: string): Buffer {
  // Room after the data, as the reader's chunks have: only `bytes` of it are kept.
  return Buffer.concat([Buffer.from(text), Buffer.from('garbage after the data')]);
}

const text = (taken: { frames: ArrayBuffer; bytes: number }) => Buffer.from(taken.frames, 0, taken.bytes).toString();

describe('the Redis reader disk spool', () => {
  it('gives chunks back oldest first, with their message counts, and leaves no file in its directory', () => {
    const dir = freshDir();
    const spool = new Spool(dir, 1024 * 1024);
    expect(readdirSync(dir)).toEqual([]);
    expect(spool.isEmpty).toBe(true);
    expect(spool.append(chunk('first'), 5, 2)).toBe(true);
    expect(spool.append(chunk('second!'), 7, 3)).toBe(true);
    expect(spool.messages).toBe(5);
    expect(spool.bytes).toBe(5 + 7 + 16);
    const first = spool.take()!;
    expect([text(first), first.messages]).toEqual(['first', 2]);
    expect(spool.append(chunk('third'), 5, 1)).toBe(true);
    const second = spool.take()!;
    const third = spool.take()!;
    expect([text(second), second.messages, text(third), third.messages]).toEqual(['second!', 3, 'third', 1]);
    expect(spool.take()).toBeUndefined();
    expect(spool.messages).toBe(0);
    spool.close();
  });

  it('refuses a chunk that would pass its bound, keeping what it has', () => {
    const spool = new Spool(freshDir(), 40);
    expect(spool.append(chunk('x'.repeat(20)), 20, 1)).toBe(true);
    expect(spool.append(chunk('y'.repeat(20)), 20, 1)).toBe(false);
    expect(spool.messages).toBe(1);
    expect(text(spool.take()!)).toBe('x'.repeat(20));
    // Drained, it has room again.
    expect(spool.append(chunk('y'.repeat(20)), 20, 1)).toBe(true);
    spool.close();
  });

  it('starts its file again once drained, so the file never outgrows one backlog', () => {
    const spool = new Spool(freshDir(), 1024 * 1024);
    const fd = (spool as unknown as { fd: number }).fd;
    for (let i = 0; i < 100; i++) spool.append(chunk('z'.repeat(1000)), 1000, 1);
    expect(fstatSync(fd).size).toBe(100 * 1008);
    for (let i = 0; i < 99; i++) spool.take();
    expect(fstatSync(fd).size).toBe(100 * 1008);
    spool.take();
    expect(fstatSync(fd).size).toBe(0);
    spool.close();
  });
});
