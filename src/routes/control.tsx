// Control: Flower's API (same paths, parameters and shapes as flower/api/
// control.py and tasks.py) and the pages' actions (the same handlers answer
// an htmx request with an inline message). Every action goes to the
// collector as a command; the web app never talks to the broker.

import type { Context } from 'hono';
import { Hono } from 'hono';
import { AppError, badRequest, quoted } from '../errors';
import type { AppEnv } from '../services';
import type { CommandKind, CommandOutcome, CommandResults, ControlCommand, SentTask, TaskResultReply, WorkerAction } from '../shared/control';
import { MAX_COMMAND_SECONDS } from '../shared/control';
import { AuditPage } from '../../templates/pages/audit';
import { href } from '../../templates/components/format';
import { auditLog } from '../queries/inspect';
import { jsonBody } from './body';
import { form, LIMITS, type Params, parseJsonField, pathName, query, signalParam } from './params';
import { optionNumber, optionText, optionTime } from './task-options';

type C = Context<AppEnv>;

const POOL_STEP = { min: 1, max: LIMITS.pool };
const POOL_BOUND = { min: 0, max: LIMITS.pool };
const TIME_LIMIT = { min: 0, max: LIMITS.seconds };

/** Run a command through the collector; map its failure onto Flower's statuses. */
async function run<K extends ControlCommand>(c: C, command: K, waitSeconds?: number): Promise<CommandOutcome<K['kind']>> {
  const { control, readOnly, inspectTimeoutMs } = c.var.services;
  if (readOnly && command.kind !== 'inspect' && command.kind !== 'result' && command.kind !== 'queues') {
    throw new AppError('FORBIDDEN', 'Read only mode is enabled');
  }
  if (!control) throw new AppError('UNAVAILABLE', 'No collector is reachable for commands (start Stalk with its collector, or configure the command channel)');
  const wait = Math.min(MAX_COMMAND_SECONDS, waitSeconds ?? inspectTimeoutMs / 1000 + 5);
  return control.run(command, c.var.user ?? 'anonymous', wait);
}

/** Answer like Flower: JSON {message} on success, the reason as text with the failure's status otherwise; htmx gets an inline message. */
function answer<K extends CommandKind>(
  c: C,
  outcome: CommandOutcome<K>,
  success: (result: CommandResults[K]) => string,
  failure: (reason: string) => string,
): Response | Promise<Response> {
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

type WorkerArgs = Record<string, string | number | boolean>;

function workerAction<A extends WorkerArgs>(
  action: WorkerAction,
  read: (p: Params) => A,
  ok: (worker: string, args: A, result: string) => string,
  fail: (worker: string, args: A, reason: string) => string,
) {
  return async (c: C) => {
    const worker = pathName(c, 'name');
    const args = read(await form(c));
    const outcome = await run(c, { kind: 'worker', action, worker, args });
    return answer(c, outcome, (result) => ok(worker, args, result), (reason) => fail(worker, args, reason));
  };
}

/** The body of apply/async-apply/send-task: {args, kwargs, ...options} as JSON; null is the same as absent (Python's None). */
async function taskBody(c: C): Promise<{ args: unknown[]; kwargs: Record<string, unknown>; options: Record<string, unknown> }> {
  const body = (await jsonBody(c)) ?? {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('invalid options');
  const given = Object.fromEntries(Object.entries(body).filter(([, value]) => value !== null));
  const { args = [], kwargs = {}, ...options } = given;
  if (!Array.isArray(args)) throw badRequest('args must be an array');
  if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs)) throw badRequest('kwargs must be an object');
  return { args, kwargs: kwargs as Record<string, unknown>, options };
}

/** Flower's option normalisation for apply/async-apply (and, unlike Flower, send-task too): queue, eta, countdown, expires. */
function publishOptions(options: Record<string, unknown>, now: number): { queue?: string; eta?: string; expires?: string } {
  const out: { queue?: string; eta?: string; expires?: string } = {};
  if (options.queue !== undefined) out.queue = optionText('queue', options.queue);
  if (options.countdown !== undefined) {
    out.eta = new Date((now + optionNumber('countdown', options.countdown, { min: 0, max: LIMITS.seconds })) * 1000).toISOString();
  }
  if (options.eta !== undefined) out.eta = optionTime('eta', options.eta, now);
  if (options.expires !== undefined) out.expires = optionTime('expires', options.expires, now);
  return out;
}

/** Flower's answer for a task's result: its state, and the result (and traceback) once it is ready. */
function resultShape(r: SentTask | TaskResultReply): Record<string, unknown> {
  const status = 'status' in r ? r.status : undefined;
  const shape: Record<string, unknown> = { 'task-id': r['task-id'], state: status ?? 'PENDING' };
  if (!('status' in r)) return shape;
  if (['SUCCESS', 'FAILURE', 'REVOKED'].includes(r.status)) shape.result = r.result;
  if (r.status === 'FAILURE') shape.traceback = r.traceback ?? null;
  return shape;
}

async function send(c: C, wait: boolean, normalise: boolean) {
  const name = pathName(c, 'name');
  const { args, kwargs, options } = await taskBody(c);
  const published = normalise ? publishOptions(options, c.var.services.now()) : publishOptions({ queue: options.queue, eta: options.eta, expires: options.expires }, c.var.services.now());
  const timeout = wait ? (options.timeout === undefined ? LIMITS.wait : optionNumber('timeout', options.timeout, { min: 0, max: LIMITS.wait })) : undefined;
  const outcome = await run(c, { kind: 'send', name, args, kwargs, ...published, ...(timeout ? { waitSeconds: timeout } : {}) }, timeout ? timeout + 5 : undefined);
  if (!outcome.ok) return c.json({ error: outcome.error }, outcome.status === 504 ? 503 : outcome.status);
  const result = outcome.result;
  if (!wait) return c.json({ 'task-id': result['task-id'], ...('state' in result && result.state ? { state: result.state } : {}) });
  return c.json(resultShape(result));
}

/** Pages: the audit log, and the tasks page's send form. */
export const controlPageRoutes = new Hono<AppEnv>()
  .get('/audit', async (c) => {
    const { db, ui } = c.var.services;
    const limit = 100;
    const offset = query(c).int('offset', { min: 0, max: LIMITS.offset }) ?? 0;
    return c.html(<AuditPage entries={await auditLog(db, limit, offset)} ui={ui} offset={offset} limit={limit} />);
  })
  .post('/tasks/send', async (c) => {
    let outcome: CommandOutcome<'send'>;
    try {
      const p = await form(c);
      const args = parseJsonField(p, 'args') ?? [];
      const kwargs = parseJsonField(p, 'kwargs') ?? {};
      if (!Array.isArray(args)) throw badRequest('args must be a JSON array');
      if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs)) throw badRequest('kwargs must be a JSON object');
      const queue = p.text('queue', { controls: 'allowed' });
      const countdown = p.float('countdown', { min: 0, max: LIMITS.seconds });
      const options = publishOptions({ ...(queue ? { queue } : {}), ...(countdown ? { countdown } : {}) }, c.var.services.now());
      outcome = await run(c, { kind: 'send', name: p.text('name', { required: true, controls: 'allowed' }), args, kwargs: kwargs as Record<string, unknown>, ...options });
    } catch (error) {
      // The form shows what was wrong in place (htmx swaps only a 2xx).
      if (!(error instanceof AppError) || error.code !== 'BAD_REQUEST') throw error;
      return c.html(<output class="outcome bad">{error.message}</output>);
    }
    if (!outcome.ok) return c.html(<output class="outcome bad">{outcome.error}</output>);
    const id = outcome.result['task-id'];
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
    workerAction('shutdown', () => ({}), () => 'Shutting down!', (w, _a, reason) => `Failed to shut down '${w}': ${reason}`),
  )
  .post(
    '/worker/pool/restart/:name{.+}',
    workerAction('pool_restart', () => ({}), (w) => `Restarting '${w}' worker's pool`, (w, _a, reason) => `Failed to restart the '${w}' pool: ${reason}`),
  )
  .post(
    '/worker/pool/grow/:name{.+}',
    workerAction('pool_grow', (p) => ({ n: p.int('n', POOL_STEP) ?? 1 }), (w, a) => `Growing '${w}' worker's pool by ${a.n}`, (w, _a, reason) => `Failed to grow '${w}' worker's pool: ${reason}`),
  )
  .post(
    '/worker/pool/shrink/:name{.+}',
    workerAction('pool_shrink', (p) => ({ n: p.int('n', POOL_STEP) ?? 1 }), (w, a) => `Shrinking '${w}' worker's pool by ${a.n}`, (w, _a, reason) => `Failed to shrink '${w}' worker's pool: ${reason}`),
  )
  .post(
    '/worker/pool/autoscale/:name{.+}',
    workerAction(
      'autoscale',
      (p) => {
        const min = p.requiredInt('min', POOL_BOUND);
        const max = p.requiredInt('max', POOL_BOUND);
        if (min > max) throw badRequest("'min' must not be greater than 'max'");
        return { min, max };
      },
      (w, a) => `Autoscaling '${w}' worker (min=${a.min}, max=${a.max})`,
      (w, _a, reason) => `Failed to autoscale '${w}' worker: ${reason}`,
    ),
  )
  .post(
    '/worker/queue/add-consumer/:name{.+}',
    workerAction('add_consumer', (p) => ({ queue: p.text('queue', { required: true, controls: 'allowed' }) }), (_w, _a, result) => result, (w, a, reason) => `Failed to add '${a.queue}' consumer to '${w}' worker: ${reason}`),
  )
  .post(
    '/worker/queue/cancel-consumer/:name{.+}',
    workerAction('cancel_consumer', (p) => ({ queue: p.text('queue', { required: true, controls: 'allowed' }) }), (_w, _a, result) => result, (w, a, reason) => `Failed to cancel '${a.queue}' consumer from '${w}' worker: ${reason}`),
  )
  .post('/task/revoke/:id{.+}', async (c) => {
    const task = pathName(c, 'id');
    const p = await form(c);
    const terminate = p.bool('terminate');
    const signal = signalParam(p);
    const outcome = await run(c, { kind: 'revoke', task, terminate, signal });
    return answer(c, outcome, () => `Revoked '${task}'`, (reason) => `Failed to revoke '${task}': ${reason}`);
  })
  .post('/task/abort/:id{.+}', async (c) => {
    const task = pathName(c, 'id');
    // No parameters, but the body is still checked (a form, or nothing).
    await form(c);
    const outcome = await run(c, { kind: 'abort', task });
    return answer(c, outcome, () => `Aborted '${task}'`, (reason) => `Failed to abort '${task}': ${reason}`);
  })
  .post('/task/timeout/:name{.+}', async (c) => {
    const task = pathName(c, 'name');
    const p = await form(c);
    const worker = p.name('workername', { required: true });
    const soft = p.float('soft', TIME_LIMIT) ?? null;
    const hard = p.float('hard', TIME_LIMIT) ?? null;
    const outcome = await run(c, { kind: 'time_limit', task, worker, soft, hard });
    return answer(c, outcome, (result) => result, (reason) => `Failed to set timeouts: '${reason}'`);
  })
  .post('/task/rate-limit/:name{.+}', async (c) => {
    const task = pathName(c, 'name');
    const p = await form(c);
    const worker = p.name('workername', { required: true });
    const rate = p.text('ratelimit', { required: true, max: 32 });
    if (!/^\d+(\.\d+)?(\/[smh])?$/.test(rate)) throw badRequest(`Invalid rate limit '${quoted(rate)}' (e.g. 100, 10/s, 100/m, 1000/h)`);
    const outcome = await run(c, { kind: 'rate_limit', task, worker, rate });
    return answer(c, outcome, (result) => result, (reason) => `Failed to set rate limit: '${reason}'`);
  })
  .post('/task/apply/:name{.+}', (c) => send(c, true, true))
  .post('/task/async-apply/:name{.+}', (c) => send(c, false, true))
  .post('/task/send-task/:name{.+}', (c) => send(c, false, false))
  .get('/task/result/:id{.+}', async (c) => {
    const task = pathName(c, 'id');
    const timeout = query(c).float('timeout', { min: 0, max: LIMITS.wait });
    const outcome = await run(c, { kind: 'result', task, ...(timeout ? { waitSeconds: timeout } : {}) }, timeout ? timeout + 5 : undefined);
    if (!outcome.ok) return c.json({ error: outcome.error }, outcome.status === 504 ? 503 : outcome.status);
    return c.json(resultShape(outcome.result));
  })
  .get('/queues/length', async (c) => {
    const outcome = await run(c, { kind: 'queues' });
    if (!outcome.ok) return c.json({ error: outcome.error }, outcome.status === 504 ? 503 : outcome.status);
    return c.json({
      active_queues: outcome.result.map((q) => ({
        name: q.name,
        messages: q.messages,
        ...(q.ready !== null ? { messages_ready: q.ready } : {}),
        ...(q.unacked !== null ? { messages_unacknowledged: q.unacked } : {}),
        ...(q.consumers !== null ? { consumers: q.consumers } : {}),
      })),
    });
  });
