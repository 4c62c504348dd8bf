// The one interface every broker transport implements.

import type { Decoded } from '../decode';

export interface TransportHandlers {
  /** Called for every message read from the event stream, already decoded. */
  onMessage(decoded: Decoded): void;
  /** Called when the connection to the broker comes up or goes down. */
  onConnectionChange?(connected: boolean): void;
  /**
   * The broker is holding back deliveries until more are committed (AMQP:
   * half the prefetch is delivered and not acknowledged): flush soon. Called
   * once per crossing; again only after a commit.
   */
  onBacklog?(): void;
}

/** A broadcast on Celery's `celery.pidbox` fanout exchange (see control/pidbox.ts). */
export interface PidboxMessage {
  body: Record<string, unknown>;
  headers: Record<string, unknown>;
}

export interface EventTransport {
  readonly kind: 'redis' | 'amqp';
  /**
   * True when pause() makes the broker hold messages (AMQP: the consumer is
   * cancelled and RabbitMQ keeps the rest queued). Redis pub/sub cannot hold
   * anything, so the collector drops and counts instead of pausing.
   */
  readonly holdsMessagesWhenPaused: boolean;
  /** Starts connecting and keeps retrying; resolves once the first attempt has been made. */
  start(): Promise<void>;
  /**
   * Stop receiving: no onMessage after this resolves. What was delivered can
   * still be committed (AMQP keeps the channel open) until close().
   */
  stop(): Promise<void>;
  /** Let go of the broker, after the last commit. Unacknowledged deliveries go back to the queue. */
  close(): Promise<void>;
  pause(): void;
  resume(): void;
  isConnected(): boolean;
  /** Publish a control broadcast; throws when the broker is unreachable. */
  broadcast(message: PidboxMessage): Promise<void>;
  /**
   * An opaque token for "every message delivered to onMessage so far". Take
   * it when the events folded so far are swapped out for writing.
   */
  checkpoint(): unknown;
  /**
   * Those messages are stored: acknowledge every message up to the token
   * (cumulative; an older or repeated token is a no-op). Redis: no-op.
   */
  commit(token: unknown): void;
}
