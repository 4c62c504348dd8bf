// What Celery workers answer to inspect commands, as far as the pages read
// them. Replies are untrusted JSON: every field is optional and checked.

export interface WorkerInspect {
  /** Seconds since the epoch when the replies were collected. */
  timestamp: number;
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
