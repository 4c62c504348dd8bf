// Control: Flower's API (same paths, parameters and shapes as flower/api/
// control.py and tasks.py) and the pages' actions (the same handlers answer
// an htmx request with an inline message). Every action goes to the
// collector as a command; the web app never talks to the broker.

import type { Context } from 'hono';
import { Hono } from 'hono';
import { AppError, badRequest } from '../errors';
import type { AppEnv } from '../services';
import type { CommandOutcome, ControlCommand, WorkerAction } from '../shared/control';
import { MAX_COMMAND_SECONDS } from '../shared/control';
import { AuditPage } from '../../templates/pages/audit';
import { href } from '../../templates/components/format';
import { auditLog } from '../queries/inspect';
import { boolParam } from './params';

type C = Context<AppEnv>;

/** Parameters from the query string and, for POST, a form or JSON body (Flower reads both). */
async function params(c: C): Promise<Record<string, string>> {
  const merged: Record<string, string> = { ...c.req.query() };
  if (c.req.method === 'POST') {
    const type = c.req.header('content-type') ?? '';
    if (type.includes('application/x-www-form-urlencoded') || type.includes('multipart/form-data')) {
      for (const [key, value] of Object.entries(await c.req.parseBody())) if (typeof value === 'string') merged[key] = value;
    }
  }
  return merged;
}

function number(name: string, value: string | undefined, options: { required?: boolean; integer?: boolean; min?: number } = {}): number | null {
  if (value === undefined || value === '') {
    if (options.required) throw badRequest(`Missing argument '${name}'`);
    return null;
  }
  const n = Number(value);
  if (!Number.isFinite(n) || (options.integer && !Number.isInteger(n)) || (options.min !== undefined && n < options.min)) {
    throw badRequest(`Invalid argument '${value}' of type '${options.integer ? 'int' : 'float'}' for '${name}'`);
  }
  return n;
}

function text(name: string, value: string | undefined): string {
  if (value === undefined || value.trim() === '') throw badRequest(`Missing argument '${name}'`);
  return value.trim();
}

/** Run a command through the collector; map its failure onto Flower's statuses. */
async function run(c: C, command: ControlCommand, waitSeconds?: number): Promise<CommandOutcome> {
  const { control, readOnly, inspectTimeout } = c.var.services;
  if (readOnly && command.kind !== 'inspect' && command.kind !== 'result' && command.kind !== 'queues') {
    throw new AppError('FORBIDDEN', 'Read only mode is enabled');
  }
  if (!control) throw new AppError('UNAVAILABLE', 'No collector is reachable for commands (start Stalk with its collector, or configure the command channel)');
  const wait = Math.min(MAX_COMMAND_SECONDS, waitSeconds ?? inspectTimeout + 5);
  return control.run(command, c.var.user ?? 'anonymous', wait);
}

/** Answer like Flower: JSON {message} on success, the reason as text with the failure's status otherwise; htmx gets an inline message. */
function answer(c: C, outcome: CommandOutcome, success: (result: unknown) => string, failure: (reason: string) => string): Response | Promise<Response> {
  const htmx = Boolean(c.req.header('HX-Request'));
  if (outcome.ok) {
    const message = success(outcome.result);
    return htmx ? c.html(<output class="outcome ok">{message}</output>) : c.json({ message });
  }
  const status = outcome.status === 504 ? 403 : outcome.status;
  const message = outcome.status === 403 || outcome.status === 504 ? failure(outcome.error) : outcome.error;
  // htmx 2 does not swap error responses: the action's message arrives with 200.
  if (htmx) return c.html(<output class="outcome bad">{message}</output>);
  return c.text(message, status);
}

function workerAction(action: WorkerAction, args: (p: Record<string, string>) => Record<string, string | number | boolean>, ok: (w: string, p: Record<string, string>, result: unknown) => string, fail: (w: string, p: Record<string, string>, reason: string) => string) {
  return async (c: C) => {
    const worker = c.req.param('name') ?? '';
    const p = await params(c);
    const outcome = await run(c, { kind: 'worker', action, worker, args: args(p) });
    return answer(c, outcome, (result) => ok(worker, p, result), (reason) => fail(worker, p, reason));
  };
}

/** The body of apply/async-apply/send-task: {args, kwargs, ...options} as JSON. */
async function taskBody(c: C): Promise<{ args: unknown[]; kwargs: Record<string, unknown>; options: Record<string, unknown> }> {
  const raw = await c.req.text();
  let body: unknown = {};
  if (raw.trim() !== '') {
    try {
      body = JSON.parse(raw);
    } catch (error) {
      throw badRequest(`Invalid JSON body: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('invalid options');
  const { args = [], kwargs = {}, ...options } = body as Record<string, unknown>;
  if (!Array.isArray(args)) throw badRequest('args must be an array');
  if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs)) throw badRequest('kwargs must be an object');
  return { args, kwargs: kwargs as Record<string, unknown>, options };
}

/** Flower's option normalisation for apply/async-apply (and, unlike Flower, send-task too): eta, countdown, expires. */
function publishOptions(options: Record<string, unknown>, now: number): { queue?: string; eta?: string; expires?: string } {
  const out: { queue?: string; eta?: string; expires?: string } = {};
  const when = (name: string, value: unknown): string => {
    if (typeof value === 'number' && Number.isFinite(value)) return new Date((now + value) * 1000).toISOString();
    if (typeof value === 'string') {
      if (/^\d+(\.\d+)?$/.test(value)) return new Date((now + Number(value)) * 1000).toISOString();
      // Flower's format %Y-%m-%d %H:%M:%S.%f, or any ISO 8601 time.
      const date = new Date(value.includes('T') ? value : `${value.replace(' ', 'T')}Z`);
      if (!Number.isNaN(date.getTime())) return date.toISOString();
    }
    throw badRequest(`Invalid option '${name}'`);
  };
  if (options.queue !== undefined) {
    if (typeof options.queue !== 'string' || options.queue === '') throw badRequest('Invalid option \'queue\'');
    out.queue = options.queue;
  }
  if (options.countdown !== undefined) out.eta = when('countdown', Number(options.countdown));
  if (options.eta !== undefined) out.eta = when('eta', options.eta);
  if (options.expires !== undefined) out.expires = when('expires', options.expires);
  return out;
}

function resultShape(result: unknown): Record<string, unknown> {
  const r = (result ?? {}) as { 'task-id'?: string; status?: string; result?: unknown; traceback?: string | null };
  const shape: Record<string, unknown> = { 'task-id': r['task-id'], state: r.status ?? 'PENDING' };
  if (r.status && ['SUCCESS', 'FAILURE', 'REVOKED'].includes(r.status)) shape.result = r.result;
  if (r.status === 'FAILURE') shape.traceback = r.traceback ?? null;
  return shape;
}

async function send(c: C, wait: boolean, normalise: boolean) {
  const name = c.req.param('name') ?? '';
  const { args, kwargs, options } = await taskBody(c);
  const published = normalise ? publishOptions(options, c.var.services.now()) : publishOptions({ queue: options.queue, eta: options.eta, expires: options.expires }, c.var.services.now());
  const timeout = wait ? Math.min(MAX_COMMAND_SECONDS, Number(options.timeout ?? MAX_COMMAND_SECONDS - 5)) : undefined;
  const outcome = await run(c, { kind: 'send', name, args, kwargs, ...published, ...(timeout ? { waitSeconds: timeout } : {}) }, timeout ? timeout + 5 : undefined);
  if (!outcome.ok) return c.json({ error: outcome.error }, outcome.status === 504 ? 503 : outcome.status);
  const result = outcome.result as { 'task-id': string; state?: string };
  if (!wait) return c.json({ 'task-id': result['task-id'], ...(result.state ? { state: result.state } : {}) });
  return c.json(resultShape(result));
}

/** Pages: the audit log, and the tasks page's send form. */
export const controlPageRoutes = new Hono<AppEnv>()
  .get('/audit', async (c) => {
    const { db, ui } = c.var.services;
    const limit = 100;
    const offset = Math.max(0, Number(c.req.query('offset')) || 0);
    return c.html(<AuditPage entries={await auditLog(db, limit, offset)} ui={ui} offset={offset} limit={limit} />);
  })
  .post('/tasks/send', async (c) => {
    const p = await params(c);
    const parse = (name: string, value: string | undefined, fallback: unknown) => {
      if (value === undefined || value.trim() === '') return fallback;
      try {
        return JSON.parse(value) as unknown;
      } catch {
        throw badRequest(`${name} is not JSON`);
      }
    };
    let outcome: CommandOutcome;
    try {
      const args = parse('args', p.args, []);
      const kwargs = parse('kwargs', p.kwargs, {});
      if (!Array.isArray(args)) throw badRequest('args must be a JSON array');
      if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs)) throw badRequest('kwargs must be a JSON object');
      const options = publishOptions({ ...(p.queue ? { queue: p.queue } : {}), ...(p.countdown ? { countdown: p.countdown } : {}) }, c.var.services.now());
      outcome = await run(c, { kind: 'send', name: text('name', p.name), args, kwargs: kwargs as Record<string, unknown>, ...options });
    } catch (error) {
      if (!(error instanceof AppError) || error.code === 'FORBIDDEN' || error.code === 'UNAVAILABLE') throw error;
      return c.html(<output class="outcome bad">{error.message}</output>);
    }
    if (!outcome.ok) return c.html(<output class="outcome bad">{outcome.error}</output>);
    const id = (outcome.result as { 'task-id': string })['task-id'];
    return c.html(
      <output class="outcome ok">
        Sent <a href={href(c.var.services.ui, `/task/${encodeURIComponent(id)}`)}>{id}</a>
      </output>,
    );
  });

export const controlApiRoutes = new Hono<AppEnv>()
  .use(async (c, next) => {
    await next();
    // htmx 2 does not swap error responses: a form the API refused (bad
    // input) shows the reason inline, as a command's own failure does.
    const error = c.error;
    if (c.req.method === 'POST' && c.req.header('HX-Request') && error instanceof AppError && error.code === 'BAD_REQUEST') {
      c.res = await c.html(<output class="outcome bad">{error.message}</output>);
    }
  })
  .post(
    '/worker/shutdown/:name{.+}',
    workerAction('shutdown', () => ({}), () => 'Shutting down!', (w, _p, reason) => `Failed to shut down '${w}': ${reason}`),
  )
  .post(
    '/worker/pool/restart/:name{.+}',
    workerAction('pool_restart', () => ({}), (w) => `Restarting '${w}' worker's pool`, (w, _p, reason) => `Failed to restart the '${w}' pool: ${reason}`),
  )
  .post(
    '/worker/pool/grow/:name{.+}',
    workerAction('pool_grow', (p) => ({ n: number('n', p.n, { integer: true, min: 1 }) ?? 1 }), (w, p) => `Growing '${w}' worker's pool by ${p.n ?? 1}`, (w, _p, reason) => `Failed to grow '${w}' worker's pool: ${reason}`),
  )
  .post(
    '/worker/pool/shrink/:name{.+}',
    workerAction('pool_shrink', (p) => ({ n: number('n', p.n, { integer: true, min: 1 }) ?? 1 }), (w, p) => `Shrinking '${w}' worker's pool by ${p.n ?? 1}`, (w, _p, reason) => `Failed to shrink '${w}' worker's pool: ${reason}`),
  )
  .post(
    '/worker/pool/autoscale/:name{.+}',
    workerAction(
      'autoscale',
      (p) => {
        const min = number('min', p.min, { required: true, integer: true, min: 0 })!;
        const max = number('max', p.max, { required: true, integer: true, min: 0 })!;
        if (min > max) throw badRequest("'min' must not be greater than 'max'");
        return { min, max };
      },
      (w, p) => `Autoscaling '${w}' worker (min=${p.min}, max=${p.max})`,
      (w, _p, reason) => `Failed to autoscale '${w}' worker: ${reason}`,
    ),
  )
  .post(
    '/worker/queue/add-consumer/:name{.+}',
    workerAction('add_consumer', (p) => ({ queue: text('queue', p.queue) }), (_w, _p, result) => String(result), (w, p, reason) => `Failed to add '${p.queue}' consumer to '${w}' worker: ${reason}`),
  )
  .post(
    '/worker/queue/cancel-consumer/:name{.+}',
    workerAction('cancel_consumer', (p) => ({ queue: text('queue', p.queue) }), (_w, _p, result) => String(result), (w, p, reason) => `Failed to cancel '${p.queue}' consumer from '${w}' worker: ${reason}`),
  )
  .post('/task/revoke/:id{.+}', async (c) => {
    const task = c.req.param('id');
    const p = await params(c);
    const terminate = boolParam('terminate', p.terminate);
    const signal = (p.signal ?? 'SIGTERM').trim() || 'SIGTERM';
    if (!/^(SIG)?[A-Z0-9]+$/.test(signal)) throw badRequest(`Invalid signal '${signal}'`);
    const outcome = await run(c, { kind: 'revoke', task, terminate, signal });
    return answer(c, outcome, () => `Revoked '${task}'`, (reason) => `Failed to revoke '${task}': ${reason}`);
  })
  .post('/task/abort/:id{.+}', async (c) => {
    const task = c.req.param('id');
    const outcome = await run(c, { kind: 'abort', task });
    return answer(c, outcome, () => `Aborted '${task}'`, (reason) => `Failed to abort '${task}': ${reason}`);
  })
  .post('/task/timeout/:name{.+}', async (c) => {
    const task = c.req.param('name');
    const p = await params(c);
    const worker = text('workername', p.workername);
    const soft = number('soft', p.soft, { min: 0 });
    const hard = number('hard', p.hard, { min: 0 });
    const outcome = await run(c, { kind: 'time_limit', task, worker, soft, hard });
    return answer(c, outcome, (result) => String(result), (reason) => `Failed to set timeouts: '${reason}'`);
  })
  .post('/task/rate-limit/:name{.+}', async (c) => {
    const task = c.req.param('name');
    const p = await params(c);
    const worker = text('workername', p.workername);
    const rate = text('ratelimit', p.ratelimit);
    if (!/^\d+(\.\d+)?(\/[smh])?$/.test(rate)) throw badRequest(`Invalid rate limit '${rate}' (e.g. 100, 10/s, 100/m, 1000/h)`);
    const outcome = await run(c, { kind: 'rate_limit', task, worker, rate });
    return answer(c, outcome, (result) => String(result), (reason) => `Failed to set rate limit: '${reason}'`);
  })
  .post('/task/apply/:name{.+}', (c) => send(c, true, true))
  .post('/task/async-apply/:name{.+}', (c) => send(c, false, true))
  .post('/task/send-task/:name{.+}', (c) => send(c, false, false))
  .get('/task/result/:id{.+}', async (c) => {
    const task = c.req.param('id');
    const timeout = number('timeout', c.req.query('timeout'), { min: 0 });
    const outcome = await run(c, { kind: 'result', task, ...(timeout ? { waitSeconds: Math.min(timeout, MAX_COMMAND_SECONDS - 5) } : {}) }, timeout ? timeout + 5 : undefined);
    if (!outcome.ok) return c.json({ error: outcome.error }, outcome.status === 504 ? 503 : outcome.status);
    return c.json(resultShape(outcome.result));
  })
  .get('/queues/length', async (c) => {
    const outcome = await run(c, { kind: 'queues' });
    if (!outcome.ok) return c.json({ error: outcome.error }, outcome.status === 504 ? 503 : outcome.status);
    const queues = outcome.result as { name: string; messages: number; ready: number | null; unacked: number | null; consumers: number | null }[];
    return c.json({
      active_queues: queues.map((q) => ({
        name: q.name,
        messages: q.messages,
        ...(q.ready !== null ? { messages_ready: q.ready } : {}),
        ...(q.unacked !== null ? { messages_unacknowledged: q.unacked } : {}),
        ...(q.consumers !== null ? { consumers: q.consumers } : {}),
      })),
    });
  });
