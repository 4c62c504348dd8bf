// The Worker's services, built once per isolate from its configuration. The
// database and Upstash clients are plain fetch callers, holding no
// connection across requests; one Upstash client serves both the hot state
// and the command channel.

import { Kysely } from 'kysely';
import { PlanetScaleDialect } from 'kysely-planetscale';
import { checkHealth } from '../queries/health';
import type { Services } from '../services';
import { deriveCommandKey } from '../shared/command-signing';
import type { ControlClient } from '../shared/control';
import { createLogger } from '../shared/log';
import type { Database } from '../shared/schema';
import { upstashRest } from '../shared/upstash-rest';
import type { WorkerConfig } from './config';
import { UpstashControlClient } from './control-client';
import { upstashHotState } from './hot-state';

/** Without signed-in users nothing is sent to the collector, inspect refreshes included. */
const NO_ANONYMOUS_CONTROL: ControlClient = {
  run: async () => ({ ok: false, status: 403, error: 'Actions are disabled: this dashboard is public and read-only (PUBLIC_READ_ONLY)' }),
};

/**
 * The key commands are signed with, derived from COOKIE_SECRET (the
 * collector derives the same one from its --cookie-secret); null without
 * COOKIE_SECRET, and then the client refuses to send (the key would be
 * random per isolate).
 */
function commandKey(config: WorkerConfig): Promise<CryptoKey> | null {
  const key = config.auth.ephemeralKey ? null : deriveCommandKey(config.auth.key);
  // Derivation of a valid key does not fail; a failure surfaces on the first command.
  key?.catch(() => undefined);
  return key;
}

export function createServices(config: WorkerConfig): Services {
  const log = createLogger('stalk', config.logLevel);
  const db = new Kysely<Database>({ dialect: new PlanetScaleDialect({ url: config.databaseUrl }) });
  const upstash = upstashRest(config.redisUrl, config.redisToken);
  // Commands travel through Upstash to the collector (started with --state-url).
  const control = config.access.kind === 'auth' ? new UpstashControlClient(upstash, commandKey(config)) : NO_ANONYMOUS_CONTROL;
  return {
    db,
    dialect: 'mysql',
    log: log.child('web'),
    hot: upstashHotState(upstash, log.child('hot-state')),
    control,
    readOnly: config.readOnly,
    inspectTimeoutMs: config.inspectTimeoutMs,
    ui: config.ui,
    auth: config.auth,
    purgeOfflineWorkers: config.purgeOfflineWorkers,
    // /metrics from the collector's rendering while fresh: rendering tens of thousands of series is beyond a Worker's CPU.
    metrics: { runtimeBuckets: config.runtimeBuckets, snapshots: true },
    // No collector in this process: its status row in the database says how it is.
    health: () => checkHealth(db, Date.now() / 1000),
    now: () => Date.now() / 1000,
  };
}
