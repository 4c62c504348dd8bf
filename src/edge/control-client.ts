// The edge's command channel: push a request onto the Redis list the
// collector reads (over Upstash REST), then wait for its reply key. The
// request carries an id, who asked, and a deadline after which the
// collector refuses it; the reply key expires by itself.

import type { Redis } from '@upstash/redis/cloudflare';
import type { ControlClient } from '../services';
import { COMMAND_QUEUE_KEY, type CommandOutcome, type CommandRequest, type ControlCommand, REPLY_KEY_PREFIX } from '../shared/control';

const POLL_MS = 150;

export class UpstashControlClient implements ControlClient {
  /** `redis` must not deserialise values itself (automaticDeserialization: false). */
  constructor(private readonly redis: Redis) {}

  async run(command: ControlCommand, user: string, waitSeconds: number): Promise<CommandOutcome> {
    const request: CommandRequest = { id: crypto.randomUUID(), user, deadline: Date.now() / 1000 + waitSeconds, command };
    try {
      await this.redis.lpush(COMMAND_QUEUE_KEY, JSON.stringify(request));
    } catch (error) {
      return { ok: false, status: 503, error: `command channel unavailable: ${error instanceof Error ? error.message : String(error)}` };
    }
    const key = `${REPLY_KEY_PREFIX}${request.id}`;
    // The collector refuses the command after the deadline; a little longer covers its reply.
    const giveUp = Date.now() + waitSeconds * 1000 + 2_000;
    while (Date.now() < giveUp) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      let text: string | null;
      try {
        text = await this.redis.get<string>(key);
      } catch {
        continue;
      }
      if (text === null) continue;
      await this.redis.del(key).catch(() => undefined);
      try {
        return JSON.parse(text) as CommandOutcome;
      } catch {
        return { ok: false, status: 503, error: 'the collector sent a malformed reply' };
      }
    }
    return { ok: false, status: 504, error: 'the collector did not answer in time (is it running with --state-url?)' };
  }
}
