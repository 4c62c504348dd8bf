// Child processes for integration tests: spawn, keep their output in memory,
// wait for a log line, stop them (SIGTERM, then SIGKILL), and print what they
// said when a test fails.

import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { createServer } from 'node:net';
import { beforeEach } from 'vitest';

/** Keep at most this much output per process (the newest part). */
const MAX_OUTPUT_CHARS = 2_000_000;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  /** Null while running. */
  exitInfo(): ExitInfo | null;
  /** Everything it wrote to stdout and stderr, interleaved as it arrived. */
  output(): string;
  /** What it wrote to stdout only. */
  stdout(): string;
  /** Resolve with the first match of `pattern` in the output (already written or still to come). */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL (to its whole process group) after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** Send a signal to the process (not its group). */
  signal(signal: NodeJS.Signals): void;
}

/** Every process spawned by this test file, for the failure report and the final cleanup. */
const spawned: ManagedProcess[] = [];

function trimmed(text: string): string {
  return text.length > MAX_OUTPUT_CHARS ? text.slice(text.length - MAX_OUTPUT_CHARS) : text;
}

export function spawnManaged(name: string, command: string, args: string[], options: SpawnOptions = {}): ManagedProcess {
  // Its own process group, so that a SIGKILL also reaches the children it forked (Celery's pool).
  const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
  const pid = child.pid;
  let output = '';
  let stdout = '';
  let exit: ExitInfo | null = null;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };

  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    output = trimmed(output + chunk);
    stdout = trimmed(stdout + chunk);
    notify();
  });
  child.stderr?.on('data', (chunk: string) => {
    output = trimmed(output + chunk);
    notify();
  });
  const exited = new Promise<ExitInfo>((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
      notify();
    });
    child.on('error', (error) => {
      output += `\n[spawn error: ${error.message}]\n`;
      if (exit === null) {
        exit = { code: null, signal: null };
        resolve(exit);
      }
      notify();
    });
  });

  const managed: ManagedProcess = {
    name,
    pid,
    child,
    exited,
    exitInfo: () => exit,
    output: () => output,
    stdout: () => stdout,
    waitForOutput(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (match) {
            done();
            resolve(match);
          } else if (exit !== null) {
            done();
            reject(new Error(`${name} exited (${describeExit(exit)}) before printing ${pattern}:\n${tail(output)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms:\n${tail(output)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 15_000) {
      if (exit !== null) return exit;
      managed.signal('SIGTERM');
      const timer = setTimeout(() => killGroup(pid), graceMs);
      const info = await exited;
      clearTimeout(timer);
      return info;
    },
    signal(signal) {
      if (exit !== null) return;
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
    },
  };
  spawned.push(managed);
  return managed;
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

function tail(text: string, lines = 60): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** Stop every process this file started that is still running (SIGTERM, then SIGKILL). */
export async function stopAllProcesses(graceMs = 10_000): Promise<void> {
  await Promise.all(spawned.map((p) => p.stop(graceMs)));
}

// A test file that dies halfway must not leave workers and servers behind.
process.once('exit', () => {
  for (const p of spawned) if (p.exitInfo() === null) killGroup(p.pid);
});

/** How much of each process's output a failure report already showed. */
const reported = new Map<ManagedProcess, number>();

/**
 * When a test in the current suite fails, print the output of the processes this file started
 * (those running when the test began and those it started), each part only once per file.
 */
export function printLogsOnFailure(): void {
  beforeEach((context) => {
    const firstIndex = spawned.length;
    const runningAtStart = spawned.filter((p) => p.exitInfo() === null);
    context.onTestFailed(() => {
      const relevant = [...runningAtStart, ...spawned.slice(firstIndex)];
      for (const p of relevant) {
        const output = p.output();
        const from = Math.min(reported.get(p) ?? 0, output.length);
        reported.set(p, output.length);
        const state = p.exitInfo();
        const header = `${p.name} (pid ${p.pid}, ${state ? `exited, ${describeExit(state)}` : 'running'})`;
        if (from > 0 && from === output.length) {
          console.log(`\n===== ${header}: nothing new since the report above =====`);
          continue;
        }
        console.log(
          `\n===== ${header}${from > 0 ? ', continued from the report above' : ''} =====\n${output.slice(from)}\n===== end of ${p.name} =====`,
        );
      }
    });
  });
}

/** A TCP port nothing listens on right now (on 127.0.0.1). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/** Poll `probe` until it returns something truthy; on timeout, fail with the last value or error. */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  timeoutMs: number,
  what = 'condition',
  intervalMs = 250,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (last) return last as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail =
        lastError !== undefined
          ? `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`
          : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${detail})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
