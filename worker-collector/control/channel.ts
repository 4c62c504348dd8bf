// The command channel at the edge: the Worker pushes a CommandRequest onto
// a Redis list; the collector takes it, runs it, and leaves the outcome
// under a reply key with a TTL for the Worker to collect. Over TCP the
// collector blocks on the list (BRPOP); over Upstash REST it polls (LPOP).

import { Redis } from 'ioredis';
import { COMMAND_QUEUE_KEY, type CommandOutcome, REPLY_KEY_PREFIX, REPLY_TTL_SECONDS, validateRequest } from '../../src/shared/control';
import { createRateLimitedLog, errorMessage, type Logger } from '../../src/shared/log';
import { createBackoff } from '../transport/backoff';
import type { ControlExecutor } from './executor';

interface CommandSource {
  /** The next raw request, or null when none came within a second. */
  next(): Promise<string | null>;
  reply(id: string, outcome: CommandOutcome): Promise<void>;
  close(): Promise<void>;
}

class RedisSource implements CommandSource {
  private readonly reader: Redis;
  private readonly writer: Redis;
  constructor(url: string) {
    const options = { lazyConnect: false, maxRetriesPerRequest: null, retryStrategy: () => createBackoff().next() };
    this.reader = new Redis(url, options);
    this.writer = new Redis(url, options);
    this.reader.on('error', () => undefined);
    this.writer.on('error', () => undefined);
  }
  async next(): Promise<string | null> {
    const popped = await this.reader.brpop(COMMAND_QUEUE_KEY, 1);
    return popped ? popped[1] : null;
  }
  async reply(id: string, outcome: CommandOutcome): Promise<void> {
    await this.writer.set(`${REPLY_KEY_PREFIX}${id}`, JSON.stringify(outcome), 'EX', REPLY_TTL_SECONDS);
  }
  async close(): Promise<void> {
    this.reader.disconnect();
    this.writer.disconnect();
  }
}

class UpstashSource implements CommandSource {
  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}
  private async command(args: (string | number)[]): Promise<unknown> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(args),
      signal: AbortSignal.timeout(5_000),
    });
    const body = (await response.json().catch(() => ({}))) as { result?: unknown; error?: string };
    if (!response.ok || body.error) throw new Error(`Upstash answered ${response.status}: ${body.error ?? 'no result'}`);
    return body.result;
  }
  async next(): Promise<string | null> {
    const popped = await this.command(['RPOP', COMMAND_QUEUE_KEY]);
    if (typeof popped === 'string') return popped;
    await new Promise((resolve) => setTimeout(resolve, 250));
    return null;
  }
  async reply(id: string, outcome: CommandOutcome): Promise<void> {
    await this.command(['SET', `${REPLY_KEY_PREFIX}${id}`, JSON.stringify(outcome), 'EX', REPLY_TTL_SECONDS]);
  }
  async close(): Promise<void> {}
}

/** Commands run concurrently up to this many; more wait in the list. */
const CONCURRENCY = 8;

export class CommandChannel {
  private readonly source: CommandSource;
  private running = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly warn: (key: string, message: string) => void;

  constructor(
    url: string,
    token: string,
    private readonly executor: ControlExecutor,
    private readonly log: Logger,
  ) {
    this.source = /^https?:\/\//i.test(url) ? new UpstashSource(url.replace(/\/+$/, ''), token) : new RedisSource(url);
    this.warn = createRateLimitedLog((m) => log.warn(m), 30_000);
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const backoff = createBackoff(500, 10_000);
    while (!this.stopped) {
      if (this.running >= CONCURRENCY) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      let raw: string | null;
      try {
        raw = await this.source.next();
        backoff.reset();
      } catch (error) {
        this.warn('read', `command channel unavailable: ${errorMessage(error)}`);
        await new Promise((resolve) => setTimeout(resolve, backoff.next()));
        continue;
      }
      if (raw !== null) void this.handle(raw);
    }
  }

  private async handle(raw: string): Promise<void> {
    this.running += 1;
    try {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        parsed = null;
      }
      const request = validateRequest(parsed, Date.now() / 1000);
      const id = typeof (parsed as { id?: unknown } | null)?.id === 'string' ? (parsed as { id: string }).id : null;
      if (typeof request === 'string') {
        this.warn(request, `refused a command: ${request}`);
        if (id) await this.source.reply(id, { ok: false, status: request.includes('expired') ? 504 : 400, error: request });
        return;
      }
      const outcome = await this.executor.execute(request);
      await this.source.reply(request.id, outcome);
    } catch (error) {
      this.warn('reply', `could not answer a command: ${errorMessage(error)}`);
    } finally {
      this.running -= 1;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.source.close();
  }
}
