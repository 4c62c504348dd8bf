// Local all-in-one mode: the collector and the web app in one Node process,
// on SQLite by default. `npm start` runs this.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gzip } from 'node:zlib';
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

// Responses are compressed here, on Node only: Cloudflare compresses what
// the Worker sends itself, so the shared app (createApp) does not.

/** Bodies below this size go as they are: compressing them saves nothing worth the time. */
const COMPRESS_MIN_BYTES = 1024;
/** Text worth compressing; not images, fonts or archives (already compressed), nor event streams (they must flow). */
const COMPRESSIBLE_TYPE = /^\s*(text\/(?!event-stream)|application\/(json|javascript|xml|[\w.+-]+\+(json|xml))|image\/svg\+xml)/i;
const NO_TRANSFORM = /(?:^|,)\s*no-transform\s*(?:,|$)/i;
const brotli = promisify(brotliCompress);
const gzipped = promisify(gzip);

/** The encoding to send for an Accept-Encoding header: br, else gzip, as the client weighs them (q); null for none. */
function chooseEncoding(header: string | null): 'br' | 'gzip' | null {
  if (!header) return null;
  const weights = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    if (name) weights.set(name, Number.isFinite(weight) ? weight : 0);
  }
  const weight = (name: string) => weights.get(name) ?? weights.get('*') ?? 0;
  const br = weight('br');
  const gz = weight('gzip');
  if (br > 0 && br >= gz) return 'br';
  return gz > 0 ? 'gzip' : null;
}

/**
 * `response` compressed for `request` when it is text of 1 KB or more and
 * the client accepts br or gzip. The body is read whole (pages, JSON and
 * /metrics are), so the compressed one has its length; brotli at quality 5
 * costs about what gzip does. A strong ETag becomes weak (the bytes differ
 * by encoding); If-None-Match still matches it (hono/etag compares weakly).
 */
async function compressed(request: Request, response: Response): Promise<Response> {
  const headers = response.headers;
  if (
    request.method === 'HEAD' ||
    !response.body ||
    response.status === 206 ||
    headers.has('Content-Encoding') ||
    !COMPRESSIBLE_TYPE.test(headers.get('Content-Type') ?? '') ||
    NO_TRANSFORM.test(headers.get('Cache-Control') ?? '')
  )
    return response;
  const out = new Headers(headers);
  const vary = out.get('Vary');
  if (!vary) out.set('Vary', 'Accept-Encoding');
  else if (vary !== '*' && !/(?:^|,)\s*accept-encoding\s*(?:,|$)/i.test(vary)) out.set('Vary', `${vary}, Accept-Encoding`);
  const init = { status: response.status, statusText: response.statusText, headers: out };
  const encoding = chooseEncoding(request.headers.get('Accept-Encoding'));
  const declared = Number(headers.get('Content-Length') ?? Number.NaN);
  if (!encoding || declared < COMPRESS_MIN_BYTES) return new Response(response.body, init);
  const body = Buffer.from(await response.arrayBuffer());
  if (body.length < COMPRESS_MIN_BYTES) return new Response(body, init);
  const packed =
    encoding === 'br'
      ? await brotli(body, {
          params: { [zlib.BROTLI_PARAM_QUALITY]: 5, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length },
        })
      : await gzipped(body, { level: 6 });
  out.set('Content-Encoding', encoding);
  out.set('Content-Length', String(packed.length));
  const etag = out.get('ETag');
  if (etag && !etag.startsWith('W/')) out.set('ETag', `W/${etag}`);
  return new Response(packed, init);
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

  const fetch: typeof app.fetch = async (request, ...rest) => compressed(request, await app.fetch(request, ...rest));
  const server = serve({ fetch, port: options.port, hostname: options.address }, (info) => {
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
