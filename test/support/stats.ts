// Rows of the task statistics tables, written directly as the collector
// would have written them (each minute to its minute row and its hour row,
// per name and for all names, and per name to its day row), for the query, retention and route tests.

import type { Kysely } from 'kysely';
import type { Database } from '../../src/shared/schema';
import { STATS_COUNTS, type StatsCount } from '../../src/shared/stats';
import { binIndex, QUEUE_WAIT_BIN_COLUMNS, RUNTIME_BIN_COLUMNS, TASK_STATS_VALUE_COLUMNS } from '../../src/shared/stats-bins';

export interface SeedStats {
  /** Start of the minute (epoch seconds, a multiple of 60). */
  bucket: number;
  name: string;
  counts?: Partial<Record<StatsCount, number>>;
  /** Runtime observations (seconds), binned as the collector bins them. */
  runtimes?: number[];
  queueWaits?: number[];
  /** The minute row was deleted by retention already: only its hour holds it. */
  minuteGone?: boolean;
}

function values(seed: SeedStats): number[] {
  const row: Record<string, number> = {};
  for (const c of TASK_STATS_VALUE_COLUMNS) row[c] = 0;
  for (const c of STATS_COUNTS) row[c] = seed.counts?.[c] ?? 0;
  for (const v of seed.runtimes ?? []) row[RUNTIME_BIN_COLUMNS[binIndex(v)]!]! += 1;
  for (const v of seed.queueWaits ?? []) row[QUEUE_WAIT_BIN_COLUMNS[binIndex(v)]!]! += 1;
  return TASK_STATS_VALUE_COLUMNS.map((c) => row[c]!);
}

function add(map: Map<string, Record<string, number | string>>, key: Record<string, number | string>, v: number[]): void {
  const id = JSON.stringify(key);
  const found = map.get(id);
  if (!found) {
    map.set(id, { ...key, ...Object.fromEntries(TASK_STATS_VALUE_COLUMNS.map((c, i) => [c, v[i]!])) });
    return;
  }
  TASK_STATS_VALUE_COLUMNS.forEach((c, i) => {
    (found[c] as number) += v[i]!;
  });
}

async function insert(
  db: Kysely<Database>,
  table: 'task_stats' | 'task_stats_all' | 'task_stats_exceptions' | 'queue_stats',
  rows: object[],
) {
  for (let i = 0; i < rows.length; i += 200)
    await db
      .insertInto(table)
      .values(rows.slice(i, i + 200) as never)
      .execute();
}

export async function seedStats(db: Kysely<Database>, seeds: SeedStats[]): Promise<void> {
  const named = new Map<string, Record<string, number | string>>();
  const all = new Map<string, Record<string, number | string>>();
  for (const seed of seeds) {
    const v = values(seed);
    const hour = seed.bucket - (seed.bucket % 3600);
    if (!seed.minuteGone) {
      add(named, { step: 60, bucket: seed.bucket, task_name: seed.name }, v);
      add(all, { step: 60, bucket: seed.bucket }, v);
    }
    add(named, { step: 3600, bucket: hour, task_name: seed.name }, v);
    add(named, { step: 86400, bucket: seed.bucket - (seed.bucket % 86400), task_name: seed.name }, v);
    add(all, { step: 3600, bucket: hour }, v);
  }
  await insert(db, 'task_stats', [...named.values()]);
  await insert(db, 'task_stats_all', [...all.values()]);
}

export interface SeedException {
  bucket: number;
  name: string;
  exception: string;
  count: number;
  minuteGone?: boolean;
}

export async function seedExceptions(db: Kysely<Database>, seeds: SeedException[]): Promise<void> {
  const rows = new Map<string, { step: number; bucket: number; task_name: string; exception: string; count: number }>();
  for (const s of seeds) {
    for (const step of s.minuteGone ? [3600, 86400] : [60, 3600, 86400]) {
      const bucket = s.bucket - (s.bucket % step);
      const id = `${step}|${bucket}|${s.name}|${s.exception}`;
      const found = rows.get(id);
      if (found) found.count += s.count;
      else rows.set(id, { step, bucket, task_name: s.name, exception: s.exception, count: s.count });
    }
  }
  await insert(db, 'task_stats_exceptions', [...rows.values()]);
}

export async function seedQueueLengths(
  db: Kysely<Database>,
  seeds: { bucket: number; queue: string; length: number; minuteGone?: boolean }[],
) {
  const rows = new Map<string, { step: number; bucket: number; queue: string; length: number }>();
  for (const s of seeds) {
    for (const step of s.minuteGone ? [3600] : [60, 3600]) {
      const bucket = s.bucket - (s.bucket % step);
      const id = `${step}|${bucket}|${s.queue}`;
      const found = rows.get(id);
      if (found) found.length = Math.max(found.length, s.length);
      else rows.set(id, { step, bucket, queue: s.queue, length: s.length });
    }
  }
  await insert(db, 'queue_stats', [...rows.values()]);
}
