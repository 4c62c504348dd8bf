// Reading the event counters back, for tests that check nothing was counted
// twice or left uncounted.

import type { OpenDatabase } from '../../worker-collector/store/db';

export interface CounterSum {
  task_name: string;
  type: string;
  count: number;
}

/** event_counters summed per (task name, task event type); worker and other events left out. */
export async function taskCountersByNameAndType(database: OpenDatabase): Promise<CounterSum[]> {
  const rows = await database.db
    .selectFrom('event_counters')
    .select(['task_name', 'type'])
    .select((eb) => eb.fn.sum<number>('count').as('n'))
    .where('type', 'like', 'task-%')
    .groupBy(['task_name', 'type'])
    .execute();
  return rows.map((row) => ({ task_name: row.task_name, type: row.type, count: Number(row.n) }));
}
