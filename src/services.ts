// What a request handler may use. The entries (src/node.ts, src/worker.ts)
// build these once per runtime; a middleware puts them on the context, so no
// route constructs a client. The parts the collector provides (hot state,
// control, health) are typed in src/shared, the contract between the two.

import type { Kysely } from 'kysely';
import type { AuthSettings } from './auth/config';
import type { MetricsOptions } from './metrics/registry';
import type { ControlClient } from './shared/control';
import type { HealthReport } from './shared/health';
import type { HotState } from './shared/hot-state';
import type { Database, SqlDialect } from './shared/schema';
import type { Logger } from './shared/log';
import type { UiOptions } from './ui/context';

export interface Services {
  db: Kysely<Database>;
  dialect: SqlDialect;
  log: Logger;
  hot: HotState;
  /** Null when no collector can be reached for commands (e.g. `--no-collector`). */
  control: ControlClient | null;
  /** Refuse every control action (Flower's --read-only). */
  readOnly: boolean;
  /**
   * Whether the collector has a result backend, which Celery's abort needs
   * (it marks the task ABORTED there): false hides Abort; absent, unknown
   * (the edge), Abort is offered.
   */
  resultBackend?: boolean;
  /** How long the collector collects inspect and control replies (Flower's inspect_timeout, --inspect-timeout). */
  inspectTimeoutMs: number;
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
