// A period of work for the /stats pages' tests: tasks stored through the
// real fold and store (so the task list has them), and the statistics rows
// the collector keeps for the same events, written directly (so the test
// does not depend on how the collector buckets; each count is known).

import type { TaskEvent } from '../../src/shared/celery-events';
import { failed, received, retried, started, succeeded } from '../fixtures/events';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { store } from './app';
import { type SeedException, type SeedStats, seedExceptions, seedQueueLengths, seedStats } from './stats';

export const HOSTILE_NAME = '<script>alert("x")</script>&amp;';

export interface ScenarioTask {
  name: string;
  outcome: 'succeeded' | 'failed' | 'retried-then-succeeded';
  /** Seconds before `now` the task was received. */
  ago: number;
  runtime: number;
}

/** What the scenario did, per task name: the counts the pages must show. */
export interface ScenarioCounts {
  succeeded: number;
  failed: number;
  retried: number;
}

export const SCENARIO: ScenarioTask[] = [
  ...Array.from(
    { length: 6 },
    (_, i): ScenarioTask => ({ name: 'billing.charge', outcome: 'succeeded', ago: 600 + i * 120, runtime: 0.2 }),
  ),
  ...Array.from({ length: 2 }, (_, i): ScenarioTask => ({ name: 'billing.charge', outcome: 'failed', ago: 900 + i * 60, runtime: 0.4 })),
  ...Array.from({ length: 3 }, (_, i): ScenarioTask => ({ name: 'mail.send', outcome: 'succeeded', ago: 1200 + i * 300, runtime: 2.5 })),
  { name: 'mail.send', outcome: 'retried-then-succeeded', ago: 2400, runtime: 1 },
  { name: HOSTILE_NAME, outcome: 'succeeded', ago: 300, runtime: 0.01 },
];

export function scenarioCounts(name: string): ScenarioCounts {
  const tasks = SCENARIO.filter((t) => t.name === name);
  return {
    succeeded: tasks.filter((t) => t.outcome !== 'failed').length,
    failed: tasks.filter((t) => t.outcome === 'failed').length,
    retried: tasks.filter((t) => t.outcome === 'retried-then-succeeded').length,
  };
}

/** Store the scenario's tasks and their statistics (with `extra` minutes), as of `now` (epoch seconds); anything stored before is replaced. */
export async function seedScenario(database: OpenDatabase, now: number, extra: SeedStats[] = []): Promise<void> {
  const events: TaskEvent[] = [];
  const stats: SeedStats[] = [];
  const exceptions: SeedException[] = [];
  SCENARIO.forEach((task, i) => {
    const story = { uuid: `scenario-${i}`, name: task.name };
    const at = now - task.ago;
    const end = at + 1 + task.runtime;
    events.push(received(story, at), started(story, at + 1));
    if (task.outcome === 'failed') events.push(failed(story, end, "ValueError('card declined')"));
    else if (task.outcome === 'retried-then-succeeded') events.push(retried(story, end), succeeded(story, end + 5, '1', task.runtime));
    else events.push(succeeded(story, end, '1', task.runtime));
    const bucket = Math.floor(end / 60) * 60;
    stats.push({
      bucket,
      name: task.name,
      counts: {
        received: 1,
        started: 1,
        succeeded: task.outcome === 'failed' ? 0 : 1,
        failed: task.outcome === 'failed' ? 1 : 0,
        retried: task.outcome === 'retried-then-succeeded' ? 1 : 0,
      },
      runtimes: [task.runtime],
      queueWaits: [1],
    });
    if (task.outcome === 'failed') exceptions.push({ bucket, name: task.name, exception: 'ValueError', count: 1 });
  });
  await store(database, events);
  // Whatever the store wrote for these events is replaced by the known rows.
  await database.db.deleteFrom('task_stats').execute();
  await database.db.deleteFrom('task_stats_all').execute();
  await database.db.deleteFrom('task_stats_exceptions').execute();
  await database.db.deleteFrom('queue_stats').execute();
  await seedStats(database.db, [...stats, ...extra]);
  await seedExceptions(database.db, exceptions);
  const minute = Math.floor(now / 60) * 60;
  await seedQueueLengths(
    database.db,
    Array.from({ length: 30 }, (_, i) => [
      { bucket: minute - i * 60, queue: 'celery', length: 30 - i },
      { bucket: minute - i * 60, queue: 'priority', length: i % 5 },
    ]).flat(),
  );
}
