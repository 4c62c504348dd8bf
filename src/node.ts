// Local all-in-one mode: the collector and the web app in one Node process,
// on SQLite by default. `npm start` runs this.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import {
  alertsFromOptions,
  checkHeapForBuffer,
  checkSpoolDir,
  collectorFromOptions,
  commandChannelFromOptions,
  onShutdownSignal,
  openMigratedDatabase,
} from '../worker-collector/setup';
import type { Collector } from '../worker-collector/collector';
import { parseBrokerUrl } from '../worker-collector/transport/broker-url';
import { createApp } from './app';
import { authConfigured, type AuthSettings, authSettings, exposureProblem, isLoopback } from './auth/config';
import { helpText, parseOptions, type StalkOptions } from './options';
import { checkHealth } from './queries/health';
import type { Services } from './services';
import { NO_HOT_STATE } from './shared/hot-state';
import { createLogger, errorMessage } from './shared/log';
import { normalizePrefix, parseTaskColumns, type UiOptions } from './ui/context';
import { useLayout } from '../templates/overrides';

function readOptions(): { options: StalkOptions; ui: UiOptions; auth: AuthSettings } {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText('npm start --'));
    process.exit(0);
  }
  try {
    const options = parseOptions(argv, process.env);
    parseBrokerUrl(options.broker);
    if (options.collector) {
      commandChannelFromOptions(options);
      checkHeapForBuffer(options.maxBufferMb);
      checkSpoolDir(options);
      alertsFromOptions(options);
    }
    if (options.staticPath && !existsSync(options.staticPath)) throw new Error(`--static-path: ${options.staticPath} does not exist`);
    const ui: UiOptions = {
      prefix: normalizePrefix(options.urlPrefix),
      naturalTime: options.naturalTime,
      tasksColumns: parseTaskColumns(options.tasksColumns),
      refreshSeconds: options.autoRefresh,
    };
    const auth = authSettings(options);
    const exposed = exposureProblem(options.address, auth, options);
    if (exposed) throw new Error(exposed);
    return { options, ui, auth };
  } catch (error) {
    console.error(`stalk: ${errorMessage(error)}`);
    process.exit(2);
  }
}

/** public/ beside the sources (src/node.ts) or the bundle (dist/node.js). */
function builtInPublic(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'public');
}

/** Load the user's layout (--template-path DIR/layout.js), failing loudly at start if it is broken. */
async function loadTemplates(dir: string): Promise<void> {
  if (!dir) return;
  const file = join(dir, 'layout.js');
  if (!existsSync(file)) throw new Error(`--template-path: ${file} does not exist`);
  const module = (await import(pathToFileURL(resolve(file)).href)) as { default?: unknown };
  if (typeof module.default !== 'function') throw new Error(`--template-path: ${file} has no default export function`);
  useLayout(module.default as Parameters<typeof useLayout>[0]);
}

async function main(): Promise<void> {
  const { options, ui, auth } = readOptions();
  const log = createLogger('stalk', options.logLevel);
  if (auth.ephemeralKey && auth.provider) log.warn('no --cookie-secret: sessions are signed with a random key and end when Stalk restarts');
  if (!authConfigured(auth)) {
    log.warn(
      `no authentication configured: pages are open to anyone who can reach ${options.address}:${options.port}${auth.unauthenticatedApi ? ', and so is the API' : '; the API needs --unauthenticated-api'}`,
    );
    if (!isLoopback(options.address) && !options.readOnly)
      log.warn('--allow-anonymous-control: anyone who reaches this port can control the workers');
  }
  try {
    await loadTemplates(options.templatePath);
  } catch (error) {
    console.error(`stalk: ${errorMessage(error)}`);
    process.exit(2);
  }
  let database;
  try {
    database = await openMigratedDatabase(options.db, log.child('db'), options.migrate);
  } catch (error) {
    console.error(`stalk: ${errorMessage(error)}`);
    process.exit(1);
  }

  let collector: Collector | undefined;
  if (options.collector) {
    collector = collectorFromOptions(options, database, log.child('collector'));
    await collector.start();
  }
  const brokerDisplay = parseBrokerUrl(options.broker).display;
  const inProcess = collector && { health: () => collector.health(), brokerDisplay };

  const services: Services = {
    db: database.db,
    dialect: database.dialect,
    log: log.child('web'),
    ui,
    purgeOfflineWorkers: options.purgeOfflineWorkers,
    metrics: { runtimeBuckets: options.taskRuntimeMetricBuckets },
    hot: collector ? { workers: async () => collector.workerRecords() } : NO_HOT_STATE,
    control: collector?.controlClient() ?? null,
    readOnly: options.readOnly,
    // As brokerControlFromOptions chooses it: --result-backend, or a Redis broker.
    resultBackend: Boolean(collector) && Boolean(options.resultBackend || parseBrokerUrl(options.broker).kind === 'redis'),
    auth,
    inspectTimeoutMs: options.inspectTimeout,
    now: () => Date.now() / 1000,
    health: () => checkHealth(database.db, Date.now() / 1000, inProcess),
  };

  // Static files: the user's --static-path first, then the built-in ones.
  const stripPrefix = (path: string) => path.slice(ui.prefix.length);
  const staticFiles = [options.staticPath, builtInPublic()]
    .filter(Boolean)
    .map((dir) => serveStatic({ root: dir, rewriteRequestPath: stripPrefix }));
  const app = createApp({ services: () => services, prefix: ui.prefix, staticFiles });

  const server = serve({ fetch: app.fetch, port: options.port, hostname: options.address }, (info) => {
    log.info(`Stalk at http://${options.address}:${info.port}${ui.prefix}/ (broker ${brokerDisplay}, database ${database.description})`);
  });
  server.on('error', (error: Error) => {
    console.error(`stalk: cannot listen on ${options.address}:${options.port}: ${error.message}`);
    process.exit(1);
  });

  onShutdownSignal(log, async () => {
    server.close();
    await collector?.stop();
    await database.close();
  });
}

void main();
