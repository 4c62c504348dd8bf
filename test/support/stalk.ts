// The real local entry (`src/node.ts`: collector and web app in one process)
// as a child process, and a small client for its HTTP API.

import { fileURLToPath } from 'node:url';
import { describeExit, type ExitInfo, type ManagedProcess, spawnManaged } from './processes';

export { waitFor } from './processes';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface StalkOptions {
  broker: string;
  /** What `--db` gets: a SQLite path or a mysql:// URL. */
  db: string;
  extraArgs?: string[];
  /** Serve /api without auth (--unauthenticated-api); default true. */
  openApi?: boolean;
  /** How long to wait for the first 200 from /healthcheck. */
  healthyTimeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  text: string;
}

export interface Stalk {
  readonly process: ManagedProcess;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string;
  fetchJson<T = unknown>(path: string): Promise<T>;
  fetchText(path: string): Promise<HttpResponse>;
  /** SIGTERM (the process flushes what it holds), SIGKILL after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

export async function startStalk(options: StalkOptions): Promise<Stalk> {
  const args = [
    '--import',
    'tsx',
    'src/node.ts',
    '--broker',
    options.broker,
    '--db',
    options.db,
    '--port',
    '0',
    '--address',
    '127.0.0.1',
    // Without auth the API is closed unless asked for, as in Flower.
    ...(options.openApi === false ? [] : ['--unauthenticated-api']),
    ...(options.extraArgs ?? []),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Options come from the flags above only.
  for (const key of Object.keys(env))
    if (key.startsWith('STALK_') || key.startsWith('FLOWER_') || key === 'CELERY_BROKER_URL') delete env[key];
  const proc = spawnManaged(`stalk (${options.broker}, ${options.db})`, process.execPath, args, { cwd: REPO_ROOT, env });
  try {
    const match = await proc.waitForOutput(/Stalk at http:\/\/127\.0\.0\.1:(\d+)\//, 30_000);
    const port = Number(match[1]);
    const baseUrl = `http://127.0.0.1:${port}`;

    const fetchText = async (path: string): Promise<HttpResponse> => {
      const response = await fetch(baseUrl + path, { signal: AbortSignal.timeout(10_000) });
      return { status: response.status, text: await response.text() };
    };
    const fetchJson = async <T>(path: string): Promise<T> => {
      const { status, text } = await fetchText(path);
      if (status !== 200) throw new Error(`GET ${path}: HTTP ${status}: ${text}`);
      return JSON.parse(text) as T;
    };

    const healthyTimeoutMs = options.healthyTimeoutMs ?? 30_000;
    const deadline = Date.now() + healthyTimeoutMs;
    let last: HttpResponse | undefined;
    for (;;) {
      const exit = proc.exitInfo();
      if (exit) throw new Error(`stalk exited (${describeExit(exit)}) before it was healthy`);
      last = await fetchText('/healthcheck').catch((error: Error) => ({ status: 0, text: error.message }));
      if (last.status === 200) break;
      if (Date.now() > deadline) throw new Error(`stalk not healthy within ${healthyTimeoutMs} ms: ${last.status} ${last.text}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { process: proc, port, baseUrl, fetchJson, fetchText, stop: (graceMs = 20_000) => proc.stop(graceMs) };
  } catch (error) {
    await proc.stop(5_000);
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- stalk output ---\n${proc.output()}`);
  }
}

/** A task as /api/tasks and /api/task/info render it (Flower's shape). */
export interface ApiTask {
  uuid: string;
  name: string | null;
  state: string;
  received: number | null;
  sent: number | null;
  started: number | null;
  rejected: number | null;
  succeeded: number | null;
  failed: number | null;
  retried: number | null;
  revoked: number | null;
  args: string | null;
  kwargs: string | null;
  eta: string | null;
  expires: string | null;
  retries: number | null;
  worker: string | null;
  result: string | null;
  exception: string | null;
  timestamp: number | null;
  runtime: number | null;
  traceback: string | null;
  exchange: string | null;
  routing_key: string | null;
  clock: number | null;
  client: string | null;
  root: string | null;
  root_id: string | null;
  parent: string | null;
  parent_id: string | null;
  children: string[];
}

export interface ApiWorker {
  hostname: string;
  status: boolean;
  pid: number | null;
  freq: number | null;
  heartbeats: number[];
  clock: number | null;
  active: number | null;
  processed: number | null;
  loadavg: number[] | null;
  sw_ident: string | null;
  sw_ver: string | null;
  sw_sys: string | null;
  utcoffset: number | null;
  last_heartbeat: number | null;
  events: Record<string, number>;
}
