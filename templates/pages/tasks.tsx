import { TASK_STATES } from '../../src/shared/task-states';
import { TASK_COLUMN_NAMES, type UiOptions } from '../../src/ui/context';
import { Action } from '../components/action';
import { href, ZoneLabel } from '../components/format';
import { Page as Layout } from '../overrides';
import { TasksPanel, type TasksView } from '../partials/tasks-panel';

export interface TaskFilterValues {
  state: string;
  worker: string;
  name: string;
  receivedStart: TimeFieldValue;
  receivedEnd: TimeFieldValue;
  q: string;
  /** Only tasks that were retried. */
  retried: boolean;
  /** Stuck: STARTED at least this many seconds ago (as sent). */
  stuck: string;
}

/** A received-time field as shown back: `value` for the input (UTC when valid), `at` the instant (ISO) when valid. */
export interface TimeFieldValue {
  value: string;
  at?: string;
}

function Select({ name, label, value, options }: { name: string; label: string; value: string; options: string[] }) {
  return (
    <label>
      {label}
      <select name={name}>
        <option value="" selected={value === ''}>
          All
        </option>
        {options.map((option) => (
          <option value={option} selected={option === value}>
            {option}
          </option>
        ))}
      </select>
    </label>
  );
}

export function TasksPage({
  view,
  filters,
  taskNames,
  workerNames,
  ui,
  readOnly,
}: {
  view: TasksView;
  filters: TaskFilterValues;
  taskNames: string[];
  workerNames: string[];
  ui: UiOptions;
  readOnly: boolean;
}) {
  const target = href(ui, '/tasks');
  return (
    <Layout ui={ui} title="Tasks" section="tasks">
      <h1>Tasks</h1>
      <form
        class="filters"
        id="task-filters"
        action={target}
        method="get"
        hx-get={target}
        hx-target="#tasks-panel"
        hx-swap="morph:outerHTML"
        hx-push-url="true"
        hx-trigger="change, submit, input changed delay:400ms from:#search"
      >
        <label class="search">
          Search
          <input
            id="search"
            type="search"
            name="q"
            value={filters.q}
            placeholder='e.g. name:billing state:failure "connection refused"'
            autocomplete="off"
          />
        </label>
        <Select name="state" label="State" value={filters.state} options={[...TASK_STATES]} />
        <Select name="worker" label="Worker" value={filters.worker} options={workerNames} />
        <Select name="name" label="Task" value={filters.name} options={taskNames} />
        <label>
          <span>
            Received from <ZoneLabel />
          </span>
          {/* Shown in the page's zone by static/stalk.js and sent as UTC; the server fills in UTC. */}
          <input
            id="field-received_start"
            type="datetime-local"
            name="received_start"
            value={filters.receivedStart.value}
            data-utc={filters.receivedStart.at}
            data-zone-input
          />
        </label>
        <label>
          to
          <input
            id="field-received_end"
            type="datetime-local"
            name="received_end"
            value={filters.receivedEnd.value}
            data-utc={filters.receivedEnd.at}
            data-zone-input
          />
        </label>
        <label class="check">
          <input type="checkbox" name="retried" value="1" checked={filters.retried} />
          Retried
        </label>
        <label title="Only tasks STARTED at least this many seconds ago and still running">
          Stuck over (s)
          <input
            id="field-stuck"
            type="number"
            name="stuck"
            min="1"
            step="1"
            inputmode="numeric"
            value={filters.stuck}
            placeholder="seconds"
          />
        </label>
        <details class="columns">
          <summary>Columns</summary>
          {TASK_COLUMN_NAMES.map((column) => (
            <label class="check">
              <input type="checkbox" name="columns" value={column} checked={view.columns.includes(column)} />
              {column}
            </label>
          ))}
        </details>
        <noscript>
          <button type="submit">Apply</button>
        </noscript>
      </form>
      <TasksPanel view={view} ui={ui} />
      {readOnly ? null : (
        <details class="send">
          <summary>Send a task</summary>
          <Action ui={ui} path="/tasks/send" label="Send">
            <label>
              Task <input type="text" name="name" required list="task-names" placeholder="app.tasks.add" />
            </label>
            <label>
              Args (JSON) <input type="text" name="args" placeholder="[1, 2]" />
            </label>
            <label>
              Kwargs (JSON) <input type="text" name="kwargs" placeholder='{"x": 1}' />
            </label>
            <label>
              Queue <input type="text" name="queue" placeholder="celery" />
            </label>
            <label>
              Countdown (s) <input type="number" name="countdown" min="0" step="any" />
            </label>
          </Action>
          <datalist id="task-names">
            {taskNames.map((name) => (
              <option value={name}></option>
            ))}
          </datalist>
        </details>
      )}
      <details class="help" id="search-help">
        <summary>Search syntax</summary>
        <p>
          Words match anywhere in the name, arguments, result, exception, worker or id (at least 3 characters). Qualifiers:
          <code>name:</code>, <code>state:</code>, <code>worker:</code>, <code>args:</code>, <code>kwargs:</code> (also{' '}
          <code>kwargs:key=value</code>), <code>result:</code>. Quote phrases: <code>"connection refused"</code>. Terms side by side must
          all match; <code>OR</code> and parentheses combine them.
        </p>
      </details>
    </Layout>
  );
}
