// Celery's broadcast control messages (kombu "pidbox"), as workers expect them.

import { randomUUID } from 'node:crypto';
import type { PidboxMessage } from '../transport/types';

export interface BroadcastOptions {
  /** Worker hostnames, or undefined for every worker. */
  destination?: string[];
  /** Seconds the message stays valid; workers discard it afterwards. */
  timeout?: number;
  /** Ask for replies: the reply exchange routing key (the requester's oid). */
  replyTo?: string;
  clock?: number;
  now?: () => number;
}

export function pidboxMessage(method: string, args: Record<string, unknown>, options: BroadcastOptions = {}): PidboxMessage {
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
    body.reply_to = { exchange: 'reply.celery.pidbox', routing_key: options.replyTo };
  }
  return {
    body,
    headers: { clock: options.clock ?? 1, expires: options.timeout ? now() + options.timeout : 0 },
  };
}
