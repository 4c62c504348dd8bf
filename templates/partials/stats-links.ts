// Links of the /stats pages: between periods and names, and from a number to its tasks.

import { pathSegment } from '../../src/shared/text';
import type { UiOptions } from '../../src/ui/context';
import { type StatsView, type TaskListFilter, taskListQuery } from '../../src/ui/stats';
import { href } from '../components/format';

/** The page's own URL, for links between periods and for the poll. */
export function statsPath(ui: UiOptions, name: string | null): string {
  return href(ui, name === null ? '/stats' : `/stats/${pathSegment(name)}`);
}

export function tasksHref(ui: UiOptions, view: StatsView, filter: TaskListFilter): string {
  return `${href(ui, '/tasks')}?${taskListQuery(view.from, view.to, { ...filter, ...(view.name === null ? {} : { name: view.name }) })}`;
}
