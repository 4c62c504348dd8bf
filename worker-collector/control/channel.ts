// The command channel at the edge: the Worker pushes signed commands onto a
// Redis list; the collector takes each one (command-source.ts), checks it
// (src/shared/command-signing.ts: MAC, age, deadline, nonce, shape), runs
// it, and answers on the command's reply list with a signed reply.
//
// Anything refused is written to the audit log under the user
// '(unverified)' (the name it claims goes into the arguments, never into
// the user column), answered when its id is usable, and logged (at most once
// per kind of refusal every 30 s). A replay is not answered: its id is that
// of the genuine command, whose own reply the Worker may still be waiting for.

import { deriveCommandKey, NonceCache, signReply, type Verdict, verifyCommand } from '../../src/shared/command-signing';
import { COMMAND_QUEUE_KEY, type CommandOutcome } from '../../src/shared/control';
import { createRateLimitedLog, errorMessage, type Logger } from '../../src/shared/log';
import { maskPassword } from '../store/db';
import { createBackoff } from '../transport/backoff';
import { type CommandSource, createCommandSource } from './command-source';
import type { ControlExecutor } from './executor';

export interface CommandChannelSettings {
  /** redis://, rediss:// or an Upstash https:// URL. */
  url: string;
  /** The Upstash REST token (https:// only). */
  token: string;
  /** The cookie secret the Worker has too: the command key is derived from it. */
  secret: string;
}

type Refusal = Extract<Verdict, { ok: false }>;

/** Commands run concurrently up to this many; more wait in the list. */
const CONCURRENCY = 8;
/** Refusals written to the audit log per minute; a flood beyond that is counted in one row, not written row by row. */
const REFUSALS_AUDITED_PER_MINUTE = 100;

export class CommandChannel {
  private readonly source: CommandSource;
  private readonly nonces = new NonceCache();
  private running = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly warn: (key: string, message: string) => void;
  private refusalWindow = { startedAt: 0, audited: 0, unaudited: 0 };
  /** Cuts the loop's pauses short when the channel stops. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly settings: CommandChannelSettings,
    private readonly executor: ControlExecutor,
    private readonly log: Logger,
  ) {
    this.source = createCommandSource(settings.url, settings.token);
    this.warn = createRateLimitedLog((m) => log.warn(m), 30_000);
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let key: CryptoKey;
    try {
      key = await deriveCommandKey(this.settings.secret);
    } catch (error) {
      this.log.error(`command channel off: ${errorMessage(error)}`);
      return;
    }
    this.log.info(`command channel: taking signed commands from ${COMMAND_QUEUE_KEY} at ${maskPassword(this.settings.url)}`);
    const backoff = createBackoff(500, 10_000);
    while (!this.stopped) {
      if (this.running >= CONCURRENCY) {
        await this.pause(50);
        continue;
      }
      let raw: string | null;
      try {
        raw = await this.source.next();
        backoff.reset();
      } catch (error) {
        this.warn('read', `command channel unavailable: ${errorMessage(error)}`);
        await this.pause(backoff.next());
        continue;
      }
      if (raw !== null && !this.stopped) void this.handle(key, raw);
    }
  }

  /** Wait `ms`, or less if the channel stops; the abort listener goes when the wait ends, so pauses never pile listeners up. */
  private pause(ms: number): Promise<void> {
    const signal = this.stopping.signal;
    return new Promise((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async handle(key: CryptoKey, raw: string): Promise<void> {
    this.running += 1;
    try {
      const verdict = await verifyCommand(raw, key, Date.now() / 1000, this.nonces);
      if (!verdict.ok) {
        await this.refuse(key, verdict);
        return;
      }
      const outcome = await this.executor.execute(verdict.request);
      await this.reply(key, verdict.request.id, outcome);
    } catch (error) {
      this.warn('reply', `could not answer a command: ${errorMessage(error)}`);
    } finally {
      this.running -= 1;
    }
  }

  private async refuse(key: CryptoKey, refusal: Refusal): Promise<void> {
    const claimed = refusal.claimedUser === null ? 'no user' : `'${refusal.claimedUser}'`;
    this.warn(`refused:${refusal.code}`, `refused a command${refusal.id ? ` ${refusal.id}` : ''} claiming ${claimed}: ${refusal.reason}`);
    await this.auditRefusal(refusal);
    if (refusal.id && refusal.code !== 'replayed')
      await this.reply(key, refusal.id, { ok: false, status: refusal.status, error: refusal.reason });
  }

  /** Every refusal goes to the audit log, up to a budget per minute; past it, one row counts the rest. */
  private async auditRefusal(refusal: Refusal): Promise<void> {
    const now = Date.now();
    const window = this.refusalWindow;
    if (now - window.startedAt >= 60_000) {
      if (window.unaudited > 0) await this.executor.auditRefusalFlood(window.unaudited);
      this.refusalWindow = { startedAt: now, audited: 0, unaudited: 0 };
    }
    if (this.refusalWindow.audited >= REFUSALS_AUDITED_PER_MINUTE) {
      this.refusalWindow.unaudited += 1;
      return;
    }
    this.refusalWindow.audited += 1;
    await this.executor.auditRefusal(refusal);
  }

  private async reply(key: CryptoKey, id: string, outcome: CommandOutcome): Promise<void> {
    await this.source.reply(id, JSON.stringify(await signReply(key, id, outcome)));
  }

  /** Stop taking commands at once (a pop in progress is abandoned); commands already running finish on their own. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await this.source.close();
    await this.loop;
    if (this.refusalWindow.unaudited > 0) await this.executor.auditRefusalFlood(this.refusalWindow.unaudited);
  }
}
