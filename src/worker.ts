// The Cloudflare Worker entry (production at the edge, and `npm run dev:edge`).
// Its bindings are listed in src/edge/bindings.ts.
//
// Secure by default: without a sign-in method (BASIC_AUTH, or AUTH_PROVIDER
// and its settings) and without PUBLIC_READ_ONLY=true, the Worker serves only
// /healthcheck and /static/*; everything else is a configuration page (500)
// saying what to set. A Worker is on the internet the moment it is deployed.
//
// The configuration is checked once per isolate (per distinct set of bindings):
// a missing or malformed binding answers every request with a 500 naming it
// (JSON under /api/, a short page elsewhere) and is logged once. Services are
// built once per isolate too (src/edge/services.ts).

import type { Hono } from 'hono';
import { createApp } from './app';
import { prefixedAssets } from './edge/assets';
import { bindingsFingerprint, type WorkerEnv } from './edge/bindings';
import { CLOSED_BY_DEFAULT, ConfigError, readConfig } from './edge/config';
import { closedGate, configErrorResponse } from './edge/config-error';
import { createServices } from './edge/services';
import { taskListCache } from './edge/list-cache';
import { sharedPageCache } from './edge/shared-cache';
import type { AppEnv } from './services';
import { errorMessage } from './shared/log';

/** What the Workers runtime passes as the third argument of fetch (Hono's own description of it). */
type ExecutionContext = Parameters<Hono<AppEnv>['fetch']>[2];

type Built = { ok: true; app: Hono<AppEnv> } | { ok: false; error: ConfigError };

/** Per isolate: the app for the last set of bindings seen (they do not change within an isolate). */
let built: { fingerprint: string; value: Built } | undefined;

export function buildWorkerApp(env: WorkerEnv): Built {
  const key = bindingsFingerprint(env);
  if (built?.fingerprint === key) return built.value;
  let value: Built;
  try {
    const config = readConfig(env);
    const services = createServices(config);
    const access = config.access;
    const app = createApp({
      services: () => services,
      prefix: config.ui.prefix,
      staticFiles: prefixedAssets(config.ui.prefix),
      sharedPages: sharedPageCache({ ttlSeconds: 1 }),
      taskLists: taskListCache({ ttlSeconds: 2 }),
      ...(access.kind === 'closed' ? { gate: closedGate(config.ui.prefix) } : {}),
    });
    if (access.kind === 'closed') console.error(`stalk: ${new ConfigError([...CLOSED_BY_DEFAULT.items], CLOSED_BY_DEFAULT.lead).message}`);
    value = { ok: true, app };
  } catch (caught) {
    // A client refusing its settings is a configuration problem too (its message names no secret).
    const error = caught instanceof ConfigError ? caught : new ConfigError([`the bindings were refused: ${errorMessage(caught)}`]);
    console.error(`stalk: ${error.message}`);
    value = { ok: false, error };
  }
  built = { fingerprint: key, value };
  return value;
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Promise<Response> {
    const result = buildWorkerApp(env ?? {});
    if (!result.ok) return configErrorResponse(request, result.error);
    return result.app.fetch(request, env, ctx);
  },
};
