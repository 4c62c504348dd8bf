// The pidbox mailbox core (worker-collector/control/pidbox.ts) without a
// broker: what a request says, when a call ends, which replies it keeps.
// test/control/pidbox-destinations.test.ts checks the same rules on both
// brokers with real workers.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NOOP_LOGGER } from '../../worker-collector/redis-connection';
import {
  addressed,
  type MalformedReply,
  PidboxMailbox,
  type PidboxReply,
  replyBody,
  replyHeaders,
  replyLimit,
} from '../../worker-collector/control/pidbox';
import type { Replies } from '../../worker-collector/control/types';
import type { PidboxMessage } from '../../worker-collector/transport/types';

/** A mailbox whose broker is the test: it records what is published and is handed replies. */
class ScriptedMailbox extends PidboxMailbox {
  readonly published: { message: PidboxMessage; replies: boolean }[] = [];
  released = 0;

  constructor() {
    super(NOOP_LOGGER);
  }

  protected async publish(message: PidboxMessage, replies: boolean): Promise<void> {
    this.published.push({ message, replies });
  }

  protected async release(): Promise<void> {
    this.released += 1;
  }

  deliver(reply: PidboxReply | MalformedReply): void {
    this.receive(reply);
  }

  /** The ticket of the last request. */
  get ticket(): string {
    return this.published.at(-1)?.message.body.ticket as string;
  }

  /** Answer the last request with `body`. */
  answer(body: Replies, clock?: number): void {
    this.deliver({ ticket: this.ticket, clock, expires: undefined, body });
  }
}

/** Whether `promise` has settled, after letting pending callbacks run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

describe('pidbox destinations and limits', () => {
  it('reads no destination and an empty list alike: everyone, no limit', () => {
    expect(addressed(undefined)).toBeUndefined();
    expect(addressed([])).toBeUndefined();
    expect(addressed(['a@x'])).toEqual(['a@x']);
    expect(replyLimit(undefined, undefined)).toBeUndefined();
    expect(replyLimit(undefined, [])).toBeUndefined();
    expect(replyLimit(undefined, ['a@x', 'b@x'])).toBe(2);
    expect(replyLimit(1, ['a@x', 'b@x'])).toBe(1);
    expect(replyLimit(0, ['a@x', 'b@x'])).toBe(2);
    expect(replyLimit(3, undefined)).toBe(3);
  });
});

describe('PidboxMailbox', () => {
  let mailbox: ScriptedMailbox;

  beforeEach(() => {
    vi.useFakeTimers();
    mailbox = new ScriptedMailbox();
  });

  afterEach(async () => {
    await mailbox.close();
    vi.useRealTimers();
  });

  it('sends an empty destination list as null and collects until the timeout', async () => {
    const call = mailbox.call('ping', {}, { destination: [], timeoutMs: 1_000, reply: true });
    await vi.advanceTimersByTimeAsync(0);
    const [request] = mailbox.published;
    expect(request?.message.body.destination).toBeNull();
    expect(request?.replies).toBe(true);
    mailbox.answer({ 'a@x': { ok: 'pong' } });
    mailbox.answer({ 'b@x': { ok: 'pong' } });
    expect(await settled(call)).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await call).toEqual({ 'a@x': { ok: 'pong' }, 'b@x': { ok: 'pong' } });
  });

  it('ends a call once every named worker answered', async () => {
    const call = mailbox.call('ping', {}, { destination: ['a@x', 'b@x'], timeoutMs: 60_000, reply: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(mailbox.published[0]?.message.body.destination).toEqual(['a@x', 'b@x']);
    mailbox.answer({ 'a@x': 'pong' });
    // The same worker twice is still one worker.
    mailbox.answer({ 'a@x': 'pong again' });
    expect(await settled(call)).toBe(false);
    mailbox.answer({ 'b@x': 'pong' });
    expect(await settled(call)).toBe(true);
    expect(await call).toEqual({ 'a@x': 'pong again', 'b@x': 'pong' });
    expect(mailbox.inFlight).toBe(0);
  });

  it('drops keys that reach Object.prototype; they do not count towards the limit', async () => {
    const call = mailbox.call('ping', {}, { destination: ['a@x'], timeoutMs: 60_000, reply: true });
    await vi.advanceTimersByTimeAsync(0);
    const hostile = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"polluted": 1}, "prototype": {"polluted": 1}}') as Replies;
    mailbox.answer(hostile);
    expect(await settled(call)).toBe(false);
    mailbox.answer({ 'a@x': 'pong' });
    const replies = await call;
    expect(replies).toEqual({ 'a@x': 'pong' });
    expect(Object.getPrototypeOf(replies)).toBe(Object.prototype);
    expect(Object.keys(replies)).toEqual(['a@x']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('counts late and malformed replies, follows the Lamport clock, ignores expired replies', async () => {
    const call = mailbox.call('ping', {}, { destination: ['a@x'], timeoutMs: 60_000, reply: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(mailbox.published[0]?.message.headers.clock).toBe(1);
    mailbox.deliver('body');
    mailbox.deliver({ ticket: 'somebody-else', clock: 10, expires: undefined, body: { 'a@x': 'not this' } });
    mailbox.deliver({ ticket: mailbox.ticket, clock: undefined, expires: Date.now() / 1000 - 1, body: { 'a@x': 'expired' } });
    expect(await settled(call)).toBe(false);
    mailbox.answer({ 'a@x': 'pong' });
    expect(await call).toEqual({ 'a@x': 'pong' });
    expect(mailbox.malformed).toEqual({ envelope: 0, body: 1, ticket: 0 });
    expect(mailbox.lateReplies).toBe(1);
    // kombu's adjust: max(ours, theirs) + 1; the next request goes one further.
    expect(mailbox.clock).toBe(11);
    await mailbox.call('revoke', {}, { timeoutMs: 1_000, reply: false });
    expect(mailbox.published[1]?.message.headers.clock).toBe(12);
    expect(mailbox.published[1]?.replies).toBe(false);
    expect(mailbox.published[1]?.message.body.ticket).toBeUndefined();
  });

  it('ends waiting calls with what arrived when closed, and refuses calls afterwards', async () => {
    const call = mailbox.call('ping', {}, { timeoutMs: 60_000, reply: true });
    await vi.advanceTimersByTimeAsync(0);
    mailbox.answer({ 'a@x': 'pong' });
    await mailbox.close();
    expect(await call).toEqual({ 'a@x': 'pong' });
    expect(mailbox.released).toBe(1);
    await mailbox.close();
    expect(mailbox.released).toBe(1);
    await expect(mailbox.call('ping', {}, { timeoutMs: 100, reply: true })).rejects.toThrow('closed');
  });
});

describe('reply decoding shared by both brokers', () => {
  it('reads the ticket, clock and expiry from the headers', () => {
    expect(replyHeaders({ ticket: 't', clock: 3 })).toEqual({ ticket: 't', clock: 3, expires: undefined });
    expect(replyHeaders({ ticket: 't', clock: 'x', expires: 5 })).toEqual({ ticket: 't', clock: undefined, expires: 5 });
    expect(replyHeaders({ clock: 3 })).toBe('ticket');
    expect(replyHeaders({ ticket: '' })).toBe('ticket');
    expect(replyHeaders(null)).toBe('ticket');
  });

  it('takes JSON objects only', () => {
    expect(replyBody('{"a@x": {"ok": "pong"}}', 'application/json')).toEqual({ 'a@x': { ok: 'pong' } });
    expect(replyBody('{"a@x": 1}', undefined)).toEqual({ 'a@x': 1 });
    expect(replyBody('{"a@x": 1}', 'application/x-python-serialize')).toBe('body');
    expect(replyBody('[1]', 'application/json')).toBe('body');
    expect(replyBody('null', 'application/json')).toBe('body');
    expect(replyBody('{nope', 'application/json')).toBe('body');
  });
});
