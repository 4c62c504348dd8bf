// Carries out control commands for the web app: inspect (cached in the
// database with their time), worker and task actions over pidbox, task
// sending, result lookups and queue lengths. Every action that changes
// something is written to the audit log with who asked and how it went.
//
// A little over 300 lines: one switch from each command to the broker call
// that carries it out and the audit entry it leaves; the calls themselves
// live in the pidbox, publisher and queue modules.

import type { Insertable, Kysely } from 'kysely';
import type { CommandOutcome, CommandRequest, CommandResult, ControlCommand, RetryReport } from '../../src/shared/control';
import { asRecord, INSPECT_METHODS, type InspectMethod, REGISTERED_TASK_INFO, type WorkerInspect } from '../../src/shared/inspect';
import { errorMessage, type Logger } from '../../src/shared/log';
import type { AuditLogTable, Database } from '../../src/shared/schema';
import type { SqlDialect } from '../../src/shared/schema';
import { retryWhileBusy } from '../store/db';
import { BulkWrite, newerAssignments, replaceAssignments } from '../store/upsert';
import { queueStatsRows, queueStatsWrite } from '../store/stats';
import { TaskRetrier } from './retry';
import type { Mailbox, QueueLength, QueueProbe, Replies, ResultBackend, TaskPublisher } from './types';

export interface BrokerControl {
  mailbox: Mailbox;
  publisher: TaskPublisher;
  queues: QueueProbe;
  /** Absent when there is no result backend to read (Flower answers 503 then). */
  results?: ResultBackend | undefined;
  close(): Promise<void>;
}

export interface ExecutorOptions {
  /** How long to collect inspect and control replies (Flower's inspect_timeout). */
  inspectTimeoutMs: number;
  now?: () => number;
}

export { INSPECT_METHODS };

/** Each inspect method's arguments: `active` without the unsafe parts, `registered` with the limits in force. */
const INSPECT_ARGS: Partial<Record<InspectMethod, Record<string, unknown>>> = {
  active: { safe: true },
  registered: { taskinfoitems: [...REGISTERED_TASK_INFO] },
};

/** A stored row's replies, or an empty entry when it is absent or corrupt. */
function storedInspect(text: string | undefined): WorkerInspect {
  try {
    const value = text === undefined ? null : (JSON.parse(text) as unknown);
    if (asRecord(value)) return value as WorkerInspect;
  } catch {
    // A corrupt row is replaced.
  }
  return { timestamp: 0 };
}

/** The audit log's user for refused commands: their claimed user is not believed. */
export const UNVERIFIED_USER = '(unverified)';

const READS = new Set<ControlCommand['kind']>(['inspect', 'result', 'queues']);

class CommandFailure extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 503 | 504,
    message: string,
  ) {
    super(message);
  }
}

/** What a worker answered: `{ok: ...}` on success, `{error: ...}` otherwise (Celery's control replies). */
function workerReply(replies: Replies, worker: string): { ok?: unknown; error?: unknown } {
  const reply = asRecord(replies[worker]);
  if (!reply) throw new CommandFailure(504, `'${worker}' did not answer in time`);
  return reply;
}

function okText(reply: { ok?: unknown; error?: unknown }): string {
  if (reply.ok === undefined) throw new CommandFailure(403, typeof reply.error === 'string' ? reply.error : 'Unknown reason');
  return typeof reply.ok === 'string' ? reply.ok : JSON.stringify(reply.ok);
}

/** `fresh`'s replies over `stored`'s, method by method: each method keeps the newer of the two. */
function mergeInspect(stored: WorkerInspect, fresh: WorkerInspect): WorkerInspect {
  const merged: WorkerInspect = { ...stored };
  const at: Partial<Record<InspectMethod, number>> = { ...stored.at };
  for (const method of INSPECT_METHODS) {
    const freshAt = fresh.at?.[method];
    if (freshAt === undefined) continue;
    const old = at[method] ?? (stored[method] !== undefined ? stored.timestamp : undefined);
    if (old !== undefined && old > freshAt) continue;
    (merged as unknown as Record<string, unknown>)[method] = fresh[method];
    at[method] = freshAt;
  }
  merged.at = at;
  merged.timestamp = Math.max(typeof stored.timestamp === 'number' ? stored.timestamp : 0, fresh.timestamp);
  return merged;
}

export class ControlExecutor {
  private readonly now: () => number;
  private readonly inspectRows: BulkWrite;
  private readonly queueRows: BulkWrite;
  private readonly queueStats: BulkWrite;
  private readonly retrier: TaskRetrier;

  constructor(
    private readonly broker: BrokerControl,
    private readonly db: Kysely<Database>,
    dialect: SqlDialect,
    private readonly log: Logger,
    private readonly options: ExecutorOptions,
  ) {
    this.now = options.now ?? (() => Date.now() / 1000);
    this.retrier = new TaskRetrier(db, dialect, broker.publisher, broker.results, this.now);
    this.inspectRows = new BulkWrite(db, dialect, 'worker_inspect', ['hostname', 'replies', 'inspected_at'], {
      columns: ['hostname'],
      assignments: newerAssignments('inspected_at', ['replies', 'inspected_at']),
    });
    const queueColumns = ['name', 'messages', 'ready', 'unacked', 'consumers', 'measured_at'];
    this.queueRows = new BulkWrite(db, dialect, 'queues', queueColumns, {
      columns: ['name'],
      assignments: replaceAssignments(queueColumns.filter((c) => c !== 'name')),
    });
    this.queueStats = queueStatsWrite(db, dialect);
  }

  async execute(request: CommandRequest): Promise<CommandOutcome> {
    if (request.deadline < this.now()) return { ok: false, status: 504, error: `command ${request.id} expired before it could run` };
    let outcome: CommandOutcome;
    try {
      outcome = { ok: true, result: await this.run(request.command) };
    } catch (error) {
      outcome =
        error instanceof CommandFailure
          ? { ok: false, status: error.status, error: error.message }
          : { ok: false, status: 503, error: `broker or result backend unavailable: ${errorMessage(error)}` };
    }
    const dryRun = request.command.kind === 'retry' && request.command.dryRun;
    if (!READS.has(request.command.kind) && !dryRun) await this.audit(request, outcome);
    return outcome;
  }

  private async audit(request: CommandRequest, outcome: CommandOutcome): Promise<void> {
    const { command } = request;
    if (command.kind === 'retry') return this.auditRetry(request.user, command, outcome);
    const target = 'worker' in command ? command.worker : 'task' in command ? command.task : 'name' in command ? command.name : null;
    const action = command.kind === 'worker' ? command.action : command.kind;
    await this.writeAudit({
      user: request.user.slice(0, 255),
      action,
      target: target?.slice(0, 255) ?? null,
      arguments: JSON.stringify(command),
      ok: outcome.ok ? 1 : 0,
      result: JSON.stringify(outcome.ok ? outcome.result : outcome.error).slice(0, 65_536),
    });
  }

  /** A retry, single or bulk, is one entry: its count, and the first ids (a bulk retry names up to 10,000). */
  private async auditRetry(user: string, command: Extract<ControlCommand, { kind: 'retry' }>, outcome: CommandOutcome): Promise<void> {
    const { tasks, filters } = command;
    const first = <T>(entries: [string, T][]) => Object.fromEntries(entries.slice(0, 100));
    let result: unknown = outcome.ok ? outcome.result : outcome.error;
    if (outcome.ok) {
      const report = outcome.result as RetryReport;
      const sent = Object.entries(report.tasks);
      const refused = Object.entries(report.refused);
      result = { retried: sent.length, refused: refused.length, tasks: first(sent), reasons: first(refused) };
    }
    await this.writeAudit({
      user: user.slice(0, 255),
      action: 'retry',
      target: (tasks.length === 1 ? tasks[0]! : `${tasks.length} tasks`).slice(0, 255),
      arguments: JSON.stringify({ count: tasks.length, ...(filters ? { filters } : {}), tasks: tasks.slice(0, 100) }),
      ok: outcome.ok ? 1 : 0,
      result: JSON.stringify(result).slice(0, 65_536),
    });
  }

  /**
   * A command the channel refused (src/shared/command-signing.ts). Nothing
   * it claims is verified, so the user column says so; the claimed user, id
   * and command go into the arguments, cut to a size that cannot swamp the log.
   */
  async auditRefusal(refusal: { reason: string; id: string | null; claimedUser: string | null; claimedCommand: unknown }): Promise<void> {
    let command: unknown = refusal.claimedCommand;
    try {
      const text = JSON.stringify(command) ?? 'null';
      if (text.length > 2_048) command = `${text.slice(0, 2_048)}…`;
    } catch {
      command = String(command).slice(0, 2_048);
    }
    const claimed = { id: refusal.id, claimed_user: refusal.claimedUser, command };
    await this.writeAudit({
      user: UNVERIFIED_USER,
      action: 'refused',
      target: null,
      arguments: JSON.stringify(claimed),
      ok: 0,
      result: JSON.stringify(refusal.reason),
    });
  }

  /** Refusals past the audit budget, counted in one row. */
  async auditRefusalFlood(count: number): Promise<void> {
    await this.writeAudit({
      user: UNVERIFIED_USER,
      action: 'refused',
      target: null,
      arguments: null,
      ok: 0,
      result: JSON.stringify(`${count} more commands refused within a minute (not written one by one; see the collector's log)`),
    });
  }

  private async writeAudit(row: Omit<Insertable<AuditLogTable>, 'at' | 'id'>): Promise<void> {
    try {
      await retryWhileBusy(() =>
        this.db
          .insertInto('audit_log')
          .values({ at: this.now(), ...row })
          .execute(),
      );
    } catch (error) {
      this.log.error(`audit log write failed for ${row.action} by ${row.user}: ${errorMessage(error)}`);
    }
  }

  private async call(method: string, args: Record<string, unknown>, worker?: string, reply = true): Promise<Replies> {
    return this.broker.mailbox.call(method, args, {
      ...(worker ? { destination: [worker] } : {}),
      timeoutMs: this.options.inspectTimeoutMs,
      reply,
    });
  }

  private async knownWorker(worker: string): Promise<void> {
    const row = await this.db.selectFrom('workers').select('hostname').where('hostname', '=', worker).executeTakeFirst();
    if (!row) throw new CommandFailure(404, `Unknown worker '${worker}'`);
  }

  private async run(command: ControlCommand): Promise<CommandResult> {
    switch (command.kind) {
      case 'inspect':
        return this.inspect(command.worker, command.methods);
      case 'worker': {
        await this.knownWorker(command.worker);
        const method = command.action;
        if (method === 'shutdown') {
          await this.call('shutdown', {}, command.worker, false);
          return 'Shutting down!';
        }
        const args: Record<string, unknown> = method === 'pool_restart' ? { reload: false, ...command.args } : command.args;
        return okText(workerReply(await this.call(method, args, command.worker), command.worker));
      }
      case 'rate_limit':
        await this.knownWorker(command.worker);
        return okText(
          workerReply(await this.call('rate_limit', { task_name: command.task, rate_limit: command.rate }, command.worker), command.worker),
        );
      case 'time_limit':
        await this.knownWorker(command.worker);
        return okText(
          workerReply(
            await this.call('time_limit', { task_name: command.task, soft: command.soft, hard: command.hard }, command.worker),
            command.worker,
          ),
        );
      case 'revoke':
        await this.call('revoke', { task_id: command.task, terminate: command.terminate, signal: command.signal }, undefined, false);
        return `Revoked '${command.task}'`;
      case 'abort':
        await this.results().abort(command.task);
        return `Aborted '${command.task}'`;
      case 'send': {
        const id = await this.broker.publisher.send({
          name: command.name,
          args: command.args,
          kwargs: command.kwargs,
          ...(command.queue ? { queue: command.queue } : {}),
          ...(command.eta ? { eta: command.eta } : {}),
          ...(command.expires ? { expires: command.expires } : {}),
        });
        if (!command.waitSeconds) return { 'task-id': id, state: this.broker.results ? 'PENDING' : undefined };
        const result = await this.results().wait(id, command.waitSeconds * 1000);
        return { 'task-id': id, ...(result ?? { status: 'PENDING', result: null, traceback: null }) };
      }
      case 'result': {
        const results = this.results();
        const result = command.waitSeconds ? await results.wait(command.task, command.waitSeconds * 1000) : await results.get(command.task);
        return { 'task-id': command.task, ...(result ?? { status: 'PENDING', result: null, traceback: null }) };
      }
      case 'queues':
        return this.measureQueues();
      case 'retry':
        return this.retrier.run(command);
    }
  }

  private results(): ResultBackend {
    if (!this.broker.results) throw new CommandFailure(503, 'Result backend is not configured (see --result-backend)');
    return this.broker.results;
  }

  /** Run the inspect methods (all eight, or those asked for) in parallel, store each worker's replies with their time, return them. */
  async inspect(worker?: string, methods?: readonly InspectMethod[]): Promise<Record<string, WorkerInspect>> {
    if (worker) await this.knownWorker(worker);
    return this.inspectRound(worker ? [worker] : undefined, methods);
  }

  /** Rounds under way by what they ask: an identical request joins one (several readers of one worker page poll together). */
  private readonly rounds = new Map<string, Promise<Record<string, WorkerInspect>>>();
  /** Stored replies are merged with what is stored: one merge at a time, so none is lost. */
  private inspectWrites: Promise<unknown> = Promise.resolve();

  /**
   * One inspect round: each method is one broadcast, whatever the number of
   * workers (`destination` names them; undefined asks everyone).
   */
  inspectRound(destination?: string[], methods: readonly InspectMethod[] = INSPECT_METHODS): Promise<Record<string, WorkerInspect>> {
    const key = JSON.stringify([destination ?? null, [...new Set(methods)].sort()]);
    const running = this.rounds.get(key);
    if (running) return running;
    const round = this.runInspectRound(destination, [...new Set(methods)]).finally(() => this.rounds.delete(key));
    this.rounds.set(key, round);
    return round;
  }

  private async runInspectRound(destination: string[] | undefined, methods: InspectMethod[]): Promise<Record<string, WorkerInspect>> {
    const at = this.now();
    const answers = await Promise.all(
      methods.map((method) =>
        this.broker.mailbox.call(method, INSPECT_ARGS[method] ?? {}, {
          ...(destination ? { destination } : {}),
          timeoutMs: this.options.inspectTimeoutMs,
          reply: true,
        }),
      ),
    );
    const byWorker: Record<string, WorkerInspect> = {};
    methods.forEach((method, i) => {
      for (const [hostname, reply] of Object.entries(answers[i] ?? {})) {
        if (reply === null || reply === undefined || asRecord(reply)?.error !== undefined) continue;
        const entry = (byWorker[hostname] ??= { timestamp: at, at: {} });
        (entry as unknown as Record<string, unknown>)[method] = reply;
        entry.at = { ...entry.at, [method]: at };
      }
    });
    for (const entry of Object.values(byWorker)) {
      // Flower drops broker alternates: they can carry other brokers' URLs.
      const broker = asRecord(entry.stats?.broker);
      if (broker) delete broker.alternates;
    }
    if (Object.keys(byWorker).length > 0) {
      const write = this.inspectWrites.then(() => this.storeInspect(byWorker));
      this.inspectWrites = write.catch(() => undefined);
      await write;
    }
    return byWorker;
  }

  /** Each worker's new replies over its stored ones, method by method, the newer of each kept; read and written in one transaction. */
  private async storeInspect(byWorker: Record<string, WorkerInspect>): Promise<void> {
    const hostnames = Object.keys(byWorker);
    await retryWhileBusy(() =>
      this.db.transaction().execute(async (trx) => {
        const stored = await trx.selectFrom('worker_inspect').select(['hostname', 'replies']).where('hostname', 'in', hostnames).execute();
        const before = new Map(stored.map((row) => [row.hostname, row.replies]));
        const rows = hostnames.map((hostname) => {
          const merged = mergeInspect(storedInspect(before.get(hostname)), byWorker[hostname]!);
          return [hostname, JSON.stringify(merged), merged.timestamp];
        });
        await this.inspectRows.run(trx, rows);
      }),
    );
  }

  /** Queue names: what workers consume (from inspect), what tasks were sent to, and Celery's default. */
  private async queueNames(): Promise<string[]> {
    const names = new Set<string>(['celery']);
    const inspected = await this.db.selectFrom('worker_inspect').select('replies').execute();
    for (const row of inspected) {
      try {
        const queues = (JSON.parse(row.replies) as WorkerInspect).active_queues ?? [];
        for (const q of queues) if (typeof q.name === 'string') names.add(q.name);
      } catch {
        // A corrupt cache row only loses its queue names.
      }
    }
    const counted = await this.db.selectFrom('event_counters').select('queue').distinct().where('queue', '<>', '').execute();
    for (const row of counted) names.add(row.queue);
    return [...names].sort();
  }

  /** Measure queue lengths now and store them (the broker page and metrics read the table). */
  async measureQueues(): Promise<QueueLength[]> {
    const lengths = await this.broker.queues.lengths(await this.queueNames());
    const at = this.now();
    const rows = lengths.map((q) => [q.name, q.messages, q.ready, q.unacked, q.consumers, at]);
    await retryWhileBusy(() =>
      this.db.transaction().execute(async (trx) => {
        // Queues no longer measured (no consumer, no tasks) leave the table.
        await trx.deleteFrom('queues').where('measured_at', '<', at).execute();
        await this.queueRows.run(trx, rows);
        // Queue lengths over time (task statistics, /stats).
        await this.queueStats.run(trx, queueStatsRows(lengths, at));
      }),
    );
    return lengths;
  }
}
