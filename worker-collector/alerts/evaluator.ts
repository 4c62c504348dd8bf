// Alert evaluation in the collector: every --alerts-interval, if this
// collector holds the lease (so two collectors never both notify), measure
// each rule from stored state, advance its instances (state-machine.ts),
// write what changed (alert_state, alert_history) and start the webhook
// deliveries without waiting for them. The instances are read back from the
// database each time, so a restart or a failover carries on from what was
// stored: a still-firing alert is not notified again.
//
// This runs on its own timer on the collector's main connection; the event
// flush never waits for it.

import type { Kysely } from 'kysely';
import {
  type AlertPayload,
  type AlertRule,
  type AlertsConfig,
  alertPath,
  alertText,
  labelsKey,
  parseLabels,
  ruleThreshold,
} from '../../src/shared/alerts';
import { errorMessage, type Logger } from '../../src/shared/log';
import type { Database } from '../../src/shared/schema';
import { retryWhileBusy } from '../store/db';
import { measureRule } from './measure';
import { describeDeliveries, type NotifierOptions, WebhookNotifier } from './notifier';
import { type InstanceState, stepAlert, type Transition } from './state-machine';

/** The history keeps this long and at most this many rows. */
export const HISTORY_MAX_AGE_SECONDS = 30 * 86_400;
export const HISTORY_MAX_ROWS = 10_000;
const PRUNE_EVERY_SECONDS = 60;

export interface AlertSettings {
  config: AlertsConfig;
  intervalMs: number;
  /** --public-url, for the links in payloads ('' for paths alone). */
  publicUrl: string;
  /** --url-prefix: the paths' prefix when there is no public URL. */
  urlPrefix?: string;
  notifier?: Omit<NotifierOptions, 'log'>;
}

export interface AlertEvaluatorOptions extends AlertSettings {
  db: Kysely<Database>;
  log: Logger;
  /** Whether this collector may notify now (it holds the lease, or there is none). */
  isActive: () => boolean;
  lastEventAt: () => number | null;
  startedAt: number;
  now?: () => number;
}

export class AlertEvaluator {
  readonly notifier: WebhookNotifier;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rulesWritten = false;
  private lastPrune = 0;
  private readonly now: () => number;

  constructor(private readonly options: AlertEvaluatorOptions) {
    this.notifier = new WebhookNotifier({ ...options.notifier, log: options.log });
    this.now = options.now ?? (() => Date.now() / 1000);
  }

  start(): void {
    const { rules, webhooks } = this.options.config;
    this.options.log.info(
      `${rules.length} alert rules, ${Object.keys(webhooks).length} webhooks, evaluated every ${this.options.intervalMs / 1000} s while this collector holds the lease`,
    );
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.timer.unref();
    void this.tick();
  }

  /** Stop evaluating; deliveries in flight get `graceMs` to finish (they are not waited for longer). */
  async stop(graceMs = 2_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await this.notifier.settle(graceMs);
  }

  /** Another collector may have loaded other rules meanwhile: write ours again on taking the lease. */
  becameActive(): void {
    this.rulesWritten = false;
  }

  private tick(): Promise<void> {
    if (!this.running)
      this.running = this.evaluate()
        .catch((error: unknown) => this.options.log.warn(`alert evaluation failed: ${errorMessage(error)}`))
        .finally(() => (this.running = undefined));
    return this.running;
  }

  /** One evaluation of every rule (public for tests). */
  async evaluate(): Promise<void> {
    if (!this.options.isActive()) return;
    const { db } = this.options;
    const now = this.now();
    if (!this.rulesWritten) {
      await retryWhileBusy(() => writeRules(db, this.options.config.rules, now));
      this.rulesWritten = true;
    }
    const stored = await db.selectFrom('alert_state').selectAll().execute();
    for (const rule of this.options.config.rules) {
      const previous = new Map<string, InstanceState>();
      for (const row of stored) {
        if (row.alert !== rule.name) continue;
        previous.set(row.labels_key, {
          labels: parseLabels(row.labels),
          status: row.status === 'firing' ? 'firing' : 'pending',
          since: Number(row.since),
          value: Number(row.value),
        });
      }
      try {
        await this.evaluateRule(rule, previous, now);
      } catch (error) {
        this.options.log.warn(`alert rule "${rule.name}" not evaluated: ${errorMessage(error)}`);
      }
    }
    if (now - this.lastPrune >= PRUNE_EVERY_SECONDS) {
      this.lastPrune = now;
      await retryWhileBusy(() => pruneHistory(db, now));
    }
  }

  private async evaluateRule(rule: AlertRule, previous: Map<string, InstanceState>, now: number): Promise<void> {
    const { db } = this.options;
    const measured = await measureRule(rule, {
      db,
      now,
      lastEventAt: this.options.lastEventAt(),
      startedAt: this.options.startedAt,
    });
    const { next, transitions } = stepAlert(previous, measured.observations, measured.forSeconds, now);
    if (next.size === 0 && previous.size === 0) return;
    const threshold = ruleThreshold(rule);
    const historyIds = await retryWhileBusy(() =>
      db.transaction().execute(async (trx) => {
        await trx.deleteFrom('alert_state').where('alert', '=', rule.name).execute();
        if (next.size > 0) {
          await trx
            .insertInto('alert_state')
            .values(
              [...next].map(([key, s]) => ({
                alert: rule.name,
                labels_key: key,
                labels: JSON.stringify(s.labels),
                status: s.status,
                since: s.since,
                value: s.value,
                threshold,
                updated_at: now,
              })),
            )
            .execute();
        }
        const ids: number[] = [];
        for (const t of transitions) {
          const inserted = await trx
            .insertInto('alert_history')
            .values({
              at: now,
              alert: rule.name,
              kind: rule.kind,
              labels: labelsKey(t.labels),
              status: t.status,
              since: t.since,
              value: t.value,
              threshold,
              delivery: null,
            })
            .executeTakeFirst();
          ids.push(Number(inserted.insertId));
        }
        return ids;
      }),
    );
    for (const [i, t] of transitions.entries()) this.notify(rule, t, threshold, historyIds[i]!);
  }

  /** Start the deliveries; their outcome lands in the history row later. */
  private notify(rule: AlertRule, t: Transition, threshold: number, historyId: number): void {
    const { log, config } = this.options;
    log.info(`alert "${rule.name}" ${t.status} ${labelsKey(t.labels)}: value ${t.value}, threshold ${threshold}`);
    const hooks = rule.notify.map((name): [string, string] => [name, config.webhooks[name]!]);
    if (hooks.length === 0) return;
    const payload: AlertPayload = {
      alert: rule.name,
      status: t.status,
      kind: rule.kind,
      labels: t.labels,
      value: t.value,
      threshold,
      since: new Date(t.since * 1000).toISOString(),
      url: this.link(alertPath(rule, t.labels)),
      text: alertText(rule, t.status, t.labels, t.value),
    };
    void this.notifier.deliverAll(hooks, payload).then((results) =>
      retryWhileBusy(() =>
        this.options.db
          .updateTable('alert_history')
          .set({ delivery: describeDeliveries(results) })
          .where('id', '=', historyId)
          .execute(),
      ).catch((error: unknown) => log.debug(`recording the delivery of alert "${rule.name}" failed: ${errorMessage(error)}`)),
    );
  }

  private link(path: string): string {
    const base = this.options.publicUrl ? this.options.publicUrl.replace(/\/+$/, '') : (this.options.urlPrefix ?? '');
    return `${base}${path}`;
  }
}

/** Replace the stored rules with these; instances of rules no longer in the file are dropped (nobody to notify). */
export async function writeRules(db: Kysely<Database>, rules: readonly AlertRule[], now: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('alert_rules').execute();
    if (rules.length > 0) {
      await trx
        .insertInto('alert_rules')
        .values(
          rules.map((rule, i) => ({ name: rule.name, position: i, kind: rule.kind, definition: JSON.stringify(rule), loaded_at: now })),
        )
        .execute();
    }
    const names = rules.map((r) => r.name);
    let gone = trx.deleteFrom('alert_state');
    if (names.length > 0) gone = gone.where('alert', 'not in', names);
    await gone.execute();
  });
}

/** Keep HISTORY_MAX_AGE_SECONDS and at most HISTORY_MAX_ROWS rows. */
export async function pruneHistory(db: Kysely<Database>, now: number): Promise<void> {
  await db
    .deleteFrom('alert_history')
    .where('at', '<', now - HISTORY_MAX_AGE_SECONDS)
    .execute();
  const cut = await db.selectFrom('alert_history').select('id').orderBy('id', 'desc').offset(HISTORY_MAX_ROWS).limit(1).executeTakeFirst();
  if (cut) await db.deleteFrom('alert_history').where('id', '<=', cut.id).execute();
}
