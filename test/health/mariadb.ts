// A private MariaDB server for tests that stop, freeze and restart their
// database: its own datadir in a temp dir, its own port, its own socket. The
// shared server on 3306 is never touched.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { type ExitInfo, freePort, type ManagedProcess, spawnManaged } from '../support/processes';

const run = promisify(execFile);

export interface PrivateMariadb {
  readonly port: number;
  /** mysql://root@127.0.0.1:PORT (no database). */
  readonly serverUrl: string;
  /** The running mariadbd, if any. */
  readonly process: ManagedProcess | undefined;
  /** Start mariadbd on the datadir and port (again, after a stop). Resolves when it accepts connections. */
  start(): Promise<void>;
  /** SIGTERM (a clean shutdown); SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<ExitInfo | undefined>;
  /** SIGSTOP: the server keeps its sockets but answers nothing (a hung or unreachable server). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** Stop the server (SIGKILL if it is frozen or slow) and delete its datadir. Safe to call twice. */
  destroy(): Promise<void>;
}

/** The first of these that exists on PATH. */
async function firstCommand(names: string[]): Promise<string> {
  for (const name of names) {
    try {
      await run('sh', ['-c', `command -v ${name}`]);
      return name;
    } catch {
      // Not this one.
    }
  }
  throw new Error(`none of ${names.join(', ')} found on PATH`);
}

/** Initialise a fresh datadir (about a second) and pick a free port. The server is not started. */
export async function createPrivateMariadb(): Promise<PrivateMariadb> {
  const root = mkdtempSync(join(tmpdir(), 'stalk-mariadb-'));
  const datadir = join(root, 'data');
  // mariadbd refuses to run as root without --user=root.
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  const small = ['--innodb-log-file-size=8M', '--innodb-buffer-pool-size=16M'];
  try {
    const install = await firstCommand(['mariadb-install-db', 'mysql_install_db']);
    await run(
      install,
      [
        '--no-defaults',
        `--datadir=${datadir}`,
        // root@127.0.0.1 with an empty password, not unix_socket authentication.
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        ...asRoot,
        ...small,
      ],
      { timeout: 60_000 },
    );
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  const server = await firstCommand(['mariadbd', 'mysqld']);
  const port = await freePort();
  const serverUrl = `mysql://root@127.0.0.1:${port}`;
  let current: ManagedProcess | undefined;
  let frozen = false;
  let starts = 0;

  const stop = async (graceMs = 20_000): Promise<ExitInfo | undefined> => {
    const proc = current;
    if (!proc) return undefined;
    if (frozen) {
      proc.signal('SIGCONT');
      frozen = false;
    }
    const exit = await proc.stop(graceMs);
    current = undefined;
    return exit;
  };

  return {
    port,
    serverUrl,
    get process() {
      return current;
    },
    async start() {
      if (current) throw new Error('mariadbd is already running');
      starts += 1;
      const proc = spawnManaged(`mariadbd :${port} (start ${starts})`, server, [
        '--no-defaults',
        `--datadir=${datadir}`,
        `--port=${port}`,
        `--socket=${join(root, 'mariadbd.sock')}`,
        `--pid-file=${join(root, 'mariadbd.pid')}`,
        `--tmpdir=${root}`,
        '--bind-address=127.0.0.1',
        '--skip-name-resolve',
        ...asRoot,
        ...small,
      ]);
      current = proc;
      // The error log goes to stderr when --log-error is not given.
      await proc.waitForOutput(/ready for connections/, 30_000);
    },
    stop,
    freeze() {
      if (!current) throw new Error('mariadbd is not running');
      current.signal('SIGSTOP');
      frozen = true;
    },
    thaw() {
      if (!current) throw new Error('mariadbd is not running');
      current.signal('SIGCONT');
      frozen = false;
    },
    async destroy() {
      await stop(5_000);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Create a database on the private server; returns its mysql:// URL. */
export async function createDatabaseOn(server: PrivateMariadb, name: string): Promise<string> {
  const conn = await createConnection(server.serverUrl);
  try {
    await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await conn.end();
  }
  return `${server.serverUrl}/${name}`;
}
