// The collector's lease on real SQLite and MariaDB: who may take it and
// when, the fence a flush passes inside its transaction, release, the store
// refusing a whole flush with a stale claim, and the keeper that drives it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/log';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import {
  type LeaseClaim,
  LeaseKeeper,
  LeaseLostError,
  leaseWanted,
  release,
  renewInTransaction,
  tryAcquire,
} from '../../worker-collector/lease';
import { buildFlushPayload } from '../../worker-collector/store/payload';
import { StoreWriter } from '../../worker-collector/store/writer';
import { succeedingTask, workerEvent } from '../fixtures/events';
import { DIALECTS, openTestDatabase } from '../support/databases';
import { waitFor } from '../support/processes';

const quiet = createLogger('test', 'error');
const TTL = 8;

let leaseNumber = 0;
/** A lease name of its own per test, so tests do not see each other's rows. */
function freshName(): string {
  leaseNumber += 1;
  return `lease-test-${leaseNumber}`;
}

function claim(name: string, holder: string): LeaseClaim {
  return { name, holder, ttlSeconds: TTL };
}

describe.each(DIALECTS)('the lease on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await database?.drop();
  });

  const row = (name: string) => database.db.selectFrom('collector_leases').selectAll().where('name', '=', name).executeTakeFirst();

  it('is taken at once when there is no row, and refused to a second holder while it is valid', async () => {
    const name = freshName();
    const first = await tryAcquire(database.db, { ...claim(name, 'a/1/x'), now: 1000 });
    expect(first).toEqual({ held: true, holder: 'a/1/x', expiresAt: 1000 + TTL, previousHolder: null });
    expect(await row(name)).toEqual({ name, holder: 'a/1/x', acquired_at: 1000, expires_at: 1008 });

    const second = await tryAcquire(database.db, { ...claim(name, 'b/2/y'), now: 1007.9 });
    expect(second).toEqual({ held: false, holder: 'a/1/x', expiresAt: 1008, previousHolder: null });
    expect((await row(name))?.holder).toBe('a/1/x');

    // The holder itself renews by acquiring again; acquired_at stays.
    expect(await tryAcquire(database.db, { ...claim(name, 'a/1/x'), now: 1005 })).toMatchObject({
      held: true,
      previousHolder: null,
      expiresAt: 1013,
    });
    expect(await row(name)).toMatchObject({ holder: 'a/1/x', acquired_at: 1000, expires_at: 1013 });
  });

  it('is taken over once expired, naming the holder before', async () => {
    const name = freshName();
    await tryAcquire(database.db, { ...claim(name, 'a/1/x'), now: 2000 });
    expect((await tryAcquire(database.db, { ...claim(name, 'b/2/y'), now: 2007 })).held).toBe(false);
    const takeover = await tryAcquire(database.db, { ...claim(name, 'b/2/y'), now: 2008 });
    expect(takeover).toEqual({ held: true, holder: 'b/2/y', expiresAt: 2016, previousHolder: 'a/1/x' });
    expect(await row(name)).toEqual({ name, holder: 'b/2/y', acquired_at: 2008, expires_at: 2016 });
  });

  it('fences: a holder past its expiry renews while nobody took over, and never after a takeover', async () => {
    const name = freshName();
    const a = claim(name, 'a/1/x');
    const b = claim(name, 'b/2/y');
    await tryAcquire(database.db, { ...a, now: 3000 });
    // Paused past its lease (3008), nobody took over: nobody else wrote, so it may.
    expect(await renewInTransaction(database.db, a, 3020)).toBe(true);
    expect((await row(name))?.expires_at).toBe(3028);

    expect((await tryAcquire(database.db, { ...b, now: 3029 })).held).toBe(true);
    // Even with the new holder's lease expired, the old holder's fence stays shut.
    expect(await renewInTransaction(database.db, a, 3040)).toBe(false);
    expect(await row(name)).toMatchObject({ holder: 'b/2/y', expires_at: 3037 });
    expect(await renewInTransaction(database.db, b, 3030)).toBe(true);
    // No row at all: nobody holds it, the fence is shut too.
    expect(await renewInTransaction(database.db, claim(freshName(), 'a/1/x'), 3030)).toBe(false);
  });

  it('release expires the lease now, so another collector takes it at once; releasing what is not ours does nothing', async () => {
    const name = freshName();
    const a = claim(name, 'a/1/x');
    await tryAcquire(database.db, { ...a, now: 4000 });
    expect(await release(database.db, claim(name, 'b/2/y'), 4001)).toBe(false);
    expect((await row(name))?.expires_at).toBe(4008);
    expect(await release(database.db, a, 4001)).toBe(true);
    expect(await tryAcquire(database.db, { ...claim(name, 'b/2/y'), now: 4001.5 })).toMatchObject({ held: true, previousHolder: 'a/1/x' });
  });

  it('goes to exactly one of many collectors racing for it, free or expired', async () => {
    const name = freshName();
    const holders = Array.from({ length: 6 }, (_, i) => claim(name, `racer/${i}/r`));
    const empty = await Promise.all(holders.map((h) => tryAcquire(database.db, { ...h, now: 5000 })));
    expect(empty.filter((s) => s.held)).toHaveLength(1);
    const winner = empty.find((s) => s.held)!.holder;
    expect((await row(name))?.holder).toBe(winner);

    const expired = await Promise.all(
      holders.map((h) => tryAcquire(database.db, { ...h, now: 5010 + Number(h.holder.split('/')[1]) / 10 })),
    );
    const held = expired.filter((s) => s.held);
    expect(held).toHaveLength(1);
    expect((await row(name))?.holder).toBe(held[0]!.holder);
  });

  it('a takeover racing a flush transaction waits for it, and sees its renewal', async () => {
    const name = freshName();
    const a = claim(name, 'a/1/x');
    await tryAcquire(database.db, { ...a, now: 6000 });
    let commit!: () => void;
    const committing = new Promise<void>((resolve) => (commit = resolve));
    let renewed!: () => void;
    const renewedInside = new Promise<void>((resolve) => (renewed = resolve));
    const flush = database.db.transaction().execute(async (trx) => {
      expect(await renewInTransaction(trx, a, 6005)).toBe(true);
      renewed();
      await committing;
    });
    await renewedInside;
    // By the last committed row the lease expired at 6008; the flush's renewal (to 6013) is not committed yet.
    let settled = false;
    const takeover = tryAcquire(database.db, { ...claim(name, 'b/2/y'), now: 6009 }).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);
    commit();
    await flush;
    expect(await takeover).toMatchObject({ held: false, holder: 'a/1/x', expiresAt: 6013 });
  });

  describe('the store behind the fence', () => {
    function payloadFor(uuid: string, taskName: string) {
      const workers = new Map<string, WorkerState>();
      const batch = new EventBatch();
      for (const event of succeedingTask({ uuid, name: taskName }, 7000)) batch.add(event, workers);
      batch.add(workerEvent('worker-heartbeat', 'fenced@host', 7000.5), workers);
      return buildFlushPayload(batch, () => undefined, workers, null).payload;
    }
    const counted = async (taskName: string) =>
      (await database.db.selectFrom('event_counters').select(['type', 'count']).where('task_name', '=', taskName).execute()).reduce(
        (n, r) => n + Number(r.count),
        0,
      );

    it('writes a flush whose claim holds the lease, renewing it', async () => {
      const name = freshName();
      const a = claim(name, 'a/1/x');
      await tryAcquire(database.db, { ...a, now: Date.now() / 1000 - 30 });
      const payload = payloadFor('fenced-ok', 'tasks.fenced.ok');
      payload.lease = a;
      const result = await new StoreWriter(database, quiet).write(payload);
      expect(result.rejectedRows).toBe(0);
      expect(await database.db.selectFrom('tasks').select('uuid').where('uuid', '=', 'fenced-ok').execute()).toEqual([
        { uuid: 'fenced-ok' },
      ]);
      expect(await counted('tasks.fenced.ok')).toBe(4);
      expect((await row(name))?.expires_at).toBeGreaterThan(Date.now() / 1000);
    });

    it('refuses a whole flush with a stale claim: LeaseLostError, nothing written, not isolated row by row', async () => {
      const name = freshName();
      const a = claim(name, 'a/1/x');
      await tryAcquire(database.db, { ...a, now: 8000 });
      await tryAcquire(database.db, { ...claim(name, 'b/2/y'), now: 8010 });
      const payload = payloadFor('fenced-stale', 'tasks.fenced.stale');
      // A row the database would refuse: without the fence, the writer would isolate it and write the rest.
      payload.counters.push({
        hostname: null as unknown as string,
        task_name: 'tasks.fenced.stale',
        queue: '',
        type: 'task-x',
        exception: '',
        count: 1,
      });
      payload.lease = a;
      const workersBefore = await database.db.selectFrom('workers').select('hostname').where('hostname', '=', 'fenced@host').execute();
      await expect(new StoreWriter(database, quiet).write(payload)).rejects.toBeInstanceOf(LeaseLostError);
      expect(await database.db.selectFrom('tasks').select('uuid').where('uuid', '=', 'fenced-stale').execute()).toEqual([]);
      expect(await database.db.selectFrom('task_events').select('task_id').where('task_id', '=', 'fenced-stale').execute()).toEqual([]);
      expect(await counted('tasks.fenced.stale')).toBe(0);
      expect(await database.db.selectFrom('workers').select('hostname').where('hostname', '=', 'fenced@host').execute()).toEqual(
        workersBefore,
      );
      expect((await row(name))?.holder).toBe('b/2/y');
    });
  });

  describe('the keeper', () => {
    it('takes the lease at start when free; a second stands by, takes over at once after a release, and the first learns it lost', async () => {
      const name = freshName();
      const events: string[] = [];
      const keeper = (id: string) =>
        new LeaseKeeper({
          db: database.db,
          name,
          ttlSeconds: TTL,
          collectorId: id,
          log: quiet,
          pollMs: 50,
          idleRenewMs: 100,
          onActive: (from) => events.push(`${id} active from ${from?.split('/')[0]}`),
          onStandby: () => events.push(`${id} standby`),
        });
      const a = keeper('a');
      const b = keeper('b');
      try {
        await a.start();
        await b.start();
        expect([a.role, b.role]).toEqual(['active', 'standby']);
        expect(a.claim?.holder).toMatch(new RegExp(`^a/${process.pid}/[\\w-]{12}$`));
        expect(b.claim).toBeNull();
        // The first start is not a change: no callback.
        expect(events).toEqual([]);

        await a.stop();
        await waitFor(() => b.active, 5_000, 'b to take over after the release');
        expect(events).toEqual(['b active from a']);
        expect((await row(name))?.holder).toBe(b.claim!.holder);

        // Another collector takes the lease over behind b's back (as if b had been frozen past it): b's idle renewal finds out.
        const now = Date.now() / 1000;
        await database.db
          .updateTable('collector_leases')
          .set({ holder: 'c/3/z', acquired_at: now, expires_at: now + TTL })
          .where('name', '=', name)
          .execute();
        await waitFor(() => !b.active, 5_000, 'b to notice the lease is gone');
        expect(events).toEqual(['b active from a', 'b standby']);
        expect(b.claim).toBeNull();
      } finally {
        await a.stop();
        await b.stop();
      }
    });

    it('a flush that lost the lease makes the keeper stand by; a loss reported with an older term is ignored', async () => {
      const name = freshName();
      let standby = 0;
      const k = new LeaseKeeper({
        db: database.db,
        name,
        ttlSeconds: TTL,
        collectorId: 'k',
        log: quiet,
        pollMs: 60_000,
        onStandby: () => (standby += 1),
      });
      try {
        await k.start();
        const term = k.claim!;
        k.lost({ ...term });
        expect(k.active).toBe(true);
        k.lost(term);
        expect([k.active, k.claim, standby]).toEqual([false, null, 1]);
      } finally {
        await k.stop();
      }
    });
  });
});

describe('when the lease is wanted', () => {
  it('auto: on for Redis and for RabbitMQ with an exclusive queue, off for a named (shared) RabbitMQ queue', () => {
    expect(leaseWanted('auto', 'redis', '')).toBe(true);
    expect(leaseWanted('auto', 'redis', 'ignored')).toBe(true);
    expect(leaseWanted('auto', 'amqp', '')).toBe(true);
    expect(leaseWanted('auto', 'amqp', 'stalk-events')).toBe(false);
    expect(leaseWanted('on', 'amqp', 'stalk-events')).toBe(true);
    expect(leaseWanted('off', 'redis', '')).toBe(false);
  });
});
