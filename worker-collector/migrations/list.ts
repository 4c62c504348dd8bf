// Migrations: listed here rather than read from disk so that a bundled build
// carries them. To add one: write the file, then add an entry below with its
// marker (the last table, index or trigger it creates; see markers.ts). The
// marker is required by the type: it is how `--migrate check` and
// `npm run migrate` tell that a deploy request already applied the DDL.
// Names sort in apply order.

import type { Migration } from 'kysely';
import * as initial from './2026-11-24-001-initial';
import * as queues from './2026-11-24-002-queues';
import * as search from './2026-11-24-003-search';
import * as control from './2026-11-24-004-control';
import * as lease from './2026-12-02-005-lease';
import * as searchQueue from './2026-12-02-006-search-queue';
import * as stats from './2026-12-03-007-stats';
import * as metricsSnapshot from './2026-12-03-008-metrics-snapshot';
import * as retriedFrom from './2026-12-03-010-retried-from';
import * as lost from './2026-12-03-011-lost';
import * as alerts from './2026-12-03-012-alerts';
import { index, type Markers, table, trigger } from './markers';

export interface StalkMigration {
  name: string;
  migration: Migration;
  marker: Markers;
}

export const MIGRATIONS: readonly StalkMigration[] = [
  { name: '2026-11-24-001-initial', migration: initial, marker: table('collector_status') },
  { name: '2026-11-24-002-queues', migration: queues, marker: table('queues') },
  {
    name: '2026-11-24-003-search',
    migration: search,
    marker: { mysql: index('tasks', 'tasks_search'), sqlite: trigger('tasks_search_delete') },
  },
  { name: '2026-11-24-004-control', migration: control, marker: index('audit_log', 'audit_log_at') },
  { name: '2026-12-02-005-lease', migration: lease, marker: table('collector_leases') },
  {
    name: '2026-12-02-006-search-queue',
    migration: searchQueue,
    marker: { mysql: table('search_queue'), sqlite: trigger('tasks_search_queue_update') },
  },
  { name: '2026-12-03-007-stats', migration: stats, marker: table('queue_stats') },
  { name: '2026-12-03-008-metrics-snapshot', migration: metricsSnapshot, marker: table('metrics_snapshot') },
  { name: '2026-12-03-010-retried-from', migration: retriedFrom, marker: index('tasks', 'tasks_retried_from') },
  { name: '2026-12-03-011-lost', migration: lost, marker: table('lost_counters') },
  { name: '2026-12-03-012-alerts', migration: alerts, marker: index('alert_history', 'alert_history_at') },
];

/** Kysely's bookkeeping tables, under Stalk's names. */
export const MIGRATION_TABLE = 'stalk_migrations';
export const MIGRATION_LOCK_TABLE = 'stalk_migrations_lock';

/**
 * Kysely applies migrations in name order: a list out of order would apply
 * in an order nobody reviewed, and a repeated name would be lost.
 */
export function assertMigrationOrder(list: readonly StalkMigration[]): void {
  for (let i = 1; i < list.length; i++) {
    if (!(list[i - 1]!.name < list[i]!.name)) throw new Error(`migrations out of order (or repeated) at ${list[i]!.name}`);
  }
}

assertMigrationOrder(MIGRATIONS);
