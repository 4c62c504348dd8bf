// The worker page's action forms: the pool and shutdown buttons above the
// tabs, and the Limits tab (each registered task with its rate and time
// limit forms). Each form posts to Flower's control API (src/routes/control.tsx).

import { pathSegment } from '../../src/shared/text';
import type { UiOptions } from '../../src/ui/context';
import { Action, ActionResults } from '../components/action';

/** Splits Celery's `registered` entry ("name [rate_limit=10/s time_limit=(1, 2)]") into name and limits. */
export function registeredTask(entry: string): { name: string; limits: string } {
  const match = /^(\S+) \[(.*)\]$/.exec(entry);
  return match ? { name: match[1]!, limits: match[2]! } : { name: entry, limits: '' };
}

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
            {readOnly ? null : <th scope="col">Rate limit</th>}
            {readOnly ? null : <th scope="col">Time limits (seconds)</th>}
          </tr>
        </thead>
        <tbody>
          {registered.map((entry) => {
            // `registered` answers "name [rate_limit=10/s]" once a task has limits.
            const { name, limits } = registeredTask(entry);
            return (
              <tr data-task-name={name}>
                <td>
                  {name}
                  {limits ? <span class="muted"> {limits}</span> : null}
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
