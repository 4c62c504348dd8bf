// The tasks table with its paging: included by the tasks page, polled alone
// by htmx (same URL, HX-Request) to keep the visible page live.

import type { TaskRow } from '../../src/shared/schema';
import { cutText } from '../../src/shared/text';
import type { TaskColumnName, UiOptions } from '../../src/ui/context';
import { Clip, Duration, exchangeText, href, IsoTime, StateBadge, taskHref, Time, workerHref, ZoneLabel } from '../components/format';
import { Pager } from '../components/pager';
import { BulkRetry } from '../components/bulk-retry';

export interface TasksView {
  tasks: TaskRow[];
  columns: TaskColumnName[];
  /** The page's query string without offset (filters, search, sort, columns). */
  query: URLSearchParams;
  sort: string;
  offset: number;
  limit: number;
  hasMore: boolean;
  /** Matching tasks, counted up to a cap; `capped` when there are more. */
  total: number;
  capped: boolean;
  /** Why the filters could not be applied (a search syntax error, a bad value), shown above the empty table. */
  filterError: FilterError | null;
  /** Read-only mode: no actions (the bulk retry button). */
  readOnly?: boolean;
}

/** A filter that could not be applied, and the form field at fault when one is (the message points there). */
export interface FilterError {
  message: string;
  field: 'q' | 'received_start' | 'received_end' | null;
}

/** Where to fix a filter error: the search syntax for the search box, the field itself for a received time. */
function FixHint({ field }: { field: FilterError['field'] }) {
  if (field === 'q') return <a href="#search-help">See the search syntax below.</a>;
  if (field === 'received_start' || field === 'received_end')
    return (
      <a href={`#field-${field}`}>
        Fix “Received {field === 'received_start' ? 'from' : 'to'}” above (a date and a time, in the zone the page shows).
      </a>
    );
  return null;
}

const LABELS: Record<TaskColumnName, string> = {
  name: 'Name',
  uuid: 'UUID',
  state: 'State',
  args: 'Args',
  kwargs: 'Kwargs',
  result: 'Result',
  received: 'Received',
  started: 'Started',
  runtime: 'Runtime',
  worker: 'Worker',
  exchange: 'Exchange',
  routing_key: 'Routing key',
  retries: 'Retries',
  revoked: 'Revoked',
  exception: 'Exception',
  expires: 'Expires',
  eta: 'ETA',
};

/** Columns of times: their header names the zone they are shown in. */
const TIME_COLUMNS = new Set<TaskColumnName>(['received', 'started', 'revoked', 'eta', 'expires']);

function link(ui: UiOptions, query: URLSearchParams, changes: Record<string, string | null>): string {
  const next = new URLSearchParams(query);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) next.delete(key);
    else next.set(key, value);
  }
  const text = next.toString();
  return href(ui, `/tasks${text ? `?${text}` : ''}`);
}

function Cell({ task, column, ui }: { task: TaskRow; column: TaskColumnName; ui: UiOptions }) {
  switch (column) {
    case 'name':
      return <a href={taskHref(ui, task.uuid)}>{task.name ?? '(unknown)'}</a>;
    case 'uuid':
      return (
        <a href={taskHref(ui, task.uuid)} title={task.uuid}>
          <code>{task.uuid.length > 13 ? `${cutText(task.uuid, 8)}…` : task.uuid}</code>
        </a>
      );
    case 'state':
      return <StateBadge state={task.state} />;
    case 'args':
    case 'kwargs':
    case 'result':
    case 'exception':
      return <Clip text={task[column]} />;
    case 'received':
    case 'started':
    case 'revoked':
      return <Time at={task[column]} ui={ui} bare />;
    case 'runtime':
      return <Duration seconds={task.runtime} />;
    case 'worker':
      return task.worker ? <a href={workerHref(ui, task.worker)}>{task.worker}</a> : <span class="muted">—</span>;
    case 'retries':
      return <span>{task.retries ?? 0}</span>;
    case 'eta':
    case 'expires':
      return <IsoTime text={task[column]} ui={ui} bare />;
    case 'exchange':
      return <span>{exchangeText(task.exchange)}</span>;
    default:
      return <span>{task[column] ?? ''}</span>;
  }
}

function SortHeader({ column, view, ui }: { column: TaskColumnName; view: TasksView; ui: UiOptions }) {
  const current = view.sort.replace(/^-/, '');
  const descending = view.sort.startsWith('-');
  const next = current === column && descending ? column : `-${column}`;
  const arrow = current === column ? (descending ? ' ▼' : ' ▲') : '';
  const url = link(ui, view.query, { sort: next, offset: null });
  return (
    <th scope="col" aria-sort={current === column ? (descending ? 'descending' : 'ascending') : undefined} class={`col-${column}`}>
      <a href={url} hx-get={url} hx-target="#tasks-panel" hx-swap="morph:outerHTML" hx-push-url="true">
        {LABELS[column]}
        {TIME_COLUMNS.has(column) ? (
          <>
            {' '}
            <ZoneLabel />
          </>
        ) : null}
        {arrow}
      </a>
    </th>
  );
}

/** Sort orders the sort control always offers (a column sorted by its header is added when it is another). */
const SORT_CHOICES = ['timestamp', 'received', 'started', 'runtime', 'name', 'state', 'worker', 'retries'] as const;
const SORT_LABELS: Record<string, string> = {
  ...LABELS,
  timestamp: 'Last event',
  succeeded: 'Succeeded',
  failed: 'Failed',
  retried: 'Retried',
  sent: 'Sent',
  queue: 'Queue',
};
const TIME_SORTS = new Set(['timestamp', 'received', 'started', 'succeeded', 'failed', 'retried', 'revoked', 'sent', 'eta', 'expires']);
const NUMBER_SORTS = new Set(['runtime', 'retries']);

/** "Last event, newest first", "Runtime, shortest first", "Name, A–Z": one sort order in words. */
export function sortLabel(sort: string): string {
  const column = sort.replace(/^-/, '');
  const descending = sort.startsWith('-');
  const name = SORT_LABELS[column] ?? column;
  if (TIME_SORTS.has(column)) return `${name}, ${descending ? 'newest' : 'oldest'} first`;
  if (NUMBER_SORTS.has(column))
    return `${name}, ${descending ? (column === 'runtime' ? 'longest' : 'most') : column === 'runtime' ? 'shortest' : 'fewest'} first`;
  return `${name}, ${descending ? 'Z–A' : 'A–Z'}`;
}

/**
 * The order the rows are in, in words, and the control that changes it: it
 * travels with the filter form (form=), which static/stalk.js submits when
 * it changes; without scripts the form's Apply button sends it.
 */
function SortControl({ sort }: { sort: string }) {
  const column = sort.replace(/^-/, '');
  const columns: string[] = [...SORT_CHOICES];
  if (!columns.includes(column)) columns.push(column);
  return (
    <p class="sort-order">
      <label>
        Sorted by{' '}
        <select name="sort" form="task-filters" id="task-sort" data-sort>
          {columns.flatMap((c) =>
            [`-${c}`, c].map((value) => (
              <option value={value} selected={value === sort}>
                {sortLabel(value)}
              </option>
            )),
          )}
        </select>
      </label>
    </p>
  );
}

const count = (n: number) => n.toLocaleString('en-US');

/** An offset beyond the last match (a stale link, an edited URL): the page is empty but the list is not. */
const pastTheEnd = (view: TasksView) => view.tasks.length === 0 && view.offset > 0 && view.total > 0;

/** "26–47 of 47"; "1–25 of 1,000+" when the count stopped at its cap; past the end "none of 47". */
function pageSummary(view: TasksView): string {
  const total = `${count(view.total)}${view.capped ? '+' : ''}`;
  if (view.tasks.length === 0) return pastTheEnd(view) ? `none of ${total}` : `0 of ${total}`;
  return `${count(view.offset + 1)}–${count(view.offset + view.tasks.length)} of ${total}`;
}

/** The page before this one; past the end, the last page. */
function previousPage(view: TasksView, ui: UiOptions) {
  if (view.offset === 0) return null;
  if (pastTheEnd(view)) {
    const lastPage = Math.floor((view.total - 1) / view.limit) * view.limit;
    return { href: link(ui, view.query, { offset: lastPage > 0 ? String(lastPage) : null }), label: '‹ Last page' };
  }
  return { href: link(ui, view.query, { offset: String(Math.max(0, view.offset - view.limit)) }), label: '‹ Previous' };
}

export function TasksPanel({ view, ui }: { view: TasksView; ui: UiOptions }) {
  const here = link(ui, view.query, { offset: view.offset > 0 ? String(view.offset) : null });
  const poll = ui.refreshSeconds > 0 ? `every ${ui.refreshSeconds}s` : undefined;
  const prev = previousPage(view, ui);
  const next = view.hasMore ? { href: link(ui, view.query, { offset: String(view.offset + view.limit) }), label: 'Next ›' } : null;
  return (
    <section
      id="tasks-panel"
      // Without a poll no hx-get either: htmx would fetch the panel on any click in it (a section's default trigger).
      hx-get={poll ? here : undefined}
      hx-trigger={poll}
      hx-swap="morph:outerHTML"
      data-columns={view.columns.join(',')}
    >
      <SortControl sort={view.sort} />
      {view.filterError ? (
        <p class="error" role="alert">
          {view.filterError.message} <FixHint field={view.filterError.field} />
        </p>
      ) : null}
      <div class="scroll">
        <table class="grid" id="tasks-table">
          <thead>
            <tr>
              {view.columns.map((column) => (
                <SortHeader column={column} view={view} ui={ui} />
              ))}
            </tr>
          </thead>
          <tbody>
            {view.tasks.length === 0 ? (
              <tr>
                <td colspan={view.columns.length} class="empty">
                  {pastTheEnd(view) ? `No tasks on this page: the list ends at ${count(view.total)}.` : 'No tasks match.'}
                </td>
              </tr>
            ) : (
              view.tasks.map((task) => (
                <tr id={`task-row-${task.uuid}`} data-task={task.uuid} data-state={task.state}>
                  {view.columns.map((column) => (
                    <td class={`col-${column}`}>
                      <Cell task={task} column={column} ui={ui} />
                    </td>
                  ))}
                </tr>
              ))
            )}
          </tbody>
        </table>
      </div>
      <Pager summary={pageSummary(view)} prev={prev} next={next} swap="#tasks-panel" />
      <BulkRetry view={view} ui={ui} />
    </section>
  );
}
