// The one interface every broker transport implements.

import type { Decoded } from '../decode';

export interface TransportHandlers {
  /** Called for every message read from the event stream, already decoded. */
  onMessage(decoded: Decoded): void;
  /** Called when the connection to the broker comes up or goes down. */
  onConnectionChange?(connected: boolean): void;
}

/** A broadcast on Celery's `celery.pidbox` fanout exchange (see control/pidbox.ts). */
export interface PidboxMessage {
  body: Record<string, unknown>;
  headers: Record<string, unknown>;
}

export interface EventTransport {
  readonly kind: 'redis' | 'amqp';
  /**
   * True when pause() makes the broker hold messages (AMQP: unacknowledged
   * deliveries stop at the prefetch limit). Redis pub/sub cannot hold
   * anything, so the collector drops and counts instead of pausing.
   */
  readonly holdsMessagesWhenPaused: boolean;
  /** Starts connecting and keeps retrying; resolves once the first attempt has been made. */
  start(): Promise<void>;
  stop(): Promise<void>;
  pause(): void;
  resume(): void;
  isConnected(): boolean;
  /** Publish a control broadcast; throws when the broker is unreachable. */
  broadcast(message: PidboxMessage): Promise<void>;
}
