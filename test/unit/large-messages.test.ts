// One garbage collection after a burst of large messages (the collection
// itself is V8's; what is tested is when the collector asks for it).

import { describe, expect, it } from 'vitest';
import { LARGE_MESSAGE_BYTES, LargeMessageReclaimer } from '../../worker-collector/transport/large-messages';

const settle = () => new Promise((resolve) => setTimeout(resolve, 1_200));

describe('collecting after large messages', () => {
  it('asks once, about a second after the first large message of a burst', async () => {
    let collections = 0;
    const reclaimer = new LargeMessageReclaimer(() => void (collections += 1));
    for (let i = 0; i < 5; i++) reclaimer.noteMessage(LARGE_MESSAGE_BYTES * 14);
    expect(collections).toBe(0);
    await settle();
    expect(collections).toBe(1);
    reclaimer.noteMessage(LARGE_MESSAGE_BYTES);
    await settle();
    expect(collections).toBe(2);
  });

  it('never for small messages, and not after stop', async () => {
    let collections = 0;
    const reclaimer = new LargeMessageReclaimer(() => void (collections += 1));
    for (let i = 0; i < 100; i++) reclaimer.noteMessage(LARGE_MESSAGE_BYTES - 1);
    reclaimer.noteMessage(LARGE_MESSAGE_BYTES * 2);
    reclaimer.stop();
    await settle();
    expect(collections).toBe(0);
  });
});
