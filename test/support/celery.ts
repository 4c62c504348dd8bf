// Real Celery for integration tests: Debian's python3-celery running the
// tasks in test/celery/ (a worker as a child process, the scenario script,
// one-off producers).

import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describeExit, type ExitInfo, type ManagedProcess, spawnManaged } from './processes';

/** Debian's interpreter, which has python3-celery (not pyenv's `python3`). */
export const PYTHON = '/usr/bin/python3';
export const CELERY_DIR = fileURLToPath(new URL('../celery/', import.meta.url));
export const DEFAULT_RESULT_BACKEND = 'redis://localhost:6379/1';

export const REDIS_BROKER = 'redis://localhost:6379/0';
export const AMQP_BROKER = 'amqp://guest:guest@localhost:5672//';

/** The ids printed by test/celery/scenario.py, by outcome. */
export interface ScenarioIds {
  succeeded: string;
  failed: string;
  retried: string;
  hostile: string;
  terminated: string;
  blocker: string;
  revoked_queued: string;
}

const SCENARIO_KEYS = ['succeeded', 'failed', 'retried', 'hostile', 'terminated', 'blocker', 'revoked_queued'] as const;

export interface CeleryTarget {
  broker: string;
  /** Result backend URL; '' for none. Default: Redis db 1 on localhost. */
  backend?: string;
  /**
   * The task queue workers consume and clients send to (Celery's
   * task_default_queue, through STALK_TEST_QUEUE). Test files running at the
   * same time on one broker use queues of their own, so that no worker takes
   * another file's tasks. Default: 'celery'.
   */
  queue?: string;
}

export function celeryEnv(target: CeleryTarget): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Nothing from pyenv or the caller may change which Celery runs or how.
  for (const key of Object.keys(env)) {
    if (key.startsWith('CELERY_') || key === 'PYTHONPATH' || key === 'PYTHONHOME') delete env[key];
  }
  env.CELERY_BROKER_URL = target.broker;
  env.CELERY_RESULT_BACKEND = target.backend ?? DEFAULT_RESULT_BACKEND;
  if (target.queue) env.STALK_TEST_QUEUE = target.queue;
  else delete env.STALK_TEST_QUEUE;
  env.PYTHONUNBUFFERED = '1';
  env.PYTHONDONTWRITEBYTECODE = '1';
  return env;
}

/** A worker node name nobody else uses: `<prefix>-<random>@stalktest`. */
export function uniqueWorkerName(prefix = 'w'): string {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}@stalktest`;
}

export interface CeleryWorker {
  /** The worker's node name (what events carry as `hostname`). */
  readonly hostname: string;
  readonly process: ManagedProcess;
  /** Warm shutdown (SIGTERM), SIGKILL if it takes longer than `graceMs`. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

export interface WorkerOptions extends CeleryTarget {
  hostname?: string;
  /**
   * Discard messages waiting in the task queue before consuming (`--purge`), so that
   * leftovers of an earlier, interrupted run on the shared broker cannot occupy the
   * single pool process. Default true.
   */
  purge?: boolean;
  readyTimeoutMs?: number;
}

/** Start `celery worker -c 1 -E` on `broker` and wait until it says it is ready. */
export async function startWorker(options: WorkerOptions): Promise<CeleryWorker> {
  const hostname = options.hostname ?? uniqueWorkerName();
  const args = [
    '-m',
    'celery',
    '-A',
    'stalk_tasks',
    'worker',
    '-c',
    '1',
    '-n',
    hostname,
    '-E',
    '--loglevel=INFO',
    '--without-gossip',
    '--without-mingle',
  ];
  if (options.purge ?? true) args.push('--purge');
  const proc = spawnManaged(`celery worker ${hostname}`, PYTHON, args, { cwd: CELERY_DIR, env: celeryEnv(options) });
  const worker: CeleryWorker = { hostname, process: proc, stop: (graceMs = 20_000) => proc.stop(graceMs) };
  try {
    await proc.waitForOutput(new RegExp(`${escapeRegExp(hostname)} ready\\.`), options.readyTimeoutMs ?? 30_000);
  } catch (error) {
    await proc.stop(5_000);
    throw error;
  }
  return worker;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Run a Python program in test/celery with Celery's env; resolves with its stdout (fails on a non-zero exit). */
export async function runPython(name: string, args: string[], target: CeleryTarget, timeoutMs = 60_000): Promise<string> {
  const proc = spawnManaged(name, PYTHON, args, { cwd: CELERY_DIR, env: celeryEnv(target) });
  const timer = setTimeout(() => void proc.stop(2_000), timeoutMs);
  const exit = await proc.exited;
  clearTimeout(timer);
  if (exit.code !== 0) {
    throw new Error(`${name} failed (${describeExit(exit)}${exit.signal ? `, timeout ${timeoutMs} ms?` : ''}):\n${proc.output()}`);
  }
  return proc.stdout();
}

/** Run test/celery/scenario.py against a running worker; resolves with outcome -> task id. */
export async function runScenario(target: CeleryTarget, timeoutMs = 90_000): Promise<ScenarioIds> {
  const stdout = await runPython('scenario.py', ['scenario.py'], target, timeoutMs);
  const line = stdout.trim().split('\n').pop() ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new Error(`scenario.py printed no JSON:\n${stdout}`);
  }
  const ids = parsed as Record<string, unknown>;
  for (const key of SCENARIO_KEYS) {
    if (typeof ids[key] !== 'string') throw new Error(`scenario.py output lacks "${key}": ${line}`);
  }
  return parsed as ScenarioIds;
}

/** Send `stalk.add(x, y)` from a one-off producer; resolves with the task id. */
export async function sendAdd(target: CeleryTarget, x: number, y: number): Promise<string> {
  const code = `from stalk_tasks import add; print(add.apply_async((${x}, ${y})).id)`;
  const id = (await runPython(`send add(${x}, ${y})`, ['-c', code], target, 30_000)).trim().split('\n').pop() ?? '';
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error(`producer printed no task id: ${JSON.stringify(id)}`);
  return id;
}
