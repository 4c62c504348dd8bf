// What the workerd tests need beyond test/support: the Worker built exactly as
// `wrangler deploy` builds it, run under workerd through the Miniflare API with
// the settings wrangler.toml gives it, and a proxy that counts the Worker's
// database queries on their way to the PlanetScale stand-in.

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { Miniflare, Response as MiniflareResponse, fetch as outboundFetch } from 'miniflare';
import { describeExit, spawnManaged } from '../support/processes';
import { REPO_ROOT } from '../support/stalk';

const WRANGLER_BIN = join(REPO_ROOT, 'node_modules/wrangler/bin/wrangler.js');
const WRANGLER_TOML = join(REPO_ROOT, 'wrangler.toml');

/** Never phone home, never look up the account; tests run offline. */
const WRANGLER_ENV = { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' } as const;

export interface WorkerBuild {
  /** The bundled Worker (ES module) that `wrangler deploy` would upload. */
  script: string;
  remove(): void;
}

/** `wrangler deploy --dry-run --outdir <tmp>`: the production bundle, built by wrangler itself (wrangler.toml, tsconfig JSX). */
export async function buildWorker(): Promise<WorkerBuild> {
  const outdir = mkdtempSync(join(tmpdir(), 'stalk-worker-build-'));
  const proc = spawnManaged('wrangler deploy --dry-run', process.execPath, [WRANGLER_BIN, 'deploy', '--dry-run', '--outdir', outdir], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...WRANGLER_ENV },
  });
  const exit = await proc.exited;
  if (exit.code !== 0) {
    rmSync(outdir, { recursive: true, force: true });
    throw new Error(`wrangler deploy --dry-run failed (${describeExit(exit)}):\n${proc.output()}`);
  }
  return { script: join(outdir, 'worker.js'), remove: () => rmSync(outdir, { recursive: true, force: true }) };
}

export interface Workerd {
  readonly mf: Miniflare;
  /** A request to the Worker (through the assets router, as on Cloudflare), with the default headers under `headers`. */
  fetch(
    path: string,
    headers?: Record<string, string>,
    method?: 'GET' | 'POST',
  ): Promise<{ status: number; headers: Headers; text: string }>;
  /** What the Worker wrote to stderr (console.error, console.warn) so far. */
  stderr(): string;
  dispose(): Promise<void>;
}

export interface WorkerdOptions {
  /** Sent with every request `fetch` makes (e.g. Basic credentials), unless a request names the header itself. */
  headers?: Record<string, string>;
  /** Called with the URL of every subrequest the Worker makes (its fetch() calls), before it goes out. */
  onSubrequest?: (url: string) => void;
  /** Called once each subrequest's answer was read in full, with when it left and when it was answered (performance.now()). */
  onSubrequestDone?: (url: string, startedAt: number, endedAt: number) => void;
  /** Milliseconds to hold each subrequest before it goes out (a distant service); with onSubrequestDone. */
  subrequestDelayMs?: (url: string) => number;
}

/**
 * The built Worker under workerd, configured from wrangler.toml (compatibility
 * date and flags, [assets] with its binding, [vars]) through wrangler's own
 * translation to Miniflare options; `bindings` are added to (or, when
 * undefined, taken out of) the vars, as secrets would be.
 */
export async function startWorkerd(
  script: string,
  bindings: Record<string, string | undefined>,
  options: WorkerdOptions = {},
): Promise<Workerd> {
  Object.assign(process.env, WRANGLER_ENV);
  const { unstable_getMiniflareWorkerOptions } = await import('wrangler');
  const { workerOptions } = unstable_getMiniflareWorkerOptions(WRANGLER_TOML);
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...(workerOptions.bindings ?? {}), ...bindings })) {
    if (value !== undefined) vars[name] = String(value);
  }
  if (!workerOptions.assets) throw new Error('wrangler.toml has no [assets]');
  let stderr = '';
  const mf = new Miniflare({
    ...workerOptions,
    name: 'stalk',
    modules: true,
    scriptPath: script,
    // Module names are relative to this; the build lives outside the repo.
    modulesRoot: dirname(script),
    bindings: vars,
    // A user Worker behind the assets router: unmatched paths go to the Worker (edge-notes §2).
    assets: { ...workerOptions.assets, routerConfig: { ...workerOptions.assets.routerConfig, has_user_worker: true } },
    // Every fetch() of the Worker passes through here on its way out: the subrequests Cloudflare counts.
    ...(options.onSubrequest || options.onSubrequestDone
      ? {
          outboundService: async (request: Parameters<typeof outboundFetch>[0] & { url: string }) => {
            options.onSubrequest?.(request.url);
            if (!options.onSubrequestDone) return outboundFetch(request);
            const startedAt = performance.now();
            const delay = options.subrequestDelayMs?.(request.url) ?? 0;
            if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
            const answer = await outboundFetch(request);
            const body = await answer.arrayBuffer();
            options.onSubrequestDone(request.url, startedAt, performance.now());
            return new MiniflareResponse(body, { status: answer.status, statusText: answer.statusText, headers: answer.headers });
          },
        }
      : {}),
    handleRuntimeStdio(out: Readable, err: Readable) {
      out.resume();
      err.setEncoding('utf8');
      err.on('data', (chunk: string) => {
        stderr += chunk;
      });
    },
  });
  try {
    await mf.ready;
  } catch (error) {
    await mf.dispose().catch(() => undefined);
    throw new Error(`workerd did not start: ${error instanceof Error ? error.message : String(error)}\n${stderr}`);
  }
  return {
    mf,
    async fetch(path, headers = {}, method = 'GET') {
      const response = await mf.dispatchFetch(new URL(path, 'http://stalk.test').toString(), {
        method,
        headers: { ...options.headers, ...headers },
      });
      const text = await response.text();
      return { status: response.status, headers: new Headers([...response.headers.entries()]), text };
    },
    stderr: () => stderr,
    dispose: () => mf.dispose(),
  };
}

export interface CountingProxy {
  /** The stand-in's URL (credentials included) with this proxy's port. */
  readonly url: string;
  /** SQL statements the Worker sent so far. */
  queries(): string[];
  close(): Promise<void>;
}

/** An HTTP proxy in front of the PlanetScale stand-in that records every statement passing through. */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url?.endsWith('/Execute')) {
        try {
          seen.push(String((JSON.parse(body.toString('utf8')) as { query?: unknown }).query));
        } catch {
          seen.push('(unparsable request)');
        }
      }
      const forward = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', (error) =>
        res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ message: error.message })),
      );
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString().replace(/\/$/, ''),
    queries: () => [...seen],
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
