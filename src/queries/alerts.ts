// Alerts as the collector stored them (migration 012): the rules it loaded,
// what is pending or firing now, and the recent history. Read-only.

import type { Kysely } from 'kysely';
import {
  ALERT_KINDS,
  type AlertEvent,
  type AlertInstance,
  type AlertKind,
  type AlertRule,
  type AlertsView,
  parseLabels,
  type StoredRule,
} from '../shared/alerts';
import type { Database } from '../shared/schema';

const asKind = (kind: string): AlertKind | null => ((ALERT_KINDS as readonly string[]).includes(kind) ? (kind as AlertKind) : null);

function parseRule(definition: string): AlertRule | null {
  try {
    const value = JSON.parse(definition) as AlertRule;
    return value && typeof value === 'object' && asKind(String(value.kind)) ? value : null;
  } catch {
    return null;
  }
}

export async function listAlertRules(db: Kysely<Database>): Promise<StoredRule[]> {
  const rows = await db.selectFrom('alert_rules').selectAll().orderBy('position').execute();
  return rows.flatMap((row) => {
    const rule = parseRule(row.definition);
    return rule ? [{ rule, loaded_at: Number(row.loaded_at) }] : [];
  });
}

/** Instances pending or firing, firing first, longest-firing first. */
export async function listAlertInstances(db: Kysely<Database>): Promise<AlertInstance[]> {
  const [rows, kinds] = await Promise.all([
    db.selectFrom('alert_state').selectAll().orderBy('since').orderBy('alert').orderBy('labels_key').execute(),
    db.selectFrom('alert_rules').select(['name', 'kind']).execute(),
  ]);
  const kindOf = new Map(kinds.map((k) => [k.name, asKind(k.kind)]));
  const instances = rows.map((row) => ({
    alert: row.alert,
    kind: kindOf.get(row.alert) ?? null,
    labels: parseLabels(row.labels),
    status: row.status === 'firing' ? ('firing' as const) : ('pending' as const),
    since: Number(row.since),
    value: Number(row.value),
    threshold: Number(row.threshold),
    updated_at: Number(row.updated_at),
  }));
  return [...instances.filter((i) => i.status === 'firing'), ...instances.filter((i) => i.status === 'pending')];
}

export async function alertHistory(db: Kysely<Database>, limit: number): Promise<AlertEvent[]> {
  const rows = await db.selectFrom('alert_history').selectAll().orderBy('id', 'desc').limit(limit).execute();
  return rows.map((row) => ({
    id: Number(row.id),
    at: Number(row.at),
    alert: row.alert,
    kind: asKind(row.kind),
    labels: parseLabels(row.labels),
    status: row.status === 'firing' ? ('firing' as const) : ('resolved' as const),
    since: Number(row.since),
    value: Number(row.value),
    threshold: Number(row.threshold),
    delivery: row.delivery,
  }));
}

export async function readAlerts(db: Kysely<Database>, historyLimit = 50): Promise<AlertsView> {
  const [rules, instances, history] = await Promise.all([listAlertRules(db), listAlertInstances(db), alertHistory(db, historyLimit)]);
  return { rules, instances, history };
}
