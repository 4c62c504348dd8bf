// One garbage collection after a burst of large messages (the collection
// itself is V8's; what is tested is when the collector asks for it). Fake
// timers: the second it waits passes at once, and exactly.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LARGE_MESSAGE_BYTES, LargeMessageReclaimer } from '../../worker-collector/transport/large-messages';

describe('collecting after large messages', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('asks once, a second after the first large message of a burst', () => {
    let collections = 0;
    const reclaimer = new LargeMessageReclaimer(() => void (collections += 1));
    reclaimer.noteMessage(LARGE_MESSAGE_BYTES * 14);
    vi.advanceTimersByTime(500);
    // Later messages of the burst ride along: they do not push the collection back.
    for (let i = 0; i < 4; i++) reclaimer.noteMessage(LARGE_MESSAGE_BYTES * 14);
    vi.advanceTimersByTime(499);
    expect(collections).toBe(0);
    vi.advanceTimersByTime(1);
    expect(collections).toBe(1);
    vi.runAllTimers();
    expect(collections).toBe(1);

    reclaimer.noteMessage(LARGE_MESSAGE_BYTES);
    vi.advanceTimersByTime(999);
    expect(collections).toBe(1);
    vi.advanceTimersByTime(1);
    expect(collections).toBe(2);
  });

  it('never for small messages, and not after stop', () => {
    let collections = 0;
    const reclaimer = new LargeMessageReclaimer(() => void (collections += 1));
    for (let i = 0; i < 100; i++) reclaimer.noteMessage(LARGE_MESSAGE_BYTES - 1);
    expect(vi.getTimerCount()).toBe(0);
    reclaimer.noteMessage(LARGE_MESSAGE_BYTES * 2);
    expect(vi.getTimerCount()).toBe(1);
    reclaimer.stop();
    vi.runAllTimers();
    expect(collections).toBe(0);
  });
});
