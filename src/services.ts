// What a request handler may use. The entries (src/node.ts, src/worker.ts)
// build these once per runtime; a middleware puts them on the context, so no
// route constructs a client.

import type { Kysely } from 'kysely';
import type { Database } from './shared/schema';
import type { Logger } from './shared/log';

export interface HealthReport {
  ok: boolean;
  /** Why not, one line per problem. */
  problems: string[];
}

export interface Services {
  db: Kysely<Database>;
  log: Logger;
  health(): Promise<HealthReport>;
  /** Seconds since the epoch (injectable for tests). */
  now(): number;
}

export interface AppEnv {
  Variables: { services: Services };
}
