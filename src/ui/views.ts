// The shapes the pages render that src/queries produces: the contract
// between the routes' reads and templates/, which imports nothing else from
// src/ but src/ui and src/shared. (The worker's is the collector's too:
// WorkerSummary in src/shared/workers.ts.)

import type { AuditLogTable } from '../shared/schema';

/** How many tasks of one name a worker received, finished and retried (the worker page). */
export interface TaskCountsByName {
  name: string;
  received: number;
  succeeded: number;
  failed: number;
  retried: number;
}

/** A queue's length as the collector last measured it (the broker page). */
export interface QueueView {
  name: string;
  messages: number;
  ready: number | null;
  unacked: number | null;
  consumers: number | null;
  measured_at: number;
}

/** One audit log row, numbers read back as numbers. */
export type AuditEntry = Omit<AuditLogTable, 'id'> & { id: number };

/** One event of a task's timeline (the task page). */
export interface TimelineEvent {
  type: string;
  timestamp: number;
  hostname: string;
  clock: number;
  data: Record<string, unknown> | null;
}
