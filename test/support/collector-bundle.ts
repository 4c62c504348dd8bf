// The collector as `npm run collector` runs it: the bundle build.mjs makes
// (dist/collector.js with its thread entries beside it), built into a
// temporary directory, started with the same Node flags and malloc settings.
//
// Why not `node --import tsx worker-collector/main.ts`: on Node 20 the
// collector's worker threads (store thread, Redis reader) do not get tsx's
// loader, so their .ts entries fail to load ("Unknown file extension .ts")
// and the collector exits at start. The bundle has no such problem, and it
// is what production runs.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type ManagedProcess, spawnManaged } from './processes';
import { REPO_ROOT } from './stalk';

export interface CollectorBundle {
  /** The bundled entry (collector.js). */
  entry: string;
  remove(): void;
}

/** Build the Node entries into a temporary directory whose packages resolve from the repository's node_modules. */
export async function buildCollectorBundle(): Promise<CollectorBundle> {
  const dir = mkdtempSync(join(tmpdir(), 'stalk-bundle-'));
  try {
    await promisify(execFile)(process.execPath, ['build.mjs', '--outdir', dir], { cwd: REPO_ROOT });
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return { entry: join(dir, 'collector.js'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The bundled collector with `args`, as `npm run collector -- args` starts it (package.json). */
export function startBundledCollector(name: string, bundle: CollectorBundle, args: string[]): ManagedProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '65536' };
  // Options come from `args` only.
  for (const key of Object.keys(env))
    if (key.startsWith('STALK_') || key.startsWith('FLOWER_') || key.startsWith('UPSTASH_') || key === 'CELERY_BROKER_URL') delete env[key];
  return spawnManaged(
    name,
    process.execPath,
    ['--enable-source-maps', '--expose-gc', '--max-semi-space-size=4', '--max-old-space-size=192', bundle.entry, ...args],
    { cwd: REPO_ROOT, env },
  );
}
