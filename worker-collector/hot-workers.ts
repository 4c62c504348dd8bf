// The workers dashboard as the collector knows it after each flush: the
// records the web app in this process reads (the local all-in-one mode), and
// the snapshot offered to the hot state for the edge (PacedHotState in
// hot-state.ts decides when it is published).

import { createRateLimitedLog, errorMessage, type Logger } from '../src/shared/log';
import type { WorkerRecord } from '../src/shared/workers';
import { type WorkerState, workerToRow } from './fold/worker';
import { type HotStatePublisher, PacedHotState } from './hot-state';

export class HotWorkers {
  private readonly paced: PacedHotState | undefined;

  /**
   * `workers` and `events` are the collector's own maps (the registry and the
   * events counted per worker and type), read when a snapshot is built.
   */
  constructor(
    private readonly workers: ReadonlyMap<string, WorkerState>,
    private readonly events: ReadonlyMap<string, Record<string, number>>,
    publisher: HotStatePublisher | undefined,
    log: Logger,
  ) {
    if (publisher) {
      const warn = createRateLimitedLog((m) => log.warn(m));
      this.paced = new PacedHotState(publisher, (error) => warn('publish', `publishing hot state failed: ${errorMessage(error)}`));
    }
  }

  /** The workers dashboard as of the last flush. */
  records(): WorkerRecord[] {
    const records: WorkerRecord[] = [];
    for (const worker of this.workers.values()) {
      const row = workerToRow(worker);
      records.push({
        ...row,
        loadavg: worker.loadavg,
        heartbeats: worker.heartbeats,
        events: { ...(this.events.get(worker.hostname) ?? {}) },
      });
    }
    return records;
  }

  /** Offer the workers to the hot state, which publishes as often as it is worth (PacedHotState). */
  offer(): void {
    this.paced?.offer(() => ({ updated_at: Date.now() / 1000, workers: this.records() }));
  }

  async close(): Promise<void> {
    await this.paced?.close();
  }
}
