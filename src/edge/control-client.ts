// The edge's command channel: sign the request (who asked, when, a nonce,
// a deadline; src/shared/command-signing.ts), push it onto the Redis list
// the collector reads (over Upstash REST), then wait for the reply on the
// command's own list with BLPOP. A blocking pop costs one subrequest per
// chunk of up to 20 s instead of one per poll, so even a 55 s wait stays far
// below the Workers' subrequest limit (50 on the free plan). The reply list
// expires by itself and BLPOP empties it, so nothing is ever deleted.

import { signCommand, verifyReply } from '../shared/command-signing';
import {
  COMMAND_QUEUE_KEY,
  type CommandOutcome,
  type ControlClient,
  type ControlCommand,
  outcomeFor,
  REPLY_KEY_PREFIX,
} from '../shared/control';
import { errorMessage } from '../shared/log';
import { BLOCKING_MARGIN_MS, type UpstashRest } from '../shared/upstash-rest';

/** The longest one BLPOP blocks: short enough for any proxy on the way to keep the request open. */
const BLOCK_CHUNK_SECONDS = 20;
/** Every Upstash request one command may make, the push included: the budget, whatever happens. */
export const MAX_SUBREQUESTS = 20;
/** After a failed request, wait this long before the next one (no tight loop against a broken Upstash). */
const RETRY_PAUSE_MS = 1_000;
/** The collector refuses the command after its deadline; this much longer covers its (refusal) reply. */
const REPLY_GRACE_MS = 2_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class UpstashControlClient implements ControlClient {
  /**
   * `key` is the command key derived from COOKIE_SECRET (deriveCommandKey);
   * null when the Worker has no cookie secret, and then nothing is sent: the
   * collector would refuse it anyway.
   */
  constructor(
    private readonly rest: UpstashRest,
    private readonly key: Promise<CryptoKey> | null,
  ) {}

  async run<C extends ControlCommand>(command: C, user: string, waitSeconds: number): Promise<CommandOutcome<C['kind']>> {
    if (!this.key) return { ok: false, status: 503, error: 'COOKIE_SECRET is not set, so commands to the collector cannot be signed' };
    const key = await this.key;
    const id = crypto.randomUUID();
    let signed: string;
    try {
      signed = JSON.stringify(await signCommand(key, { id, user, deadline: Date.now() / 1000 + waitSeconds, command }, Date.now() / 1000));
    } catch (error) {
      return { ok: false, status: 400, error: `the command cannot be sent: ${errorMessage(error)}` };
    }
    try {
      await this.rest.command(['LPUSH', COMMAND_QUEUE_KEY, signed]);
    } catch (error) {
      return { ok: false, status: 503, error: `command channel unavailable: ${errorMessage(error)}` };
    }
    return outcomeFor(command, await this.awaitReply(key, id, Date.now() + waitSeconds * 1000 + REPLY_GRACE_MS));
  }

  private async awaitReply(key: CryptoKey, id: string, giveUpAt: number): Promise<CommandOutcome> {
    const replyKey = `${REPLY_KEY_PREFIX}${id}`;
    let lastError: string | null = null;
    // One subrequest went to the push.
    for (let requests = 1; requests < MAX_SUBREQUESTS; requests++) {
      const left = giveUpAt - Date.now();
      if (left <= 0) break;
      // Whole tenths of a second, never 0 (which would block forever).
      const block = Math.max(0.1, Math.ceil(Math.min(BLOCK_CHUNK_SECONDS * 1000, left) / 100) / 10);
      let popped: unknown;
      try {
        popped = await this.rest.command(['BLPOP', replyKey, block], { timeoutMs: block * 1000 + BLOCKING_MARGIN_MS });
        lastError = null;
      } catch (error) {
        lastError = errorMessage(error);
        await sleep(Math.min(RETRY_PAUSE_MS, Math.max(0, giveUpAt - Date.now())));
        continue;
      }
      if (!Array.isArray(popped) || typeof popped[1] !== 'string') continue;
      // A reply that is not signed by the collector for this id is ignored: anyone with the token can push.
      const outcome = await verifyReply(key, id, popped[1]);
      if (outcome) return outcome;
    }
    if (lastError) return { ok: false, status: 503, error: `command channel unavailable: ${lastError}` };
    return {
      ok: false,
      status: 504,
      error: 'the collector did not answer in time (is it running with --state-url and the same cookie secret?)',
    };
  }
}
