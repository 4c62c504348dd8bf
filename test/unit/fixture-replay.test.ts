import { describe, expect, it } from 'vitest';
import type { CeleryEvent } from '../../src/shared/celery-events';
import { decodeAmqpMessage, decodeRedisMessage } from '../../worker-collector/decode';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { amqpEventMessages, redisEventMessages } from '../fixtures/captures';
import { seededRandom, shuffled } from '../fixtures/events';

function replay(events: CeleryEvent[]) {
  const workers = new Map<string, WorkerState>();
  const batch = new EventBatch();
  for (const event of events) batch.add(event, workers);
  return {
    tasks: Object.fromEntries([...batch.tasks].map(([uuid, t]) => [uuid, t.row] as const).sort(([a], [b]) => a.localeCompare(b))),
    batch,
    workers,
  };
}

const captures: [string, () => CeleryEvent[]][] = [
  ['redis', () => redisEventMessages().flatMap((m) => decodeRedisMessage(m.raw, 1_800_000_000).events)],
  [
    'amqp',
    () =>
      amqpEventMessages().flatMap(
        (m) =>
          decodeAmqpMessage(
            Buffer.from(m.body),
            { contentType: m.properties.content_type, headers: m.properties.application_headers },
            1_800_000_000,
          ).events,
      ),
  ],
];

describe.each(captures)('replaying the %s capture', (_broker, load) => {
  const events = load();

  it('yields a succeeded and a failed task with their facts', () => {
    const { tasks } = replay(events);
    const rows = Object.values(tasks);
    const charge = rows.find((r) => r.name === 'billing.charge');
    const refund = rows.find((r) => r.name === 'billing.refund');
    expect(charge).toMatchObject({ state: 'SUCCESS', kwargs: "{'note': 'x'}" });
    expect(charge?.args).toMatch(/^\('c(<b>)?1', 100\)$/);
    expect(charge?.result).toMatch(/'customer': 'c(<b>)?1'/);
    expect(charge?.runtime).toBeGreaterThan(0);
    expect(refund).toMatchObject({ state: 'FAILURE' });
    expect(refund?.exception).toMatch(/^ValueError\('refund refused/);
    expect(refund?.traceback).toContain('Traceback');
  });

  it('converges to the same rows in any order, with duplicates', () => {
    const expected = replay(events).tasks;
    const random = seededRandom(42);
    for (let round = 0; round < 50; round++) {
      const noisy = shuffled(
        events.flatMap((e) => (random() < 0.25 ? [e, e] : [e])),
        random,
      );
      expect(replay(noisy).tasks).toEqual(expected);
    }
  });

  it('records the worker as online with its software and heartbeats', () => {
    const { workers } = replay(events);
    const [worker] = [...workers.values()];
    expect(worker).toMatchObject({ status: 'online', sw_ident: 'py-celery', sw_ver: '5.2.6', freq: 2 });
    expect(worker?.heartbeats.length).toBeGreaterThan(0);
  });

  it('keeps one timeline entry per distinct event', () => {
    const { batch } = replay([...events, ...events]);
    const taskEvents = events.filter((e) => e.kind === 'task');
    const timeline = [...batch.tasks.values()].flatMap((t) => t.events);
    expect(timeline).toHaveLength(taskEvents.length);
    expect(batch.duplicateCount).toBe(taskEvents.length);
  });
});
