// Control: Flower's API (same paths, parameters and shapes as flower/api/
// control.py and tasks.py). The pages' action forms post here too: the same
// handlers answer an htmx request with an inline message. Every action goes
// to the collector as a command (commands.tsx).

import type { Context } from 'hono';
import { Hono } from 'hono';
import { AppError, badRequest } from '../errors';
import type { AppEnv } from '../services';
import type { SentTask, TaskResultReply, WorkerAction } from '../shared/control';
import { answer, runCommand } from './commands';
import { form, LIMITS, type Params, pathName, query, rateLimitParam, signalParam } from './params';
import { publishOptions, taskBody, waitOption } from './task-options';

type C = Context<AppEnv>;

const POOL_STEP = { min: 1, max: LIMITS.pool };
const POOL_BOUND = { min: 0, max: LIMITS.pool };
const TIME_LIMIT = { min: 0, max: LIMITS.seconds };

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
    const outcome = await runCommand(c, { kind: 'worker', action, worker, args });
    return answer(
      c,
      outcome,
      (result) => ok(worker, args, result),
      (reason) => fail(worker, args, reason),
    );
  };
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
  const published = normalise
    ? publishOptions(options, c.var.services.now())
    : publishOptions({ queue: options.queue, eta: options.eta, expires: options.expires }, c.var.services.now());
  const timeout = wait ? waitOption(options) : undefined;
  const outcome = await runCommand(
    c,
    { kind: 'send', name, args, kwargs, ...published, ...(timeout ? { waitSeconds: timeout } : {}) },
    timeout ? timeout + 5 : undefined,
  );
  if (!outcome.ok) return c.json({ error: outcome.error }, outcome.status === 504 ? 503 : outcome.status);
  const result = outcome.result;
  if (!wait) return c.json({ 'task-id': result['task-id'], ...('state' in result && result.state ? { state: result.state } : {}) });
  return c.json(resultShape(result));
}

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
    workerAction(
      'shutdown',
      () => ({}),
      () => 'Shutting down!',
      (w, _a, reason) => `Failed to shut down '${w}': ${reason}`,
    ),
  )
  .post(
    '/worker/pool/restart/:name{.+}',
    workerAction(
      'pool_restart',
      () => ({}),
      (w) => `Restarting '${w}' worker's pool`,
      (w, _a, reason) => `Failed to restart the '${w}' pool: ${reason}`,
    ),
  )
  .post(
    '/worker/pool/grow/:name{.+}',
    workerAction(
      'pool_grow',
      (p) => ({ n: p.int('n', POOL_STEP) ?? 1 }),
      (w, a) => `Growing '${w}' worker's pool by ${a.n}`,
      (w, _a, reason) => `Failed to grow '${w}' worker's pool: ${reason}`,
    ),
  )
  .post(
    '/worker/pool/shrink/:name{.+}',
    workerAction(
      'pool_shrink',
      (p) => ({ n: p.int('n', POOL_STEP) ?? 1 }),
      (w, a) => `Shrinking '${w}' worker's pool by ${a.n}`,
      (w, _a, reason) => `Failed to shrink '${w}' worker's pool: ${reason}`,
    ),
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
    workerAction(
      'add_consumer',
      (p) => ({ queue: p.text('queue', { required: true, controls: 'allowed' }) }),
      (_w, _a, result) => result,
      (w, a, reason) => `Failed to add '${a.queue}' consumer to '${w}' worker: ${reason}`,
    ),
  )
  .post(
    '/worker/queue/cancel-consumer/:name{.+}',
    workerAction(
      'cancel_consumer',
      (p) => ({ queue: p.text('queue', { required: true, controls: 'allowed' }) }),
      (_w, _a, result) => result,
      (w, a, reason) => `Failed to cancel '${a.queue}' consumer from '${w}' worker: ${reason}`,
    ),
  )
  .post('/task/revoke/:id{.+}', async (c) => {
    const task = pathName(c, 'id');
    const p = await form(c);
    const terminate = p.bool('terminate');
    const signal = signalParam(p);
    const outcome = await runCommand(c, { kind: 'revoke', task, terminate, signal });
    // The API keeps Flower's message; the page says what was done.
    const page = c.req.header('HX-Request') ? (terminate ? `Terminated (${signal})` : 'Revoked: workers will discard the task') : null;
    return answer(
      c,
      outcome,
      () => page ?? `Revoked '${task}'`,
      (reason) => `Failed to revoke '${task}': ${reason}`,
    );
  })
  .post('/task/abort/:id{.+}', async (c) => {
    const task = pathName(c, 'id');
    // No parameters, but the body is still checked (a form, or nothing).
    await form(c);
    const outcome = await runCommand(c, { kind: 'abort', task });
    // Celery's abort only marks the task ABORTED in the result backend: an
    // AbortableTask stops when it next checks is_aborted(), any other runs on.
    const page = c.req.header('HX-Request') ? 'Abort requested: the task stops if it checks is_aborted() (AbortableTask)' : null;
    return answer(
      c,
      outcome,
      () => page ?? `Aborted '${task}'`,
      (reason) => `Failed to abort '${task}': ${reason}`,
    );
  })
  .post('/task/timeout/:name{.+}', async (c) => {
    const task = pathName(c, 'name');
    const p = await form(c);
    const worker = p.name('workername', { required: true });
    const soft = p.float('soft', TIME_LIMIT) ?? null;
    const hard = p.float('hard', TIME_LIMIT) ?? null;
    const outcome = await runCommand(c, { kind: 'time_limit', task, worker, soft, hard });
    return answer(
      c,
      outcome,
      (result) => result,
      (reason) => `Failed to set timeouts: '${reason}'`,
    );
  })
  .post('/task/rate-limit/:name{.+}', async (c) => {
    const task = pathName(c, 'name');
    const p = await form(c);
    const worker = p.name('workername', { required: true });
    const rate = rateLimitParam(p);
    const outcome = await runCommand(c, { kind: 'rate_limit', task, worker, rate });
    return answer(
      c,
      outcome,
      (result) => result,
      (reason) => `Failed to set rate limit: '${reason}'`,
    );
  })
  .post('/task/apply/:name{.+}', (c) => send(c, true, true))
  .post('/task/async-apply/:name{.+}', (c) => send(c, false, true))
  .post('/task/send-task/:name{.+}', (c) => send(c, false, false))
  .get('/task/result/:id{.+}', async (c) => {
    const task = pathName(c, 'id');
    const timeout = query(c).float('timeout', { min: 0, max: LIMITS.wait });
    const outcome = await runCommand(
      c,
      { kind: 'result', task, ...(timeout ? { waitSeconds: timeout } : {}) },
      timeout ? timeout + 5 : undefined,
    );
    if (!outcome.ok) return c.json({ error: outcome.error }, outcome.status === 504 ? 503 : outcome.status);
    return c.json(resultShape(outcome.result));
  })
  .get('/queues/length', async (c) => {
    const outcome = await runCommand(c, { kind: 'queues' });
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
