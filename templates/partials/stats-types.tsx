// The task types table of /stats: per task name, what it did in the period.
// Every number links to the task list holding those tasks.

import type { TaskTypeStats } from '../../src/shared/stats';
import type { UiOptions } from '../../src/ui/context';
import type { StatsView, TaskListFilter } from '../../src/ui/stats';
import { Sparkline } from '../components/chart';
import { formatValue } from '../components/chart-scale';
import { Duration, Time, ZoneLabel } from '../components/format';
import { statsPath, tasksHref } from './stats-links';

/** A number, linked to its tasks; tasks whose name was never seen ('') have no list of their own. */
function Linked({
  row,
  view,
  ui,
  filter,
  children,
}: {
  row: TaskTypeStats;
  view: StatsView;
  ui: UiOptions;
  filter: TaskListFilter;
  children: unknown;
}) {
  if (row.name === '') return <span>{children}</span>;
  return <a href={tasksHref(ui, view, { ...filter, name: row.name })}>{children}</a>;
}

export function StatsTypes({ view, types, ui }: { view: StatsView; types: TaskTypeStats[]; ui: UiOptions }) {
  const rows = [...types].sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
  return (
    <section id="stats-types">
      <h2>Task types</h2>
      {rows.length === 0 ? (
        <p class="muted">No task finished in this period.</p>
      ) : (
        <div class="scroll">
          <table class="grid" id="task-types-table">
            <thead>
              <tr>
                <th scope="col">Task</th>
                <th scope="col" class="num">
                  Count
                </th>
                <th scope="col" class="num">
                  Failed
                </th>
                <th scope="col" class="num">
                  Retried
                </th>
                <th scope="col" class="num">
                  Runtime p50
                </th>
                <th scope="col" class="num">
                  Runtime p95
                </th>
                <th scope="col" class="num wide">
                  Queue wait p95
                </th>
                <th scope="col" class="wide">
                  Last seen <ZoneLabel />
                </th>
                <th scope="col" class="wide">
                  Activity
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr data-task-name={row.name}>
                  <th scope="row">
                    {row.name === '' ? (
                      <span class="muted">(unnamed)</span>
                    ) : (
                      <a href={`${statsPath(ui, row.name)}?period=${view.period}`}>{row.name}</a>
                    )}
                  </th>
                  <td class="num" data-col="count">
                    <Linked row={row} view={view} ui={ui} filter={{}}>
                      {row.count}
                    </Linked>
                  </td>
                  <td class="num" data-col="failed">
                    <Linked row={row} view={view} ui={ui} filter={{ state: 'FAILURE' }}>
                      {row.failed}
                      {row.failureRatio === null ? '' : ` (${formatValue(row.failureRatio * 100, 'percent')})`}
                    </Linked>
                  </td>
                  <td class="num" data-col="retried">
                    <Linked row={row} view={view} ui={ui} filter={{ retried: true }}>
                      {row.retried}
                    </Linked>
                  </td>
                  <td class="num" data-col="p50">
                    <Linked row={row} view={view} ui={ui} filter={{ sort: '-runtime' }}>
                      <Duration seconds={row.runtimeP50} />
                    </Linked>
                  </td>
                  <td class="num" data-col="p95">
                    <Linked row={row} view={view} ui={ui} filter={{ sort: '-runtime' }}>
                      <Duration seconds={row.runtimeP95} />
                    </Linked>
                  </td>
                  <td class="num wide" data-col="wait">
                    <Linked row={row} view={view} ui={ui} filter={{}}>
                      <Duration seconds={row.queueWaitP95} />
                    </Linked>
                  </td>
                  <td class="wide" data-col="last">
                    <Linked row={row} view={view} ui={ui} filter={{}}>
                      <Time at={row.lastSeen} ui={ui} bare />
                    </Linked>
                  </td>
                  <td class="wide">
                    <Sparkline
                      values={row.spark}
                      label={`${row.name}: succeeded + failed per ${Math.round((view.to - view.from) / row.spark.length / 60)} min`}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
