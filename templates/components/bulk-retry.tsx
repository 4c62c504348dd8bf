// "Retry N failed tasks" on the tasks list when it is filtered to failures:
// posts the list's filters to POST /api/tasks/retry with the count as its
// limit, after a confirmation that states the count (htmx's hx-confirm).

import { MAX_RETRY_TASKS } from '../../src/shared/control';
import type { UiOptions } from '../../src/ui/context';
import { Action, ActionResults } from './action';

/** The page's received times are UTC (parseUtcMinute); the API reads server local time, as Flower does. */
function localMinute(utc: string | null): string | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})Z?$/.exec(utc?.trim() ?? '');
  if (!match) return null;
  const [, y, mo, d, h, mi] = match.map(Number) as [number, number, number, number, number, number];
  const at = new Date(Date.UTC(y, mo - 1, d, h, mi));
  const two = (n: number) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())} ${two(at.getHours())}:${two(at.getMinutes())}`;
}

export interface BulkRetryView {
  query: URLSearchParams;
  total: number;
  capped: boolean;
  readOnly?: boolean | undefined;
  filterError: unknown;
}

export function BulkRetry({ view, ui }: { view: BulkRetryView; ui: UiOptions }) {
  const q = view.query;
  if (view.readOnly || view.filterError || view.total === 0) return null;
  if ((q.get('state') ?? '').toUpperCase() !== 'FAILURE' || ['1', 'true', 'on', 'yes'].includes(q.get('retried') ?? '')) return null;
  const count = Math.min(view.total, MAX_RETRY_TASKS);
  const n = count.toLocaleString('en-US');
  const what = view.capped || view.total > MAX_RETRY_TASKS ? `the newest ${n} failed tasks` : `${n} failed task${count === 1 ? '' : 's'}`;
  const fields: [string, string | null][] = [
    ['state', 'FAILURE'],
    ['taskname', q.get('name')],
    ['workername', q.get('worker')],
    ['search', q.get('q')],
    ['received_start', localMinute(q.get('received_start'))],
    ['received_end', localMinute(q.get('received_end'))],
    ['limit', String(count)],
  ];
  return (
    <div class="actions" id="bulk-retry">
      <Action
        ui={ui}
        path="/api/tasks/retry"
        label={`Retry ${what}`}
        confirm={`Send ${what} again, each as a new task with the same arguments?`}
        results="bulk-retry-results"
      >
        {fields.map(([name, value]) => (value ? <input type="hidden" name={name} value={value} /> : null))}
      </Action>
      <ActionResults id="bulk-retry-results" />
    </div>
  );
}
