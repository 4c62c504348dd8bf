// Marking tasks LOST on real SQLite and MariaDB (worker-collector/store/lost.ts):
// which rows change, the reasons, the counter written with them, the SQL
// merge undoing LOST for later events only, the lease's fence, and the
// stuck and state=LOST filters the web reads them through.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/shared/celery-events';
import { createLogger } from '../../src/shared/log';
import { listTasks } from '../../src/queries/tasks';
import { readMetricsState } from '../../src/queries/metrics';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { LostSweepFencedError, sweepLost } from '../../worker-collector/store/lost';
import { buildFlushPayload } from '../../worker-collector/store/payload';
import { StoreWriter } from '../../worker-collector/store/writer';
import { failed, received, retried, sent, started, succeeded } from '../fixtures/events';
import { DIALECTS, openTestDatabase } from '../support/databases';

const quiet = createLogger('test', 'error');
const NOW = 1_800_000_000;
const DEAD = 'dead@host';
const ALIVE = 'alive@host';

describe.each(DIALECTS)('LOST tasks on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let writer: StoreWriter;

  async function write(events: TaskEvent[]): Promise<void> {
    const batch = new EventBatch();
    const workers = new Map<string, WorkerState>();
    for (const event of events) batch.add(event, workers);
    await writer.write(buildFlushPayload(batch, () => undefined, new Map(), null).payload);
  }

  async function task(uuid: string) {
    return database.db
      .selectFrom('tasks')
      .select(['state', 'state_reason', 'state_key'])
      .where('uuid', '=', uuid)
      .executeTakeFirstOrThrow();
  }

  async function lostCounts(): Promise<Record<string, number>> {
    const rows = await database.db.selectFrom('lost_counters').selectAll().execute();
    return Object.fromEntries(rows.map((r) => [r.task_name, Number(r.count)]));
  }

  const offline = [{ hostname: DEAD, at: NOW - 30, how: 'heartbeat' as const }];

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    writer = new StoreWriter(database, quiet);
    const on = (uuid: string, worker: string, name = 'tasks.slow') => ({ uuid, worker, name });
    await write([
      received(on('recv', DEAD), NOW - 60),
      received(on('run', DEAD), NOW - 61),
      started(on('run', DEAD), NOW - 60),
      received(on('mail', DEAD, 'tasks.mail'), NOW - 50),
      started(on('mail', DEAD, 'tasks.mail'), NOW - 49),
      received(on('done', DEAD), NOW - 70),
      started(on('done', DEAD), NOW - 69),
      succeeded(on('done', DEAD), NOW - 68),
      received(on('oops', DEAD), NOW - 70),
      failed(on('oops', DEAD), NOW - 69),
      received(on('again', DEAD), NOW - 70),
      retried(on('again', DEAD), NOW - 69),
      received(on('busy', ALIVE), NOW - 600),
      started(on('busy', ALIVE), NOW - 600),
      received(on('fresh', ALIVE), NOW - 5),
      started(on('fresh', ALIVE), NOW - 5),
      sent({ uuid: 'old-sent', name: 'tasks.slow' }, NOW - 7200),
      sent({ uuid: 'new-sent', name: 'tasks.slow' }, NOW - 10),
    ]);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('marks the offline worker’s RECEIVED and STARTED tasks and long-unreceived sent ones, nothing else, and counts them by name', async () => {
    const keyBefore = (await task('run')).state_key;
    const result = await sweepLost(database.db, database.dialect, { offline, revived: [], lostAfter: 3600, now: NOW });
    expect(result.total).toBe(4);
    expect(Object.fromEntries(result.byName)).toEqual({ 'tasks.slow': 3, 'tasks.mail': 1 });
    const reason = 'worker dead@host went offline at 2027-01-15 07:59:30 UTC (heartbeats stopped)';
    expect(await task('recv')).toMatchObject({ state: 'LOST', state_reason: reason });
    expect(await task('run')).toEqual({ state: 'LOST', state_reason: reason, state_key: keyBefore });
    expect(await task('mail')).toMatchObject({ state: 'LOST', state_reason: reason });
    expect(await task('old-sent')).toMatchObject({
      state: 'LOST',
      state_reason: 'sent at 2027-01-15 06:00:00 UTC, never received within 1h',
    });
    for (const [uuid, state] of [
      ['done', 'SUCCESS'],
      ['oops', 'FAILURE'],
      ['again', 'RETRY'],
      ['busy', 'STARTED'],
      ['fresh', 'STARTED'],
      ['new-sent', 'PENDING'],
    ] as const) {
      expect(await task(uuid)).toMatchObject({ state, state_reason: null });
    }
    expect(await lostCounts()).toEqual({ 'tasks.slow': 3, 'tasks.mail': 1 });
  });

  it('sweeping again changes and counts nothing', async () => {
    const again = await sweepLost(database.db, database.dialect, { offline, revived: [], lostAfter: 3600, now: NOW + 15 });
    expect(again.total).toBe(0);
    expect(await lostCounts()).toEqual({ 'tasks.slow': 3, 'tasks.mail': 1 });
  });

  it('the web finds them with state=LOST, and stuck tasks by how long they have been STARTED', async () => {
    const lost = await listTasks(database.db, database.dialect, { state: 'LOST' });
    expect(lost.map((r) => r.uuid).sort()).toEqual(['mail', 'old-sent', 'recv', 'run']);
    const stuck = await listTasks(database.db, database.dialect, { stuckBefore: NOW - 300 });
    expect(stuck.map((r) => r.uuid)).toEqual(['busy']);
    const all = await listTasks(database.db, database.dialect, { stuckBefore: NOW });
    expect(all.map((r) => r.uuid).sort()).toEqual(['busy', 'fresh']);
    const state = await readMetricsState(database.db);
    expect(state.lost.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'tasks.mail', count: 1 },
      { name: 'tasks.slow', count: 3 },
    ]);
  });

  it('a later event converges a LOST task and clears its reason; an older or duplicate one leaves it; the count stays', async () => {
    await write([
      succeeded({ uuid: 'run', worker: DEAD, name: 'tasks.slow' }, NOW + 100),
      received({ uuid: 'recv', worker: DEAD, name: 'tasks.slow' }, NOW - 60),
      started({ uuid: 'mail', worker: DEAD, name: 'tasks.mail' }, NOW - 55),
      received({ uuid: 'old-sent', worker: ALIVE, name: 'tasks.slow' }, NOW + 100),
    ]);
    expect(await task('run')).toMatchObject({ state: 'SUCCESS', state_reason: null });
    expect(await task('old-sent')).toMatchObject({ state: 'RECEIVED', state_reason: null });
    expect(await task('recv')).toMatchObject({ state: 'LOST' });
    expect(await task('mail')).toMatchObject({ state: 'LOST' });
    expect(await lostCounts()).toEqual({ 'tasks.slow': 3, 'tasks.mail': 1 });
  });

  it('a task that comes back and is lost again is counted again', async () => {
    await write([started({ uuid: 'recv', worker: DEAD, name: 'tasks.slow' }, NOW + 200)]);
    expect((await task('recv')).state).toBe('STARTED');
    const result = await sweepLost(database.db, database.dialect, { offline, revived: [], lostAfter: 0, now: NOW + 300 });
    expect(result.total).toBe(1);
    expect(await lostCounts()).toEqual({ 'tasks.slow': 4, 'tasks.mail': 1 });
  });

  it('a worker that comes back as the same process gets exactly the tasks its expiry marked back, in their states; the count stays', async () => {
    const FLAKY = 'flaky@host';
    const on = (uuid: string) => ({ uuid, worker: FLAKY, name: 'tasks.flaky' });
    await write([received(on('f-old'), NOW - 500), started(on('f-old'), NOW - 499)]);
    const earlier = { hostname: FLAKY, at: NOW - 400, how: 'heartbeat' as const };
    await sweepLost(database.db, database.dialect, { offline: [earlier], revived: [], lostAfter: 0, now: NOW - 390 });
    await write([received(on('f-run'), NOW + 600), started(on('f-run'), NOW + 601), received(on('f-wait'), NOW + 602)]);
    const expiry = { hostname: FLAKY, at: NOW + 700, how: 'heartbeat' as const };
    await sweepLost(database.db, database.dialect, { offline: [expiry], revived: [], lostAfter: 0, now: NOW + 700 });
    expect((await task('f-run')).state).toBe('LOST');
    expect((await task('f-wait')).state).toBe('LOST');
    const counted = await lostCounts();
    expect(counted['tasks.flaky']).toBe(3);

    const result = await sweepLost(database.db, database.dialect, {
      offline: [],
      revived: [{ hostname: FLAKY, reason: 'worker flaky@host went offline at 2027-01-15 08:11:40 UTC (heartbeats stopped)' }],
      lostAfter: 0,
      now: NOW + 720,
    });
    expect(result).toMatchObject({ total: 0, revived: 2 });
    expect(await task('f-run')).toMatchObject({ state: 'STARTED', state_reason: null });
    expect(await task('f-wait')).toMatchObject({ state: 'RECEIVED', state_reason: null });
    // Lost by an earlier expiry (a process that did not come back): still LOST.
    expect(await task('f-old')).toMatchObject({
      state: 'LOST',
      state_reason: 'worker flaky@host went offline at 2027-01-15 07:53:20 UTC (heartbeats stopped)',
    });
    expect(await lostCounts()).toEqual(counted);
    // A revived task merges on as before: a later event wins.
    await write([succeeded(on('f-run'), NOW + 800)]);
    expect((await task('f-run')).state).toBe('SUCCESS');
  });

  it('behind the lease: a collector that no longer holds it marks nothing', async () => {
    await write([started({ uuid: 'late', worker: DEAD, name: 'tasks.slow' }, NOW + 400)]);
    const before = await lostCounts();
    const claim = { name: 'collector', holder: 'someone-else/1/x', ttlSeconds: 8 };
    await expect(
      sweepLost(database.db, database.dialect, { offline, revived: [], lostAfter: 0, now: NOW + 500 }, claim),
    ).rejects.toBeInstanceOf(LostSweepFencedError);
    expect((await task('late')).state).toBe('STARTED');
    expect(await lostCounts()).toEqual(before);
  });
});
