// Flower's JSON shapes of a task and a worker, built once for every route
// that answers with them (the API, the workers page's ?json=1, DataTables).

import type { WorkerInspect } from '../shared/inspect';
import type { TaskRow } from '../shared/schema';
import type { WorkerSummary } from '../shared/workers';

/** A task as Flower's `Task.as_dict()` renders it, worker as its hostname. */
export function flowerTask(row: TaskRow, children: string[]): Record<string, unknown> {
  return {
    uuid: row.uuid,
    name: row.name,
    state: row.state,
    received: row.received,
    sent: row.sent,
    started: row.started,
    rejected: row.rejected,
    succeeded: row.succeeded,
    failed: row.failed,
    retried: row.retried,
    revoked: row.revoked,
    args: row.args,
    kwargs: row.kwargs,
    eta: row.eta,
    expires: row.expires,
    retries: row.retries,
    worker: row.worker,
    result: row.result,
    exception: row.exception,
    timestamp: row.timestamp,
    runtime: row.runtime,
    traceback: row.traceback,
    exchange: row.exchange,
    routing_key: row.routing_key,
    clock: row.clock,
    client: row.client,
    root: row.root_id,
    root_id: row.root_id,
    parent: row.parent_id,
    parent_id: row.parent_id,
    children,
    // Stalk's own, only when Stalk set the state itself (LOST): Flower's shape otherwise.
    ...(row.state_reason ? { state_reason: row.state_reason } : {}),
    // Stalk's own, only on a retry (POST /api/task/retry): other tasks keep Flower's shape exactly.
    ...(row.retried_from ? { retried_from: row.retried_from } : {}),
  };
}

/** The event-derived facts both of Flower's worker shapes carry, in Flower's order. */
function workerFacts(worker: WorkerSummary) {
  return {
    hostname: worker.hostname,
    pid: worker.pid,
    freq: worker.freq,
    heartbeats: worker.heartbeats,
    clock: worker.clock,
    active: worker.active,
    processed: worker.processed,
    loadavg: worker.loadavg,
    sw_ident: worker.sw_ident,
    sw_ver: worker.sw_ver,
    sw_sys: worker.sw_sys,
  };
}

/** /api/workers: Flower's inspect data for a worker (stats, active_queues, registered, ..., timestamp) with the event-derived facts. */
export function flowerWorker(worker: WorkerSummary, inspect?: WorkerInspect): Record<string, unknown> {
  const { hostname, ...facts } = workerFacts(worker);
  // `at` (each reply's time) is Stalk's own bookkeeping, not Flower's.
  const { at: _at, ...replies } = inspect ?? { timestamp: undefined };
  return {
    ...(inspect ? replies : {}),
    hostname,
    status: worker.alive,
    ...facts,
    utcoffset: worker.utcoffset,
    last_heartbeat: worker.last_heartbeat,
    events: worker.events,
  };
}

/** /workers?json=1: Flower's dashboard row, every event count, the worker's facts, and status. */
export function flowerDashboardRow(worker: WorkerSummary): Record<string, unknown> {
  return { ...worker.events, ...workerFacts(worker), status: worker.alive };
}
