// The worker page's action forms: the pool and shutdown buttons above the
// tabs, and the Limits tab (each registered task with the limits in force,
// as the worker lists them, and its rate and time limit forms). Each form posts to Flower's control API (src/routes/control.tsx).

import { pathSegment } from '../../src/shared/text';
import type { UiOptions } from '../../src/ui/context';
import { Action, ActionResults } from '../components/action';

/** Splits Celery's `registered` entry ("name [rate_limit=10/s time_limit=(1, 2)]") into name and limits. */
export function registeredTask(entry: string): { name: string; limits: string } {
  const match = /^(\S+) \[(.*)\]$/.exec(entry);
  return match ? { name: match[1]!, limits: match[2]! } : { name: entry, limits: '' };
}

/** The attributes in a `registered` entry's brackets ("rate_limit=10/s time_limit=60.0") by name. */
export function taskInfoItems(limits: string): Record<string, string> {
  const items: Record<string, string> = {};
  for (const match of limits.matchAll(/(\w+)=(\([^)]*\)|\S+)/g)) items[match[1]!] = match[2]!;
  return items;
}

/** Seconds as Celery prints them ("60.0", "2") shortened: "60 s". */
function seconds(value: string): string {
  const n = Number(value);
  return Number.isFinite(n) ? `${n} s` : value;
}

/** The limits in force for one task, as the worker listed them; "none" when it has none. */
export function CurrentLimits({ items }: { items: Record<string, string> }) {
  const parts: string[] = [];
  if (items.rate_limit) parts.push(`rate ${items.rate_limit}`);
  if (items.soft_time_limit) parts.push(`soft ${seconds(items.soft_time_limit)}`);
  if (items.time_limit) parts.push(`hard ${seconds(items.time_limit)}`);
  return parts.length > 0 ? <span class="current-limits">{parts.join(' · ')}</span> : <span class="muted">none</span>;
}

const LIMIT_ITEMS = new Set(['rate_limit', 'time_limit', 'soft_time_limit']);

export function Limits({
  registered,
  worker,
  ui,
  readOnly,
  off,
}: {
  registered: string[];
  worker: string;
  ui: UiOptions;
  readOnly: boolean;
  /** Why the actions are disabled (an offline worker), or null. */
  off: string | null;
}) {
  if (registered.length === 0) return <p class="muted">No registered tasks reported.</p>;
  return (
    <div class="scroll">
      <table class="grid" id="limits">
        <thead>
          <tr>
            <th scope="col">Registered task</th>
            <th scope="col">Current limits</th>
            {readOnly ? null : <th scope="col">Rate limit</th>}
            {readOnly ? null : <th scope="col">Time limits (seconds)</th>}
          </tr>
        </thead>
        <tbody>
          {registered.map((entry) => {
            // `registered` answers "name [rate_limit=10/s]" once a task has limits.
            const { name, limits } = registeredTask(entry);
            const items = taskInfoItems(limits);
            const other = Object.entries(items)
              .filter(([key]) => !LIMIT_ITEMS.has(key))
              .map(([key, value]) => `${key}=${value}`)
              .join(' ');
            return (
              <tr data-task-name={name}>
                <td>
                  {name}
                  {other ? <span class="muted"> {other}</span> : null}
                </td>
                <td class="col-limits">
                  <CurrentLimits items={items} />
                </td>
                {readOnly ? null : (
                  <td>
                    <Action ui={ui} path={`/api/task/rate-limit/${pathSegment(name)}`} label="Apply" off={off}>
                      <input type="hidden" name="workername" value={worker} />
                      <input type="text" name="ratelimit" size={7} required placeholder="10/s" aria-label={`Rate limit of ${name}`} />
                    </Action>
                  </td>
                )}
                {readOnly ? null : (
                  <td>
                    <Action ui={ui} path={`/api/task/timeout/${pathSegment(name)}`} label="Apply" off={off}>
                      <input type="hidden" name="workername" value={worker} />
                      <input
                        type="number"
                        name="soft"
                        min="0"
                        step="any"
                        size={5}
                        placeholder="soft"
                        aria-label={`Soft time limit of ${name}`}
                      />
                      <input
                        type="number"
                        name="hard"
                        min="0"
                        step="any"
                        size={5}
                        placeholder="hard"
                        aria-label={`Hard time limit of ${name}`}
                      />
                    </Action>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function WorkerActions({ worker, ui, off }: { worker: string; ui: UiOptions; off: string | null }) {
  const w = pathSegment(worker);
  return (
    <div class="actions" id="worker-actions">
      {off ? <p class="muted off-reason">{`Actions are off: ${off}.`}</p> : null}
      <Action ui={ui} path={`/api/worker/pool/grow/${w}`} label="Grow pool" off={off} results="worker-results">
        <input type="number" name="n" min="1" value="1" size={3} aria-label="Processes to add" />
      </Action>
      <Action ui={ui} path={`/api/worker/pool/shrink/${w}`} label="Shrink pool" off={off} results="worker-results">
        <input type="number" name="n" min="1" value="1" size={3} aria-label="Processes to remove" />
      </Action>
      <Action ui={ui} path={`/api/worker/pool/autoscale/${w}`} label="Autoscale" off={off} results="worker-results">
        <input type="number" name="min" min="0" size={3} placeholder="min" required aria-label="Minimum processes" />
        <input type="number" name="max" min="0" size={3} placeholder="max" required aria-label="Maximum processes" />
      </Action>
      <Action
        ui={ui}
        path={`/api/worker/pool/restart/${w}`}
        label="Restart pool"
        confirm={`Restart the pool of ${worker}?`}
        off={off}
        results="worker-results"
      />
      <Action
        ui={ui}
        path={`/api/worker/shutdown/${w}`}
        label="Shut down"
        confirm={`Shut down ${worker}? It will not come back by itself.`}
        danger
        off={off}
        results="worker-results"
      />
      <ActionResults id="worker-results" />
    </div>
  );
}
