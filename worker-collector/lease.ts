// One collector writes at a time: a lease in the database (collector_leases).
// Two collectors on one database (a rolling deploy, an active/standby pair)
// would otherwise both write every event: task rows converge, but the event
// counters and histograms (count = count + incoming) would be added twice.
//
// The holder renews the lease inside every flush transaction, before writing
// anything (renewInTransaction): the fence. Renewing checks only that the
// holder is still us, not the time, so a collector that was paused (GC,
// SIGSTOP, a slow database) past its lease writes again if nobody took over,
// and can never write once someone did: its transaction rolls back with
// LeaseLostError and the batch is dropped (the new holder has been writing
// the same stream since). Each term has its own holder string, so a flush
// built in an earlier term cannot pass the fence of a later one.
//
// A standby polls every second and takes the lease once it has expired
// (tryAcquire: no row, expired, or already ours). Expiry is compared in the
// clock of the collector that looks: the collectors' clocks must agree to
// well within the ttl (NTP).
//
// Everything a flush needs is data (LeaseClaim), not a closure: the store
// checks it on its own thread (store/thread.ts).
//
// Over 300 lines on purpose: the lease is one state machine (claim, renew
// in the flush transaction, stand by, take over) and its SQL on both
// dialects; split, the fence and the rules it relies on would drift apart.

import type { Kysely } from 'kysely';
import { randomToken } from '../src/shared/base64url';
import type { CeleryEvent } from '../src/shared/celery-events';
import { createRateLimitedLog, errorMessage, type Logger } from '../src/shared/log';
import { type Database, KEY } from '../src/shared/schema';
import { foldWorkerEvent, type WorkerState } from './fold/worker';
import { retryWhileBusy } from './store/db';

/** What a flush carries to prove it may write: pure data. */
export interface LeaseClaim {
  name: string;
  /** `<collector id>/<pid>/<random>`: never shared by two processes, nor by two terms of one. */
  holder: string;
  ttlSeconds: number;
}

export class LeaseLostError extends Error {
  constructor(readonly claim: LeaseClaim) {
    super(`lease ${claim.name} is held by another collector (this one was ${claim.holder})`);
    this.name = 'LeaseLostError';
  }
}

export interface LeaseState {
  held: boolean;
  /** Who holds it after the attempt (null: nobody could be read). */
  holder: string | null;
  expiresAt: number | null;
  /** When we took it: the holder before us (null when there was no row, or it was already ours). */
  previousHolder: string | null;
}

export interface AcquireRequest extends LeaseClaim {
  /** Epoch seconds. */
  now: number;
}

/**
 * Take the lease when there is no row, it has expired, or it is already
 * ours. Atomic: an insert that does nothing if the row exists, then an
 * update conditional on the holder read just before (compare and set), so
 * of two collectors racing for an expired lease exactly one gets it.
 */
export async function tryAcquire(db: Kysely<Database>, request: AcquireRequest): Promise<LeaseState> {
  const { name, holder, ttlSeconds, now } = request;
  const expiresAt = now + ttlSeconds;
  const seen = await db.selectFrom('collector_leases').select(['holder', 'expires_at']).where('name', '=', name).executeTakeFirst();
  if (!seen) {
    // `insert ignore` (MySQL) / `insert or ignore` (SQLite): a collector that inserted first wins.
    const inserted = await db
      .insertInto('collector_leases')
      .orIgnore()
      .values({ name, holder, acquired_at: now, expires_at: expiresAt })
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return { held: true, holder, expiresAt, previousHolder: null };
    return readState(db, name, holder);
  }
  const ours = seen.holder === holder;
  if (!ours && Number(seen.expires_at) > now)
    return { held: false, holder: seen.holder, expiresAt: Number(seen.expires_at), previousHolder: null };
  const updated = await db
    .updateTable('collector_leases')
    .set({ holder, expires_at: expiresAt, ...(ours ? {} : { acquired_at: now }) })
    .where('name', '=', name)
    .where('holder', '=', seen.holder)
    .where((eb) => eb.or([eb('holder', '=', holder), eb('expires_at', '<=', now)]))
    .executeTakeFirst();
  // Matched rows (mysql2 sets CLIENT_FOUND_ROWS; SQLite counts matches): 1 when the condition held.
  if (Number(updated.numUpdatedRows) > 0) return { held: true, holder, expiresAt, previousHolder: ours ? null : seen.holder };
  return readState(db, name, holder);
}

async function readState(db: Kysely<Database>, name: string, holder: string): Promise<LeaseState> {
  const row = await db.selectFrom('collector_leases').select(['holder', 'expires_at']).where('name', '=', name).executeTakeFirst();
  return {
    held: row?.holder === holder,
    holder: row?.holder ?? null,
    expiresAt: row ? Number(row.expires_at) : null,
    previousHolder: null,
  };
}

/**
 * The fence, run first in each flush transaction (or alone, to renew when
 * idle): extend the lease if we still hold it, whether or not it has
 * expired meanwhile (nobody else wrote if nobody took it). False when
 * another collector holds it (or the row is gone): the caller must not write.
 * In MySQL the update locks the row until the transaction ends, so a
 * takeover waits for this flush to commit or roll back.
 */
export async function renewInTransaction(trx: Kysely<Database>, claim: LeaseClaim, now = Date.now() / 1000): Promise<boolean> {
  const updated = await trx
    .updateTable('collector_leases')
    .set({ expires_at: now + claim.ttlSeconds })
    .where('name', '=', claim.name)
    .where('holder', '=', claim.holder)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) > 0) return true;
  // A driver that counts changed rather than matched rows reports 0 for a same-value update.
  const row = await trx.selectFrom('collector_leases').select('holder').where('name', '=', claim.name).executeTakeFirst();
  return row?.holder === claim.holder;
}

/** On a clean stop: expire our lease now, so that a standby or a restart takes over at once. */
export async function release(db: Kysely<Database>, claim: LeaseClaim, now = Date.now() / 1000): Promise<boolean> {
  const updated = await db
    .updateTable('collector_leases')
    .set({ expires_at: now })
    .where('name', '=', claim.name)
    .where('holder', '=', claim.holder)
    .executeTakeFirst();
  return Number(updated.numUpdatedRows) > 0;
}

/**
 * While standby the collector keeps its worker registry warm (so the
 * dashboard and the first flush after a takeover are right) and nothing
 * else: task events are the active collector's to count and store.
 */
export function foldWhileStandby(event: CeleryEvent, workers: Map<string, WorkerState>): void {
  if (event.kind === 'worker') workers.set(event.hostname, foldWorkerEvent(workers.get(event.hostname), event));
}

export type LeaseMode = 'auto' | 'on' | 'off';

export interface LeaseSettings {
  name: string;
  ttlSeconds: number;
}

/**
 * Whether collectors on one database need the lease: yes when each of them
 * receives every event (Redis pub/sub; RabbitMQ with the default exclusive
 * queue per collector), no when they share a named RabbitMQ queue and each
 * event reaches only one of them (competing consumers: all of them write).
 */
export function leaseWanted(mode: LeaseMode, brokerKind: 'redis' | 'amqp', eventQueue: string): boolean {
  if (mode !== 'auto') return mode === 'on';
  return brokerKind === 'redis' || eventQueue === '';
}

export interface LeaseKeeperOptions extends LeaseSettings {
  db: Kysely<Database>;
  /** Identifies this collector in the holder (`<collector id>`); the pid and a random part are added. */
  collectorId: string;
  log: Logger;
  /** Became the writer (after start()): `from` is the holder taken over from, null when there was none. */
  onActive?: (from: string | null) => void;
  /** Stopped being the writer (after start()). */
  onStandby?: () => void;
  /** Standby: try to take the lease this often (ms). */
  pollMs?: number;
  /** Active: renew on the timer when no flush renewed for this long (ms). */
  idleRenewMs?: number;
  /** Epoch seconds. */
  now?: () => number;
}

export const DEFAULT_LEASE_TTL_SECONDS = 8;
const POLL_MS = 1_000;
const IDLE_RENEW_MS = 2_000;

/**
 * Holds the lease for a collector: takes it at start when it is free,
 * renews it when idle, polls for it while standby, releases it on stop.
 * Flushes renew it themselves (the claim travels in the flush payload) and
 * report back with renewed() or lost().
 */
export class LeaseKeeper {
  /** True while this collector may write. */
  active = false;
  private current: LeaseClaim | null = null;
  private candidate: LeaseClaim;
  private lastRenewedAt = 0;
  /** The holder last named in a standby log line, so it is said once per holder. */
  private standbyLoggedFor: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private started = false;
  private readonly warn: (key: string, message: string) => void;
  private readonly now: () => number;

  constructor(private readonly options: LeaseKeeperOptions) {
    this.now = options.now ?? (() => Date.now() / 1000);
    this.warn = createRateLimitedLog((m) => options.log.warn(m), 30_000);
    this.candidate = this.newClaim();
  }

  /** What a flush must carry while active; null while standby. */
  get claim(): LeaseClaim | null {
    return this.current;
  }

  get role(): 'active' | 'standby' {
    return this.active ? 'active' : 'standby';
  }

  /** Try once (a lone collector, or a restart after a clean stop, is active when this resolves), then keep trying. */
  async start(): Promise<void> {
    await this.tick();
    this.started = true;
    this.timer = setInterval(() => void this.tick(), this.options.pollMs ?? POLL_MS);
    this.timer.unref();
  }

  /** Stop the timer and, if we hold the lease, release it. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.started = false;
    await this.ticking;
    const claim = this.current;
    this.active = false;
    this.current = null;
    if (!claim) return;
    try {
      if (await retryWhileBusy(() => release(this.options.db, claim, this.now()), 2_000))
        this.options.log.info(`released lease ${claim.name}`);
    } catch (error) {
      this.options.log.warn(`could not release lease ${claim.name} (a standby takes over when it expires): ${errorMessage(error)}`);
    }
  }

  /** A flush carrying `claim` passed the fence at `at` (epoch seconds). */
  renewed(claim: LeaseClaim, at = this.now()): void {
    if (claim === this.current) this.lastRenewedAt = Math.max(this.lastRenewedAt, at);
  }

  /** A flush carrying `claim` found the lease held by another collector. */
  lost(claim: LeaseClaim): void {
    if (claim !== this.current) return;
    this.options.log.warn(`lost lease ${claim.name}: another collector holds it; dropping what this one had not written, standing by`);
    this.toStandby();
  }

  private newClaim(): LeaseClaim {
    const id = this.options.collectorId.slice(0, KEY.id - 40);
    return { name: this.options.name, holder: `${id}/${process.pid}/${randomToken(9)}`, ttlSeconds: this.options.ttlSeconds };
  }

  private toStandby(): void {
    if (!this.active) return;
    this.active = false;
    this.current = null;
    this.candidate = this.newClaim();
    this.standbyLoggedFor = null;
    if (this.started) this.options.onStandby?.();
  }

  private tick(): Promise<void> {
    if (!this.ticking) this.ticking = (this.active ? this.renewIdle() : this.acquire()).finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async renewIdle(): Promise<void> {
    const claim = this.current;
    const now = this.now();
    if (!claim || (now - this.lastRenewedAt) * 1000 < (this.options.idleRenewMs ?? IDLE_RENEW_MS)) return;
    let held: boolean;
    try {
      held = await retryWhileBusy(() => renewInTransaction(this.options.db, claim, now), 1_000);
    } catch (error) {
      // Unknown: stay active. If someone takes over meanwhile, the next flush's fence says so.
      this.warn('renew', `could not renew lease ${claim.name}: ${errorMessage(error)}`);
      return;
    }
    if (claim !== this.current) return;
    if (held) this.lastRenewedAt = Math.max(this.lastRenewedAt, now);
    else this.lost(claim);
  }

  private async acquire(): Promise<void> {
    const claim = this.candidate;
    const { name } = claim;
    let state: LeaseState;
    try {
      state = await retryWhileBusy(() => tryAcquire(this.options.db, { ...claim, now: this.now() }), 900);
    } catch (error) {
      this.warn('acquire', `could not read lease ${name}: ${errorMessage(error)}`);
      return;
    }
    if (claim !== this.candidate || this.active) return;
    const log = this.options.log;
    if (state.held) {
      this.active = true;
      this.current = claim;
      this.lastRenewedAt = this.now();
      if (state.previousHolder === null) log.info(`acquired lease ${name} as ${claim.holder}`);
      else log.info(`took over lease ${name} from ${state.previousHolder} as ${claim.holder}`);
      if (this.started) this.options.onActive?.(state.previousHolder);
      return;
    }
    if (state.holder !== this.standbyLoggedFor) {
      this.standbyLoggedFor = state.holder;
      const until = state.expiresAt === null ? 'unknown' : new Date(state.expiresAt * 1000).toISOString();
      log.info(`standby: lease ${name} held by ${state.holder ?? 'nobody'} until ${until}`);
    }
  }
}
