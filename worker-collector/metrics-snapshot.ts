// The collector's /metrics rendering (src/metrics/snapshot.ts says why):
// every --metrics-snapshot-interval it reads the stored state, renders the
// exposition text with the web app's renderer, gzips it and stores it in
// metrics_snapshot, where the Worker serves it from.
//
// Rendering tens of thousands of series takes from hundreds of milliseconds
// to seconds of CPU (bench:edge-pages: 3-7 s for 140,000 series), which
// would hold up the broker reader, so it runs on a thread of its own
// (metrics-snapshot-thread.ts) with its own connection; this side only
// starts it and ticks it. A rendering still under way when the next is due
// is not doubled. The renderer (and prom-client) is loaded by the thread
// alone (metrics-render.ts). Only MySQL/PlanetScale databases get one: a
// Worker cannot read SQLite, and the Node app renders live.

import { errorMessage, type Logger } from '../src/shared/log';
import type { MetricsSnapshotSettings, SnapshotFigures } from './metrics-render';
import { startThread } from './threads';

export type { MetricsSnapshotSettings } from './metrics-render';

/** What the thread is handed. */
export interface SnapshotThreadData {
  url: string;
  settings: MetricsSnapshotSettings;
}

export type ToSnapshotThread = { kind: 'render' } | { kind: 'close' };
export type FromSnapshotThread = { kind: 'rendered'; figures: SnapshotFigures } | { kind: 'failed'; message: string } | { kind: 'closed' };

/** The old-generation bound of the thread, MiB: rendering 140,000 series (14 MB of text) peaked at about 145 MiB of heap. */
const THREAD_HEAP_MIB = 256;

export interface MetricsSnapshots {
  stop(): Promise<void>;
}

/** Starts the thread and its timer; null when there is nothing to do (interval 0, or SQLite). */
export function startMetricsSnapshots(
  url: string,
  dialect: 'sqlite' | 'mysql',
  settings: MetricsSnapshotSettings,
  log: Logger,
): MetricsSnapshots | null {
  if (settings.intervalSeconds <= 0) return null;
  if (dialect !== 'mysql') {
    log.debug('metrics snapshots: off on SQLite (the Worker reads MySQL/PlanetScale only)');
    return null;
  }
  const worker = startThread(import.meta.url, './metrics-snapshot-thread.ts', 'metrics-snapshot-thread.js', {
    workerData: { url, settings } satisfies SnapshotThreadData,
    resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MIB },
  });
  worker.unref();
  let busy = false;
  let closed: (() => void) | undefined;
  worker.on('message', (message: FromSnapshotThread) => {
    if (message.kind === 'closed') return closed?.();
    busy = false;
    if (message.kind === 'failed') log.warn(`metrics snapshot: ${message.message}`);
    else {
      const f = message.figures;
      log.debug(
        `metrics snapshot: read ${f.readMs.toFixed(0)} ms, rendered ${f.renderMs.toFixed(0)} ms, ${f.textBytes} bytes (${f.gzipBytes} gzipped, ${f.parts} part(s))`,
      );
    }
  });
  worker.on('error', (error) => log.error(`metrics snapshot thread failed: ${errorMessage(error)}`));
  const tick = () => {
    if (busy) return;
    busy = true;
    worker.postMessage({ kind: 'render' } satisfies ToSnapshotThread);
  };
  const timer = setInterval(tick, settings.intervalSeconds * 1000);
  timer.unref();
  tick();
  return {
    async stop() {
      clearInterval(timer);
      const done = new Promise<void>((resolve) => {
        closed = resolve;
        worker.once('exit', () => resolve());
      });
      worker.postMessage({ kind: 'close' } satisfies ToSnapshotThread);
      const deadline = setTimeout(() => void worker.terminate(), 5_000);
      await done;
      clearTimeout(deadline);
      await worker.terminate();
    },
  };
}
