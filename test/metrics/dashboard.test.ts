// docs/grafana-dashboard.json must query what /metrics exposes: every metric
// name in its expressions is a family of the exposition (or a histogram's
// _bucket/_sum/_count), and every variable it uses is defined.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { REPO_ROOT } from '../support/stalk';
import { type Family, parseExposition } from './exposition';
import { NOW, seedCluster } from './seed';

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string; datasource?: { uid?: string } }[];
  datasource?: { uid?: string };
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
}

const dashboard = JSON.parse(readFileSync(`${REPO_ROOT}docs/grafana-dashboard.json`, 'utf8')) as Dashboard;
const GRAFANA_VARIABLES = new Set(['__rate_interval', '__range', '__interval']);

let database: (OpenDatabase & { drop(): Promise<void> }) | undefined;
let exposed: Map<string, Family>;

beforeAll(async () => {
  database = await openTestDatabase('sqlite');
  await seedCluster(database);
  exposed = parseExposition(await (await testApp(database, { now: NOW }).request('/metrics')).text());
});
afterAll(async () => {
  await database?.drop();
});

function metricNames(expr: string): string[] {
  // Identifiers that are metric names: ours all start with one of these prefixes.
  return [...expr.matchAll(/\b((?:flower|celery|stalk)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

function isExposed(name: string): boolean {
  const family = exposed.get(name);
  if (family) return true;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && exposed.get(base)?.type === 'histogram';
}

describe('docs/grafana-dashboard.json', () => {
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr, uid: t.datasource?.uid })));
  const variables = dashboard.templating.list;

  it('has the panels asked for, each with queries on the datasource variable', () => {
    const titles = dashboard.panels.map((p) => p.title);
    for (const title of [
      'Workers online',
      'Workers offline',
      'Task events by type',
      'Failure ratio',
      'Task runtime p50 / p95',
      'Queue wait p50 / p95',
      'Queue lengths',
      'Prefetched tasks',
      'Collector lag',
      'Dropped events',
    ]) {
      expect(titles).toContain(title);
    }
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, checked literally
      expect(panel.datasource?.uid, panel.title).toBe('${datasource}');
    }
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, checked literally
    for (const { panel, uid } of exprs) expect(uid, panel).toBe('${datasource}');
  });

  it('defines the datasource, worker and task variables, from exposed labels', () => {
    expect(variables.map((v) => v.name)).toEqual(['datasource', 'worker', 'task']);
    expect(variables[0]).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const v of variables.slice(1)) {
      const [, metric, label] = /^label_values\((\w+), (\w+)\)$/.exec(v.definition ?? '') ?? [];
      expect(metric && isExposed(metric), v.name).toBe(true);
      expect(
        exposed.get(metric!)!.samples.some((s) => label! in s.labels),
        `${metric} has label ${label}`,
      ).toBe(true);
    }
  });

  it('queries only metrics that /metrics exposes, and only defined variables', () => {
    const defined = new Set(variables.map((v) => v.name));
    expect(exprs.length).toBeGreaterThan(15);
    for (const { panel, expr } of exprs) {
      const names = metricNames(expr);
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) expect(isExposed(name), `${panel}: ${name}`).toBe(true);
      for (const [, variable] of expr.matchAll(/\$\{?(\w+)\}?/g)) {
        expect(defined.has(variable!) || GRAFANA_VARIABLES.has(variable!), `${panel}: $${variable}`).toBe(true);
      }
    }
  });
});
