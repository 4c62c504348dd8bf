// --max-buffer-mb against the V8 heap the process was given: a budget the
// heap cannot hold would end the process when it fills, so it is refused at
// start, with the flag to give.

import { describe, expect, it } from 'vitest';
import { checkHeapForBuffer, heapNeededMiB } from '../../worker-collector/setup';

const MiB = 1024 * 1024;

describe('the heap a buffer budget needs', () => {
  it('the npm scripts give the default budget enough: 192 MiB for 32', () => {
    expect(heapNeededMiB(32)).toBe(192);
    expect(() => checkHeapForBuffer(32, 204 * MiB)).not.toThrow();
  });

  it('refuses a budget the heap cannot hold, naming the node flag and the size it needs', () => {
    expect(() => checkHeapForBuffer(256, 204 * MiB)).toThrow(/--max-buffer-mb 256 needs .*864 MiB.*--max-old-space-size=864/);
    expect(() => checkHeapForBuffer(256, 864 * MiB)).not.toThrow();
  });

  it('reads the running process heap limit when none is given', () => {
    // This process was not started with a small heap: the default budget fits it, an absurd one does not.
    expect(() => checkHeapForBuffer(32)).not.toThrow();
    expect(() => checkHeapForBuffer(1_000_000)).toThrow(/--max-old-space-size=/);
  });
});
