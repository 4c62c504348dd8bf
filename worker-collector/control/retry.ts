// The `retry` command: each task sent again as a new task with its exact
// arguments, and the new task's row linked to the original.
//
// What a retry keeps: the task's name, its args and kwargs, and its queue
// (the routing key the worker got it on, from the result backend's meta, or
// the routing key / queue of its task-sent event). What it does not: the id
// (a new one), eta and expires (a retry runs now; the original's expiry has
// usually passed), retries (a new task starts at 0), root and parent (the new
// task is its own root; the link is `retried_from`), the exchange (Stalk
// publishes through the default exchange to the queue named by the routing
// key, which reaches the same queue for Celery's automatic queues), and what
// Stalk never sees: priority, shadow name, time limits, custom headers
// (events and the result meta do not carry them; the worker's defaults apply).
//
// Exact arguments come from the result backend when Celery's
// `result_extended` is on (the meta then holds name, args, kwargs and queue),
// otherwise from the event's argsrepr when it reads back losslessly
// (python-literal.ts); anything else is refused with the reason.

import { type Kysely, sql } from 'kysely';
import type { ControlCommand, RetryReport } from '../../src/shared/control';
import type { Database, SqlDialect } from '../../src/shared/schema';
import { PENDING, stateKey } from '../../src/shared/task-states';
import { retryWhileBusy } from '../store/db';
import { parseArgsRepr, parseJsonFields, type Recovered } from './python-literal';
import type { OutgoingTask, ResultBackend, TaskPublisher } from './types';

type RetryCommand = Extract<ControlCommand, { kind: 'retry' }>;

/** Tasks still on their way: a retry would run them twice. */
const IN_FLIGHT = new Set(['PENDING', 'RECEIVED', 'STARTED', 'RETRY']);

export const NOT_RECOVERABLE = 'arguments are not recoverable exactly';

interface Original {
  uuid: string;
  name: string | null;
  state: string;
  args: string | null;
  kwargs: string | null;
  queue: string | null;
  routing_key: string | null;
}

type Plan = { ok: true; task: OutgoingTask & { exactJson: { args: string; kwargs: string } } } | { ok: false; reason: string };

/** One retry command's progress (a retrier may run several commands at once). */
interface Run {
  report: RetryReport;
  failure: string | undefined;
}

const text = (r: Recovered | undefined): string | null => (r?.ok && typeof r.value === 'string' ? r.value : null);

/** What the result backend's meta says, when it holds the request (result_extended); null otherwise. */
function fromMeta(raw: string): Plan | null {
  const fields = parseJsonFields(raw);
  if (typeof fields === 'string') return null;
  const args = fields.get('args');
  const kwargs = fields.get('kwargs');
  // Without result_extended the meta has no request fields; a revoked task's meta may have them null.
  if (!fields.has('name') || !args || !kwargs || (args.ok && args.value === null)) return null;
  if (!args.ok) return { ok: false, reason: `${NOT_RECOVERABLE}: args in the result backend: ${args.reason}` };
  if (!kwargs.ok) return { ok: false, reason: `${NOT_RECOVERABLE}: kwargs in the result backend: ${kwargs.reason}` };
  if (!Array.isArray(args.value)) return { ok: false, reason: `${NOT_RECOVERABLE}: args in the result backend are not a list` };
  const kw = kwargs.value ?? {};
  if (typeof kw !== 'object' || Array.isArray(kw))
    return { ok: false, reason: `${NOT_RECOVERABLE}: kwargs in the result backend are not a dict` };
  const name = text(fields.get('name'));
  const queue = text(fields.get('queue'));
  return {
    ok: true,
    task: {
      name: name ?? '',
      args: args.value,
      kwargs: kw as Record<string, unknown>,
      ...(queue ? { queue } : {}),
      exactJson: { args: args.json, kwargs: kwargs.value === null ? '{}' : kwargs.json },
    },
  };
}

function fromRepr(row: Original): Plan {
  if (row.args === null || row.kwargs === null) return { ok: false, reason: `${NOT_RECOVERABLE}: the task's events carried no arguments` };
  const args = parseArgsRepr(row.args, 'args');
  if (!args.ok) return { ok: false, reason: `${NOT_RECOVERABLE}: args ${args.reason}` };
  const kwargs = parseArgsRepr(row.kwargs, 'kwargs');
  if (!kwargs.ok) return { ok: false, reason: `${NOT_RECOVERABLE}: kwargs ${kwargs.reason}` };
  return {
    ok: true,
    task: {
      name: row.name ?? '',
      args: args.value as unknown[],
      kwargs: kwargs.value as Record<string, unknown>,
      exactJson: { args: args.json, kwargs: kwargs.json },
    },
  };
}

export class TaskRetrier {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: SqlDialect,
    private readonly publisher: TaskPublisher,
    private readonly results: ResultBackend | undefined,
    private readonly now: () => number,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ) {}

  async run(command: RetryCommand): Promise<RetryReport> {
    // `failure` is set when the broker refused a send: the rest are not sent (reported refused), and nothing sent at all is an error.
    const run: Run = { report: { tasks: {}, refused: {} }, failure: undefined };
    const ids = [...new Set(command.tasks)];
    for (let start = 0; start < ids.length; start += command.chunk) {
      if (start > 0 && !command.dryRun && command.pauseMs > 0) await this.sleep(command.pauseMs);
      await this.chunk(ids.slice(start, start + command.chunk), command.dryRun, run);
    }
    if (run.failure !== undefined && Object.keys(run.report.tasks).length === 0) throw new Error(run.failure);
    return run.report;
  }

  private async chunk(ids: string[], dryRun: boolean, run: Run): Promise<void> {
    const { report } = run;
    const rows = await this.db
      .selectFrom('tasks')
      .select(['uuid', 'name', 'state', 'args', 'kwargs', 'queue', 'routing_key'])
      .where('uuid', 'in', ids)
      .execute();
    const byId = new Map(rows.map((r) => [r.uuid, r]));
    const metas = await Promise.all(ids.map((id) => (this.results?.raw && byId.has(id) ? this.results.raw(id) : null)));
    const links: { original: Original; id: string; queue: string | undefined }[] = [];
    for (const [i, id] of ids.entries()) {
      const row = byId.get(id);
      const plan = this.plan(id, row, metas[i] ?? null);
      if (!plan.ok || !row) {
        report.refused[id] = plan.ok ? 'unknown task' : plan.reason;
        continue;
      }
      if (dryRun) {
        report.tasks[id] = null;
        continue;
      }
      if (run.failure !== undefined) {
        report.refused[id] = `not sent: ${run.failure}`;
        continue;
      }
      try {
        const sent = await this.publisher.send(plan.task);
        report.tasks[id] = sent;
        links.push({ original: row, id: sent, queue: plan.task.queue });
      } catch (error) {
        run.failure = error instanceof Error ? error.message : String(error);
        report.refused[id] = `not sent: ${run.failure}`;
      }
    }
    if (links.length > 0) await this.link(links);
  }

  private plan(id: string, row: Original | undefined, meta: string | null): Plan {
    if (!row) return { ok: false, reason: `unknown task '${id}'` };
    if (IN_FLIGHT.has(row.state)) return { ok: false, reason: `the task is ${row.state}: only a finished task is retried` };
    const plan = (meta !== null ? fromMeta(meta) : null) ?? fromRepr(row);
    if (!plan.ok) return plan;
    const name = plan.task.name || row.name;
    if (!name) return { ok: false, reason: "the task's name is unknown" };
    const queue = plan.task.queue ?? row.routing_key ?? row.queue ?? undefined;
    return { ok: true, task: { ...plan.task, name, ...(queue ? { queue } : {}) } };
  }

  /**
   * The new tasks' rows, PENDING until their events arrive, each naming the
   * task it retries. An event may have written the row already: then only
   * the link is set (events never write it, so neither side loses).
   */
  private async link(links: { original: Original; id: string; queue: string | undefined }[]): Promise<void> {
    const at = this.now();
    const rows = links.map(({ original, id, queue }) => ({
      uuid: id,
      name: original.name,
      state: PENDING,
      state_key: stateKey(PENDING, at),
      timestamp: at,
      args: original.args,
      kwargs: original.kwargs,
      queue: queue ?? null,
      retried_from: original.uuid,
    }));
    await retryWhileBusy(async () => {
      const insert = this.db.insertInto('tasks').values(rows);
      await (this.dialect === 'mysql'
        ? insert.onDuplicateKeyUpdate({ retried_from: sql`VALUES(retried_from)` })
        : insert.onConflict((oc) => oc.column('uuid').doUpdateSet({ retried_from: (eb) => eb.ref('excluded.retried_from') }))
      ).execute();
    });
  }
}
