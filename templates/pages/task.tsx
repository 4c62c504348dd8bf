import type { TimelineEvent } from '../../src/ui/views';
import type { TaskRow } from '../../src/shared/schema';
import type { UiOptions } from '../../src/ui/context';
import { display } from '../../src/shared/inspect';
import { pathSegment } from '../../src/shared/text';
import { Action, ActionResults } from '../components/action';
import { Duration, durationText, exchangeText, IsoTime, StateBadge, taskHref, Time, workerHref, ZoneLabel } from '../components/format';
import { KvRow, KvTable } from '../components/kv';
import { Page as Layout } from '../overrides';

const TIMES = ['sent', 'received', 'started', 'succeeded', 'failed', 'retried', 'revoked', 'rejected'] as const;

function Pre({ text }: { text: string | null }) {
  return text === null || text === '' ? <span class="muted">—</span> : <pre>{text}</pre>;
}

function TaskLink({ id, ui }: { id: string | null; ui: UiOptions }) {
  return id ? (
    <a href={taskHref(ui, id)}>
      <code>{id}</code>
    </a>
  ) : (
    <span class="muted">—</span>
  );
}

/** A finished task that did not succeed can be sent again (POST /api/task/retry). */
const RETRYABLE = ['FAILURE', 'REVOKED', 'REJECTED'];

function RetryAction({ task, ui }: { task: TaskRow; ui: UiOptions }) {
  if (!RETRYABLE.includes(task.state)) return null;
  return (
    <div class="actions" id="task-retry">
      <Action
        ui={ui}
        path={`/api/task/retry/${pathSegment(task.uuid)}`}
        label="Retry"
        confirm="Send this task again, as a new task with the same arguments?"
        results="task-results"
      />
    </div>
  );
}

const SIGNALS = ['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGHUP'];
const FINAL = ['SUCCESS', 'FAILURE', 'REVOKED'];

/** What the task page can offer: Abort needs a result backend (see Services.resultBackend). */
export interface TaskPageOptions {
  readOnly: boolean;
  abortable: boolean;
}

function TaskActions({ task, ui, abortable }: { task: TaskRow; ui: UiOptions; abortable: boolean }) {
  if (FINAL.includes(task.state)) return null;
  const id = pathSegment(task.uuid);
  return (
    <div class="actions" id="task-actions">
      <Action
        ui={ui}
        path={`/api/task/revoke/${id}`}
        label="Revoke"
        confirm="Revoke this task? Workers will discard it."
        results="task-results"
      >
        <input type="hidden" name="terminate" value="false" />
      </Action>
      {task.state === 'STARTED' ? (
        <>
          <Action
            ui={ui}
            path={`/api/task/revoke/${id}`}
            label="Terminate"
            confirm="Terminate this running task?"
            danger
            results="task-results"
          >
            <input type="hidden" name="terminate" value="true" />
            {/* Kept as the reader chose it when the live page morphs. */}
            <select name="signal" aria-label="Signal" data-keep>
              {SIGNALS.map((s) => (
                <option value={s}>{s}</option>
              ))}
            </select>
          </Action>
          {abortable ? (
            <Action
              ui={ui}
              path={`/api/task/abort/${id}`}
              label="Abort"
              confirm="Ask this task to stop? Only a Celery AbortableTask that checks is_aborted() stops."
              results="task-results"
            />
          ) : null}
        </>
      ) : null}
    </div>
  );
}

interface TaskViewProps {
  task: TaskRow;
  childIds: string[];
  /** The tasks that retry this one, newest first. */
  retries?: string[];
  timeline: TimelineEvent[];
  ui: UiOptions;
  options: TaskPageOptions;
}

/**
 * Everything on the task page that changes with the task: polled (same URL,
 * HX-Request) and morphed in place until the task is final, when it comes
 * back without hx-trigger and the polling stops.
 */
export function TaskLive({ task, childIds, retries = [], timeline, ui, options }: TaskViewProps) {
  const poll = ui.refreshSeconds > 0 && !FINAL.includes(task.state) ? `every ${ui.refreshSeconds}s` : undefined;
  return (
    <div id="task-live" hx-get={taskHref(ui, task.uuid)} hx-trigger={poll} hx-swap="morph:outerHTML" data-state={task.state}>
      <h1>
        {task.name ?? '(unknown task)'} <StateBadge state={task.state} />
      </h1>
      <p>
        <code id="task-uuid">{task.uuid}</code>
      </p>
      {/* Why Stalk set the state itself (LOST); gone once a later event sets it. */}
      {task.state_reason ? (
        <p class="state-reason" id="state-reason">
          {task.state_reason}
        </p>
      ) : null}
      {options.readOnly ? null : (
        <>
          <TaskActions task={task} ui={ui} abortable={options.abortable} />
          <RetryAction task={task} ui={ui} />
          <ActionResults id="task-results" />
        </>
      )}
      {task.state === 'FAILURE' || task.exception ? (
        <section class="failure" aria-labelledby="error-heading">
          <h2 id="error-heading">{task.state === 'FAILURE' ? 'Error' : 'Last exception'}</h2>
          <Pre text={task.exception} />
          {task.traceback ? (
            <details open={task.state === 'FAILURE'}>
              <summary>Traceback</summary>
              <pre class="traceback">{task.traceback}</pre>
            </details>
          ) : null}
        </section>
      ) : null}
      <h2>Details</h2>
      <KvTable>
        <KvRow label="Arguments">
          <Pre text={task.args} />
        </KvRow>
        <KvRow label="Keyword arguments">
          <Pre text={task.kwargs} />
        </KvRow>
        <KvRow label="Result">
          <Pre text={task.result} />
        </KvRow>
        <KvRow label="Worker">{task.worker ? <a href={workerHref(ui, task.worker)}>{task.worker}</a> : <span class="muted">—</span>}</KvRow>
        <KvRow label="Client">{task.client ?? '—'}</KvRow>
        {TIMES.map((field) =>
          task[field] !== null ? (
            <KvRow label={field[0]!.toUpperCase() + field.slice(1)}>
              <Time at={task[field]} ui={ui} />
            </KvRow>
          ) : null,
        )}
        <KvRow label="Runtime">
          <Duration seconds={task.runtime} />
        </KvRow>
        <KvRow label="Retries">{task.retries ?? 0}</KvRow>
        <KvRow label="ETA / expires">
          <IsoTime text={task.eta} ui={ui} /> / <IsoTime text={task.expires} ui={ui} />
        </KvRow>
        <KvRow label="Queue / exchange / routing key">{`${task.queue ?? '—'} / ${exchangeText(task.exchange)} / ${task.routing_key ?? '—'}`}</KvRow>
        <KvRow label="Root">
          <TaskLink id={task.root_id} ui={ui} />
        </KvRow>
        <KvRow label="Parent">
          <TaskLink id={task.parent_id === task.uuid ? null : task.parent_id} ui={ui} />
        </KvRow>
        {task.retried_from ? (
          <KvRow label="Retry of">
            <TaskLink id={task.retried_from} ui={ui} />
          </KvRow>
        ) : null}
        {retries.length > 0 ? (
          <KvRow label="Retried as">
            <ul class="plain" id="task-retries">
              {retries.map((id) => (
                <li>
                  <TaskLink id={id} ui={ui} />
                </li>
              ))}
            </ul>
          </KvRow>
        ) : null}
        <KvRow label="Children">
          {childIds.length === 0 ? (
            <span class="muted">—</span>
          ) : (
            <ul class="plain">
              {childIds.map((id) => (
                <li>
                  <TaskLink id={id} ui={ui} />
                </li>
              ))}
            </ul>
          )}
        </KvRow>
      </KvTable>
      <h2>Timeline</h2>
      <div class="scroll">
        <table class="grid" id="timeline">
          <thead>
            <tr>
              <th scope="col">
                Time <ZoneLabel />
              </th>
              <th scope="col">Event</th>
              <th scope="col">Host</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {timeline.map((event) => (
              <tr>
                <td>
                  <Time at={event.timestamp} ui={ui} bare />
                </td>
                <td>{event.type}</td>
                <td>{event.hostname}</td>
                <td>
                  {Object.entries(event.data ?? {})
                    .map(
                      ([k, v]) => `${k}=${k === 'runtime' && typeof v === 'number' && Number.isFinite(v) ? durationText(v) : display(v)}`,
                    )
                    .join(', ')}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

export function TaskPage(props: TaskViewProps) {
  return (
    <Layout ui={props.ui} title={props.task.name ?? props.task.uuid} section="tasks">
      <TaskLive {...props} />
    </Layout>
  );
}
