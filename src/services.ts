// What a request handler may use. The entries (src/node.ts, src/worker.ts)
// build these once per runtime; a middleware puts them on the context, so no
// route constructs a client.

import type { Kysely } from 'kysely';
import type { AuthSettings } from './auth/config';
import type { MetricsOptions } from './metrics/registry';
import type { WorkerRecord } from './queries/workers';
import type { CommandOutcome, ControlCommand } from './shared/control';
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

/**
 * Sends control commands to the collector and waits for the outcome (at
 * most `waitSeconds`, then a 504 outcome). In-process locally; through a
 * Redis list at the edge.
 */
export interface ControlClient {
  run(command: ControlCommand, user: string, waitSeconds: number): Promise<CommandOutcome>;
}

export interface Services {
  db: Kysely<Database>;
  /** 'sqlite' or 'mysql' (PlanetScale too): the few queries that differ ask. */
  dialect: 'sqlite' | 'mysql';
  log: Logger;
  hot: HotState;
  /** Null when no collector can be reached for commands (e.g. `--no-collector`). */
  control: ControlClient | null;
  /** Refuse every control action (Flower's --read-only). */
  readOnly: boolean;
  /** Seconds to wait for inspect and control replies (Flower's inspect_timeout). */
  inspectTimeout: number;
  ui: UiOptions;
  auth: AuthSettings;
  /** Hide offline workers silent for longer than this (seconds; 0 keeps all). */
  purgeOfflineWorkers: number;
  /** /metrics settings (--task-runtime-metric-buckets); absent: Flower's buckets. */
  metrics?: MetricsOptions;
  health(): Promise<HealthReport>;
  /** Seconds since the epoch (injectable for tests). */
  now(): number;
}

export interface AppEnv {
  /** `user` is who is signed in ('anonymous' without auth). */
  Variables: { services: Services; user?: string };
}
