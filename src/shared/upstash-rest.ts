// Upstash's Redis REST API at its simplest, for the command channel and the
// hot state: one POST per command (a JSON array, Bearer token) or per
// transaction (/multi-exec). @upstash/redis has no blocking list commands
// (BLPOP, BRPOP), and those are what keep the channel cheap: one request
// waits up to its timeout instead of polling. Upstash holds such a request
// open until the list has an element or the timeout passes, so the HTTP
// timeout here is always the command's own plus a margin.
//
// Plain fetch, no node:* imports: the Worker and the collector both use it.

export interface UpstashCallOptions {
  /** Give up (abort the request) after this long; default 10 s. */
  timeoutMs?: number;
  /** Abort early, e.g. when the collector stops. */
  signal?: AbortSignal;
}

export interface UpstashRest {
  /** One command; its result (strings come back as text, not base64). */
  command(args: (string | number)[], options?: UpstashCallOptions): Promise<unknown>;
  /** Commands run atomically (MULTI/EXEC) in one request; their results. */
  transaction(commands: (string | number)[][], options?: UpstashCallOptions): Promise<unknown[]>;
}

/** Added to a blocking command's own timeout for the HTTP request: the reply needs time to travel. */
export const BLOCKING_MARGIN_MS = 10_000;

const DEFAULT_TIMEOUT_MS = 10_000;

/** One signal for a timeout and an optional outside abort (AbortSignal.any is not everywhere Stalk runs). */
function requestSignal(options: UpstashCallOptions): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timer = setTimeout(() => controller.abort(new Error(`Upstash did not answer within ${timeoutMs} ms`)), timeoutMs);
  const outside = options.signal;
  const onAbort = () => controller.abort(outside?.reason);
  if (outside?.aborted) controller.abort(outside.reason);
  else outside?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    done() {
      clearTimeout(timer);
      outside?.removeEventListener('abort', onAbort);
    },
  };
}

export function upstashRest(url: string, token: string): UpstashRest {
  const base = url.replace(/\/+$/, '');
  async function post(path: string, body: unknown, options: UpstashCallOptions): Promise<unknown> {
    const { signal, done } = requestSignal(options);
    try {
      const response = await fetch(base + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal,
      });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new Error(`Upstash answered ${response.status} with a body that is not JSON`);
      }
      const error = (parsed as { error?: unknown } | null)?.error;
      if (!response.ok || typeof error === 'string')
        throw new Error(`Upstash answered ${response.status}: ${typeof error === 'string' ? error : 'no result'}`);
      return parsed;
    } finally {
      done();
    }
  }
  return {
    async command(args, options = {}) {
      const body = await post('', args, options);
      if (typeof body !== 'object' || body === null || !('result' in body)) throw new Error('Upstash answered without a result');
      return body.result;
    },
    async transaction(commands, options = {}) {
      const body = await post('/multi-exec', commands, options);
      if (!Array.isArray(body)) throw new Error('Upstash answered a transaction without a list of results');
      return body.map((entry: { result?: unknown; error?: unknown }, i) => {
        if (typeof entry?.error === 'string') throw new Error(`Upstash: command ${i + 1} of the transaction failed: ${entry.error}`);
        return entry?.result;
      });
    },
  };
}
