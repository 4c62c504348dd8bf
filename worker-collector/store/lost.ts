// Marking tasks LOST (src/shared/task-states.ts), on the store thread after a
// flush. The collector decides which workers are offline and when (it folds
// their heartbeats) and hands that over with the flush (LostSweep); here the
// rows change:
//
// - RECEIVED or STARTED tasks of an offline worker become LOST, with the
//   worker and when it went offline as the reason;
// - PENDING tasks (task-sent, nothing since) older than --lost-after become
//   LOST, "never received".
//
// Candidates are read through the (state, timestamp) index, all of them
// (tasks in flight are few: bounded by the workers' prefetch; /metrics reads
// them all on every scrape too), not by worker (an offline worker's range of
// the worker index holds its whole history). Then each UPDATE names its
// tasks and re-checks their state, so a task an event moved on meanwhile is
// left alone and the rows it reports changed are exactly the ones counted.
// Counts go to lost_counters in the same transaction.
//
// The state key is left as it was: LOST then ranks just below the event that
// set the replaced state, and any later event wins (store/upsert.ts). A
// worker that comes back as the same process gets its tasks' states back
// (fold/lost.ts says which).

import { type Kysely, sql } from 'kysely';
import { cutText } from '../../src/shared/text';
import { type Database, KEY, type SqlDialect } from '../../src/shared/schema';
import { LOSABLE_STATES, LOST, PENDING, RECEIVED, STARTED, stateKey } from '../../src/shared/task-states';
import { type LeaseClaim, renewInTransaction } from '../lease';
import { type LostSweep, neverReceivedReason, offlineReason } from '../fold/lost';

export type { LostSweep } from '../fold/lost';

/** Sent tasks marked per sweep at most (oldest first); the rest wait for the next sweep. */
const UNRECEIVED_LIMIT = 5_000;
const UUID_CHUNK = 500;

export interface LostResult {
  /** Tasks moved to LOST, by task name. */
  byName: Map<string, number>;
  total: number;
  /** Tasks given back their state (their worker came back as the same process). */
  revived: number;
}

/** Where a state key keeps the rank of an in-flight state (task-states.ts: class, 17 digits of time, rank). */
const RANK_AT = stateKey(STARTED, 0).length;
const STARTED_RANK = stateKey(STARTED, 0).slice(-1);

/**
 * Give the tasks a revived worker's expiry made LOST their state back: the
 * state key still names it (STARTED's rank, or else RECEIVED). The reason
 * is matched exactly, so only what that expiry marked changes. Not
 * counted down: stalk_tasks_lost_total stays a counter.
 */
async function revive(trx: Kysely<Database>, hostname: string, reason: string): Promise<number> {
  const result = await trx
    .updateTable('tasks')
    .set({
      state: sql<string>`CASE WHEN SUBSTR(${sql.ref('state_key')}, ${RANK_AT}, 1) = ${STARTED_RANK} THEN ${STARTED} ELSE ${RECEIVED} END`,
      state_reason: null,
    })
    .where('state', '=', LOST)
    .where('worker', '=', hostname)
    .where('state_reason', '=', reason)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

interface Candidate {
  uuid: string;
  name: string | null;
}

/** One UPDATE of named tasks still in one of `from`; the rows it changed. */
async function mark(trx: Kysely<Database>, uuids: string[], from: readonly string[], reason: string): Promise<number> {
  let changed = 0;
  for (let i = 0; i < uuids.length; i += UUID_CHUNK) {
    const result = await trx
      .updateTable('tasks')
      .set({ state: LOST, state_reason: reason })
      .where('uuid', 'in', uuids.slice(i, i + UUID_CHUNK))
      .where('state', 'in', [...from])
      .executeTakeFirst();
    changed += Number(result.numUpdatedRows);
  }
  return changed;
}

function groupByName(candidates: Candidate[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const c of candidates) {
    const name = c.name ?? '';
    const list = groups.get(name);
    if (list) list.push(c.uuid);
    else groups.set(name, [c.uuid]);
  }
  return groups;
}

/**
 * Run one sweep in one transaction (behind the lease's fence when a claim is
 * given). Every row an UPDATE matches changes (its state leaves the ones it
 * re-checks), so matched and changed counts agree on every driver.
 */
export async function sweepLost(db: Kysely<Database>, dialect: SqlDialect, sweep: LostSweep, lease?: LeaseClaim): Promise<LostResult> {
  const offline = new Map(sweep.offline.map((w) => [w.hostname, w]));
  // Read before the transaction (SQLite: a transaction that reads first and
  // then writes fails at once if another connection wrote in between); the
  // UPDATEs re-check every row.
  const inFlight =
    offline.size === 0
      ? []
      : await db
          .selectFrom('tasks')
          .select(['uuid', 'name', 'worker'])
          .where('state', 'in', [...LOSABLE_STATES])
          .execute();
  const byWorker = new Map<string, Candidate[]>();
  for (const row of inFlight) {
    if (row.worker === null || !offline.has(row.worker)) continue;
    const list = byWorker.get(row.worker);
    if (list) list.push(row);
    else byWorker.set(row.worker, [row]);
  }
  const unreceived =
    sweep.lostAfter > 0
      ? await db
          .selectFrom('tasks')
          .select(['uuid', 'name', 'timestamp'])
          .where('state', '=', PENDING)
          .where('timestamp', '<', sweep.now - sweep.lostAfter)
          .orderBy('timestamp')
          .limit(UNRECEIVED_LIMIT)
          .execute()
      : [];
  const result: LostResult = { byName: new Map(), total: 0, revived: 0 };
  if (byWorker.size === 0 && unreceived.length === 0 && sweep.revived.length === 0) return result;
  const count = (name: string, n: number) => {
    if (n === 0) return;
    const key = cutText(name, KEY.name);
    result.byName.set(key, (result.byName.get(key) ?? 0) + n);
    result.total += n;
  };
  await db.transaction().execute(async (trx) => {
    result.byName.clear();
    result.total = 0;
    result.revived = 0;
    if (lease && !(await renewInTransaction(trx, lease))) throw new LostSweepFencedError();
    for (const { hostname, reason } of sweep.revived) result.revived += await revive(trx, hostname, reason);
    for (const [hostname, candidates] of byWorker) {
      const reason = offlineReason(offline.get(hostname)!);
      for (const [name, uuids] of groupByName(candidates)) count(name, await mark(trx, uuids, LOSABLE_STATES, reason));
    }
    for (const task of unreceived) {
      const reason = neverReceivedReason(Number(task.timestamp), sweep.lostAfter);
      count(task.name ?? '', await mark(trx, [task.uuid], [PENDING], reason));
    }
    for (const [task_name, n] of result.byName) await addToCounter(trx, dialect, task_name, n);
  });
  return result;
}

async function addToCounter(trx: Kysely<Database>, dialect: SqlDialect, task_name: string, n: number): Promise<void> {
  const insert = trx.insertInto('lost_counters').values({ task_name, count: n });
  const added = sql<number>`${sql.ref('lost_counters.count')} + ${n}`;
  if (dialect === 'mysql') await insert.onDuplicateKeyUpdate({ count: added }).execute();
  else await insert.onConflict((oc) => oc.column('task_name').doUpdateSet({ count: added })).execute();
}

/** This collector no longer holds the lease: the sweep is the new holder's. */
export class LostSweepFencedError extends Error {
  override name = 'LostSweepFencedError';
  constructor() {
    super('lost-task sweep skipped: this collector no longer holds the lease');
  }
}
