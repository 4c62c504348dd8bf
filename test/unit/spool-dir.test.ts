// --spool-dir is checked at start: a directory the Redis reader could not
// write would only show when the collector first fell behind.

import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkSpoolDir } from '../../worker-collector/setup';

const base = mkdtempSync(join(tmpdir(), 'spool-dir-test-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const redis = { broker: 'redis://127.0.0.1:6379/0', maxSpoolMb: 1024 };

/** A directory path below a plain file: nothing can be made there. */
function unwritable(): string {
  const file = join(base, 'a-file');
  writeFileSync(file, '');
  return join(file, 'spool');
}

describe('the spool directory check', () => {
  it('takes a writable directory and leaves nothing in it', () => {
    const dir = join(base, 'spool');
    mkdirSync(dir);
    expect(() => checkSpoolDir({ ...redis, spoolDir: dir })).not.toThrow();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a directory that does not exist, or cannot be written, naming the flag and the way out', () => {
    expect(() => checkSpoolDir({ ...redis, spoolDir: join(base, 'missing') })).toThrow(/--spool-dir .*missing cannot be written .*ENOENT/);
    expect(() => checkSpoolDir({ ...redis, spoolDir: unwritable() })).toThrow(
      /--spool-dir .*a-file\/spool cannot be written .*--max-spool-mb 0/,
    );
  });

  it('checks nothing without a spool or on RabbitMQ, which keeps events itself', () => {
    const bad = unwritable();
    expect(() => checkSpoolDir({ ...redis, spoolDir: bad, maxSpoolMb: 0 })).not.toThrow();
    expect(() => checkSpoolDir({ broker: 'amqp://guest:guest@127.0.0.1:5672//', maxSpoolMb: 1024, spoolDir: bad })).not.toThrow();
  });
});
