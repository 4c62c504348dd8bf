// Rows of the task statistics tables, written directly (the query and
// rollup tests, and the route tests, seed what the collector would have).

import type { Kysely } from 'kysely';
import type { Database } from '../../src/shared/schema';
import { binIndex, QUEUE_WAIT_BIN_COLUMNS, RUNTIME_BIN_COLUMNS } from '../../src/shared/stats-bins';
import { STATS_COUNTS, type StatsCount } from '../../src/shared/stats';

export interface SeedStats {
  step: 60 | 3600;
  bucket: number;
  name: string;
  counts?: Partial<Record<StatsCount, number>>;
  /** Runtime observations (seconds), binned as the collector bins them. */
  runtimes?: number[];
  queueWaits?: number[];
}

export function statsRow(seed: SeedStats): Record<string, number | string> {
  const row: Record<string, number | string> = { step: seed.step, bucket: seed.bucket, task_name: seed.name };
  for (const c of STATS_COUNTS) row[c] = seed.counts?.[c] ?? 0;
  for (const c of [...RUNTIME_BIN_COLUMNS, ...QUEUE_WAIT_BIN_COLUMNS]) row[c] = 0;
  for (const v of seed.runtimes ?? []) (row[RUNTIME_BIN_COLUMNS[binIndex(v)]!] as number) += 1;
  for (const v of seed.queueWaits ?? []) (row[QUEUE_WAIT_BIN_COLUMNS[binIndex(v)]!] as number) += 1;
  return row;
}

export async function seedStats(db: Kysely<Database>, seeds: SeedStats[]): Promise<void> {
  for (let i = 0; i < seeds.length; i += 200) {
    await db
      .insertInto('task_stats')
      .values(seeds.slice(i, i + 200).map(statsRow) as never)
      .execute();
  }
}
