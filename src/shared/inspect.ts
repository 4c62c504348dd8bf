// What Celery workers answer to inspect commands, as far as the pages read
// them. Replies are untrusted JSON: every field is optional and checked.

/** The inspect methods that fill the worker page (Flower's eight). */
export const INSPECT_METHODS = ['stats', 'active_queues', 'registered', 'scheduled', 'active', 'reserved', 'revoked', 'conf'] as const;
export type InspectMethod = (typeof INSPECT_METHODS)[number];

/**
 * The task attributes `registered` is asked to list with each name (Celery's
 * `taskinfoitems`): its three defaults and the time limits, so the page shows
 * the limits in force (the rate_limit and time_limit commands change them).
 */
export const REGISTERED_TASK_INFO = ['exchange', 'routing_key', 'rate_limit', 'time_limit', 'soft_time_limit'] as const;

export interface WorkerInspect {
  /** Seconds since the epoch when the newest replies were collected. */
  timestamp: number;
  /** When each method's reply was collected (a round may ask only some of them); absent in rows written before. */
  at?: Partial<Record<InspectMethod, number>>;
  stats?: Record<string, unknown>;
  active_queues?: Record<string, unknown>[];
  registered?: string[];
  scheduled?: Record<string, unknown>[];
  active?: Record<string, unknown>[];
  reserved?: Record<string, unknown>[];
  revoked?: string[];
  conf?: Record<string, unknown>;
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

export function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** A value from a reply as text for a table cell (JSX escapes it). */
export function display(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** When `method`'s stored reply was collected: its own time, else the row's (rows from full rounds only); null when absent. */
export function repliedAt(inspect: WorkerInspect | null, method: InspectMethod): number | null {
  if (!inspect || inspect[method] === undefined) return null;
  const at = inspect.at?.[method];
  return typeof at === 'number' ? at : typeof inspect.timestamp === 'number' ? inspect.timestamp : null;
}
