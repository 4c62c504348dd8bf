// /stats and /stats/{name}: the period switch and the live panel.

import type { UiOptions } from '../../src/ui/context';
import { STATS_PERIODS, type StatsView } from '../../src/ui/stats';
import { href } from '../components/format';
import { Page as Layout } from '../overrides';
import { statsPath } from '../partials/stats-links';
import { StatsPanel } from '../partials/stats-panel';

export function StatsPage({ view, ui }: { view: StatsView; ui: UiOptions }) {
  const title = view.name === null ? 'Task statistics' : view.name;
  return (
    <Layout ui={ui} title={view.name === null ? 'Stats' : `Stats · ${view.name}`} section="stats">
      {view.name === null ? null : (
        <p class="crumbs">
          <a href={`${href(ui, '/stats')}?period=${view.period}`}>All tasks</a> /
        </p>
      )}
      <h1>{title}</h1>
      <nav class="periods" aria-label="Period">
        <span class="muted">Period:</span>
        {STATS_PERIODS.map((p) => (
          <a href={`${statsPath(ui, view.name)}?period=${p.key}`} aria-current={p.key === view.period ? 'page' : undefined} title={p.label}>
            {p.key}
          </a>
        ))}
      </nav>
      <StatsPanel view={view} ui={ui} />
    </Layout>
  );
}
