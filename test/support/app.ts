// An app over a real database filled through the real store, for route tests.

import { join } from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { createApp } from '../../src/app';
import { type AuthInput, authSettings } from '../../src/auth/config';
import type { Services } from '../../src/services';
import type { ControlClient } from '../../src/shared/control';
import type { HealthReport } from '../../src/shared/health';
import { type HotState, NO_HOT_STATE } from '../../src/shared/hot-state';
import { DEFAULT_UI, type UiOptions } from '../../src/ui/context';
import type { TaskEvent } from '../../src/shared/celery-events';
import { createLogger } from '../../src/shared/log';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { buildFlushPayload } from '../../worker-collector/store/payload';
import { StoreWriter } from '../../worker-collector/store/writer';
import { REPO_ROOT } from './stalk';

export const NO_AUTH_INPUT: AuthInput = {
  basicAuth: '',
  auth: '',
  authOperators: '',
  authAdmins: '',
  authProvider: '',
  oauth2Key: '',
  oauth2Secret: '',
  oauth2RedirectUri: '',
  oauth2OktaBaseUrl: '',
  githubOauthDomain: 'github.com',
  gitlabOauthDomain: 'gitlab.com',
  gitlabAuthAllowedGroups: '',
  gitlabMinAccessLevel: 20,
  oauth2GoogleBase: '',
  cookieSecret: 'test-cookie-secret-test-cookie-secret-0123456789',
  sessionTtl: 3600,
  unauthenticatedApi: false,
  metricsOpen: false,
  metricsToken: '',
  trustProxy: false,
};

/** Fold and store events exactly as the collector would. */
export async function store(database: OpenDatabase, events: TaskEvent[] | EventBatch, workers = new Map<string, WorkerState>()) {
  let batch = events;
  if (Array.isArray(batch)) {
    const b = new EventBatch();
    for (const event of batch) b.add(event, workers);
    batch = b;
  }
  const { payload } = buildFlushPayload(batch, () => undefined, workers, null);
  await new StoreWriter(database, createLogger('test', 'error')).write(payload);
}

export function testApp(
  database: OpenDatabase,
  options: {
    now?: number;
    health?: () => Promise<HealthReport>;
    ui?: Partial<UiOptions>;
    purgeOfflineWorkers?: number;
    control?: ControlClient | null;
    /** The collector's published workers (default: none, so pages read the database). */
    hot?: HotState;
    readOnly?: boolean;
    /** Whether the collector has a result backend (Abort); default unknown. */
    resultBackend?: boolean;
    auth?: Partial<AuthInput>;
    /** Keep every log line here (none printed); default: errors printed. */
    logs?: string[];
    /** Serve public/static/* as the Node entry does. */
    staticFiles?: boolean;
  } = {},
) {
  const services: Services = {
    db: database.db,
    dialect: database.dialect,
    hot: options.hot ?? NO_HOT_STATE,
    control: options.control ?? null,
    readOnly: options.readOnly ?? false,
    ...(options.resultBackend === undefined ? {} : { resultBackend: options.resultBackend }),
    // Tests reach the API without credentials unless they configure auth.
    auth: authSettings({ ...NO_AUTH_INPUT, unauthenticatedApi: true, ...options.auth }),
    inspectTimeoutMs: 1000,
    ui: { ...DEFAULT_UI, ...options.ui },
    purgeOfflineWorkers: options.purgeOfflineWorkers ?? 0,
    log: options.logs ? createLogger('test', 'debug', (_level, line) => void options.logs?.push(line)) : createLogger('test', 'error'),
    now: () => options.now ?? Date.now() / 1000,
    health: options.health ?? (async () => ({ ok: true, problems: [] })),
  };
  const prefix = services.ui.prefix;
  const staticFiles = options.staticFiles
    ? [serveStatic({ root: join(REPO_ROOT, 'public'), rewriteRequestPath: (path: string) => path.slice(prefix.length) })]
    : [];
  return createApp({ services: () => services, prefix, staticFiles });
}
