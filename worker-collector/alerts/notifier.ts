// Webhook delivery: one POST of the alert's JSON, retried with backoff
// (bounded tries, each with its own timeout). Nobody waits for it: the
// evaluator starts a delivery and moves on, so a slow or unreachable
// webhook delays nothing else (ingest does not even share a timer with it).
// What happened is logged, counted, and written to the alert's history row.

import { errorMessage, type Logger } from '../../src/shared/log';
import type { AlertPayload } from '../../src/shared/alerts';

export interface NotifierOptions {
  log: Logger;
  /** Tries per delivery (default 5). */
  tries?: number;
  /** Each request's timeout (ms, default 10 s). */
  timeoutMs?: number;
  /** Wait before the 2nd try (ms, default 1 s); doubled each time, at most 30 s. */
  backoffMs?: number;
  /** Deliveries in flight at most (default 100); past it, new ones fail at once (counted). */
  maxInFlight?: number;
}

export interface DeliveryResult {
  webhook: string;
  ok: boolean;
  tries: number;
  /** The last failure (HTTP status or error), when not ok. */
  error?: string;
}

export class WebhookNotifier {
  delivered = 0;
  failed = 0;
  private inFlight = 0;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly options: NotifierOptions) {}

  /** Deliver to each named webhook at once; resolves (never rejects) when every one is done. */
  deliverAll(webhooks: [name: string, url: string][], payload: AlertPayload): Promise<DeliveryResult[]> {
    const all = Promise.all(webhooks.map(([name, url]) => this.deliver(name, url, payload)));
    this.pending.add(all);
    void all.finally(() => this.pending.delete(all));
    return all;
  }

  async deliver(name: string, url: string, payload: AlertPayload): Promise<DeliveryResult> {
    const { log } = this.options;
    if (this.inFlight >= (this.options.maxInFlight ?? 100)) {
      this.failed += 1;
      log.error(
        `alert "${payload.alert}" ${payload.status}: not sent to webhook ${name}: too many deliveries in flight (${this.failed} failed so far)`,
      );
      return { webhook: name, ok: false, tries: 0, error: 'too many deliveries in flight' };
    }
    this.inFlight += 1;
    try {
      const tries = this.options.tries ?? 5;
      const body = JSON.stringify(payload);
      let error = '';
      for (let attempt = 1; attempt <= tries; attempt++) {
        try {
          const response = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'user-agent': 'stalk-alerts' },
            body,
            signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
            redirect: 'manual',
          });
          await response.body?.cancel().catch(() => undefined);
          if (response.status >= 200 && response.status < 300) {
            this.delivered += 1;
            log.info(`alert "${payload.alert}" ${payload.status}: sent to webhook ${name}${attempt > 1 ? ` (try ${attempt})` : ''}`);
            return { webhook: name, ok: true, tries: attempt };
          }
          error = `HTTP ${response.status}`;
        } catch (e) {
          error = errorMessage(e);
        }
        if (attempt < tries) {
          const wait = Math.min(30_000, (this.options.backoffMs ?? 1_000) * 2 ** (attempt - 1));
          await new Promise((resolve) => setTimeout(resolve, wait * (0.75 + Math.random() * 0.5)));
        }
      }
      this.failed += 1;
      log.error(
        `alert "${payload.alert}" ${payload.status}: webhook ${name} failed after ${tries} tries (${error}); ${this.failed} failed deliveries so far`,
      );
      return { webhook: name, ok: false, tries, error };
    } finally {
      this.inFlight -= 1;
    }
  }

  /** Wait for deliveries in flight, for at most `ms`. */
  async settle(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.pending]), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }
}

/** The history row's `delivery` text: `ops: delivered; chat: failed after 5 tries (HTTP 500)`. */
export function describeDeliveries(results: DeliveryResult[]): string {
  return results
    .map((r) =>
      r.ok
        ? `${r.webhook}: delivered${r.tries > 1 ? ` (try ${r.tries})` : ''}`
        : `${r.webhook}: failed after ${r.tries} tries (${r.error})`,
    )
    .join('; ');
}
