// Failures of the period grouped by exception class: how many, first and
// last seen, and the failed tasks (the task list searching for the class).

import type { UiOptions } from '../../src/ui/context';
import { searchPhrase, type StatsView } from '../../src/ui/stats';
import { Time, ZoneLabel } from '../components/format';
import { tasksHref } from './stats-links';

export function StatsExceptions({ view, ui }: { view: StatsView; ui: UiOptions }) {
  const all = view.name === null;
  return (
    <section id="stats-exceptions">
      <h2>{all ? 'Failures by exception' : 'Top exceptions'}</h2>
      {view.exceptions.length === 0 ? (
        <p class="muted">No failures in this period.</p>
      ) : (
        <div class="scroll">
          <table class="grid" id="exceptions-table">
            <thead>
              <tr>
                <th scope="col">Exception</th>
                {all ? <th scope="col">Task</th> : null}
                <th scope="col" class="num">
                  Count
                </th>
                <th scope="col" class="wide">
                  First seen <ZoneLabel />
                </th>
                <th scope="col">
                  Last seen <ZoneLabel />
                </th>
              </tr>
            </thead>
            <tbody>
              {view.exceptions.map((e) => {
                const link = tasksHref(ui, view, {
                  ...(e.name === '' ? {} : { name: e.name }),
                  state: 'FAILURE',
                  ...(e.exception === '' ? {} : { q: searchPhrase(e.exception) }),
                });
                return (
                  <tr data-exception={e.exception}>
                    <th scope="row">
                      <code>{e.exception === '' ? '(no exception text)' : e.exception}</code>
                    </th>
                    {all ? <td>{e.name === '' ? <span class="muted">(unnamed)</span> : e.name}</td> : null}
                    <td class="num">
                      <a href={link}>{e.count}</a>
                    </td>
                    <td class="wide">
                      <Time at={e.firstSeen} ui={ui} bare />
                    </td>
                    <td>
                      <a href={link}>
                        <Time at={e.lastSeen} ui={ui} bare />
                      </a>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
