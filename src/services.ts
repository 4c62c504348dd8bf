// What a request handler may use. The entries (src/node.ts, src/worker.ts)
// build these once per runtime; a middleware puts them on the context, so no
// route constructs a client.

import type { Kysely } from 'kysely';
import type { WorkerRecord } from './queries/workers';
import type { Database } from './shared/schema';
import type { Logger } from './shared/log';
import type { UiOptions } from './ui/context';

export interface HealthReport {
  ok: boolean;
  /** Why not, one line per problem. */
  problems: string[];
}

/**
 * What the collector publishes on every flush (in-process locally, Redis or
 * Upstash at the edge), so the busiest page needs no SQL. Null when there is
 * no fresh snapshot: callers fall back to the database.
 */
export interface HotState {
  workers(): Promise<WorkerRecord[] | null>;
}

export const NO_HOT_STATE: HotState = { workers: async () => null };

export interface Services {
  db: Kysely<Database>;
  /** 'sqlite' or 'mysql' (PlanetScale too): the few queries that differ ask. */
  dialect: 'sqlite' | 'mysql';
  log: Logger;
  hot: HotState;
  ui: UiOptions;
  /** Hide offline workers silent for longer than this (seconds; 0 keeps all). */
  purgeOfflineWorkers: number;
  health(): Promise<HealthReport>;
  /** Seconds since the epoch (injectable for tests). */
  now(): number;
}

export interface AppEnv {
  Variables: { services: Services };
}
