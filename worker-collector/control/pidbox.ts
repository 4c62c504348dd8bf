// The pidbox mailbox: Celery's broadcast commands and their replies, the
// broker-independent part. A broker adapter (pidbox-redis.ts,
// pidbox-amqp.ts) only publishes requests on the `celery.pidbox` fanout
// exchange and hands back what arrives on this mailbox's reply queue
// `<oid>.reply.celery.pidbox`; everything a caller can observe is decided
// here, once for both brokers. Formats: docs/celery-protocol.md.
//
// Destinations, as kombu's Mailbox and Node read them (kombu/pidbox.py):
// - none, or an empty list: every worker. kombu publishes the list as given
//   and a worker runs any request whose destination is empty (`if
//   destination:` is false for []), so both mean everyone; the request goes
//   out with `destination: null`. The call collects until its timeout.
// - a non-empty list: the workers named. The call ends once that many
//   workers answered (or at the timeout), unless `limit` says otherwise.
//
// Replies: `{hostname: reply}` objects, matched to their call by the
// `ticket` header. Keys that would reach Object.prototype machinery
// (`__proto__`, `constructor`, `prototype`) are dropped: no Celery node name
// is bare (they are `name@host`), and such a key in the object the caller
// gets could replace its prototype or shadow a method. A reply arriving after
// its call ended is counted and dropped; one with an `expires` header in the
// past is dropped, as kombu does.

import { randomUUID } from 'node:crypto';
import type { Logger } from '../../src/shared/log';
import { REPLY_EXCHANGE } from '../kombu-wire';
import type { PidboxMessage } from '../transport/types';
import type { BroadcastOptions, Mailbox, Replies } from './types';

export interface PidboxMessageOptions {
  /** Worker hostnames, or undefined for every worker. */
  destination?: string[];
  /** Seconds the message stays valid; workers discard it afterwards. */
  timeout?: number;
  /** Ask for replies: the reply exchange routing key (the requester's oid). */
  replyTo?: string;
  clock?: number;
  now?: () => number;
}

/** A broadcast as kombu's Mailbox publishes it: the body workers dispatch on, and the clock and expiry headers. */
export function pidboxMessage(method: string, args: Record<string, unknown>, options: PidboxMessageOptions = {}): PidboxMessage {
  const now = options.now ?? (() => Date.now() / 1000);
  const body: Record<string, unknown> = {
    method,
    arguments: args,
    destination: options.destination ?? null,
    pattern: null,
    matcher: null,
  };
  if (options.replyTo) {
    body.ticket = randomUUID();
    body.reply_to = { exchange: REPLY_EXCHANGE, routing_key: options.replyTo };
  }
  return {
    body,
    headers: { clock: options.clock ?? 1, expires: options.timeout ? now() + options.timeout : 0 },
  };
}

/** The workers a request is for: undefined (everyone) for no destination and for an empty list alike. */
export function addressed(destination: readonly string[] | undefined): string[] | undefined {
  return destination && destination.length > 0 ? [...destination] : undefined;
}

/** How many workers end a call: `limit` when positive, else one per destination; undefined collects until the timeout. */
export function replyLimit(limit: number | undefined, destination: readonly string[] | undefined): number | undefined {
  if (limit !== undefined && limit > 0) return limit;
  return destination && destination.length > 0 ? destination.length : undefined;
}

/** Reply keys that are never taken for a worker's name. */
const UNSAFE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Whether a reply key can be kept as a worker's name. */
export function isWorkerKey(key: string): boolean {
  return !UNSAFE_KEYS.has(key);
}

/** Why a reply could not be used (counted in `PidboxMailbox.malformed`). */
export type MalformedReply = 'envelope' | 'body' | 'ticket';

/** A reply as an adapter decoded it. */
export interface PidboxReply {
  ticket: string;
  clock: number | undefined;
  expires: number | undefined;
  body: Replies;
}

/** The ticket, clock and expiry from a reply's headers. */
export function replyHeaders(headers: unknown): Omit<PidboxReply, 'body'> | 'ticket' {
  if (typeof headers !== 'object' || headers === null) return 'ticket';
  const { ticket, clock, expires } = headers as Record<string, unknown>;
  if (typeof ticket !== 'string' || ticket === '') return 'ticket';
  return {
    ticket,
    clock: typeof clock === 'number' && Number.isFinite(clock) ? clock : undefined,
    expires: typeof expires === 'number' && Number.isFinite(expires) ? expires : undefined,
  };
}

/** A reply body: JSON of `{hostname: reply}` (content type JSON or unset); anything else is 'body'. */
export function replyBody(text: string, contentType: unknown): Replies | 'body' {
  if (contentType !== undefined && contentType !== null && contentType !== 'application/json') return 'body';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'body';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body';
  return body as Replies;
}

/** A call waiting for its replies. */
class PendingCall {
  readonly replies: Replies = {};
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private resolve!: (replies: Replies) => void;
  readonly done = new Promise<Replies>((resolve) => {
    this.resolve = resolve;
  });

  constructor(
    private readonly limit: number | undefined,
    private readonly onEnd: () => void,
  ) {}

  add(body: Replies): void {
    for (const [worker, reply] of Object.entries(body)) {
      if (!isWorkerKey(worker)) continue;
      if (!Object.hasOwn(this.replies, worker)) this.count += 1;
      this.replies[worker] = reply;
    }
    if (this.limit !== undefined && this.count >= this.limit) this.end();
  }

  /** Collect for `timeoutMs` more, unless the call already ended. */
  expireAfter(timeoutMs: number): void {
    if (!this.ended) this.timer = setTimeout(() => this.end(), timeoutMs);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    this.onEnd();
    this.resolve(this.replies);
  }
}

/**
 * A pidbox mailbox on some broker. Subclasses publish requests and feed
 * what arrives on the reply queue to `receive`; calls, tickets, limits,
 * timeouts, the Lamport clock and reply filtering are all here.
 */
export abstract class PidboxMailbox implements Mailbox {
  /** This mailbox's id: the routing key of its replies (kombu's `oid`). */
  readonly oid = randomUUID();
  /** The queue (AMQP) or list (Redis) replies arrive on. */
  readonly replyQueue = `${this.oid}.${REPLY_EXCHANGE}`;
  /** Replies that could not be used, by reason. */
  readonly malformed: Record<MalformedReply, number> = { envelope: 0, body: 0, ticket: 0 };
  /** Replies that arrived for a call that had already ended (or for another requester's ticket). */
  lateReplies = 0;
  protected closed = false;
  private readonly pending = new Map<string, PendingCall>();
  /** Lamport clock, as kombu keeps one per mailbox (sent in every request's headers). */
  private lamport = 0;

  constructor(protected readonly log: Logger) {}

  /**
   * Publish `message` on the broadcast exchange. With `replies`, replies to
   * it must reach `receive` from now on (they may arrive before this resolves).
   */
  protected abstract publish(message: PidboxMessage, replies: boolean): Promise<void>;

  /** Release the broker side; called once, by close(), after every waiting call got what had arrived. */
  protected abstract release(): Promise<void>;

  /** The Lamport clock value of the last request sent or reply seen. */
  get clock(): number {
    return this.lamport;
  }

  /** Calls waiting for replies right now. */
  get inFlight(): number {
    return this.pending.size;
  }

  async call(method: string, args: Record<string, unknown>, options: BroadcastOptions): Promise<Replies> {
    if (this.closed) throw new Error('the pidbox mailbox is closed');
    const destination = addressed(options.destination);
    const timeoutMs = Math.max(0, options.timeoutMs);
    this.lamport += 1;
    const message = pidboxMessage(method, args, {
      ...(destination ? { destination } : {}),
      timeout: timeoutMs / 1000,
      ...(options.reply ? { replyTo: this.oid } : {}),
      clock: this.lamport,
    });
    if (!options.reply) {
      await this.publish(message, false);
      return {};
    }
    const ticket = message.body.ticket as string;
    const call = new PendingCall(replyLimit(options.limit, destination), () => this.pending.delete(ticket));
    // Waiting before publishing: a fast worker may answer before the publish returns.
    this.pending.set(ticket, call);
    try {
      await this.publish(message, true);
    } catch (error) {
      this.pending.delete(ticket);
      throw error;
    }
    call.expireAfter(timeoutMs);
    return call.done;
  }

  /** Hand one reply (or the reason it could not be decoded) to the call waiting for its ticket; never throws. */
  protected receive(reply: PidboxReply | MalformedReply, raw?: string): void {
    if (typeof reply === 'string') {
      this.malformed[reply] += 1;
      this.log.debug(`pidbox: skipped a malformed reply (${reply})${raw === undefined ? '' : `: ${raw.slice(0, 200)}`}`);
      return;
    }
    if (reply.clock !== undefined) this.lamport = Math.max(this.lamport, reply.clock) + 1;
    if (reply.expires && Date.now() / 1000 > reply.expires) return;
    const call = this.pending.get(reply.ticket);
    if (!call) {
      this.lateReplies += 1;
      return;
    }
    call.add(reply.body);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Whoever waits gets what arrived.
    for (const call of [...this.pending.values()]) call.end();
    await this.release();
  }
}
