// Retention removes tasks whose time no event could have (stored before
// decode checked, or by another writer): far in the future they would never
// age out and would count as the newest forever; far in the past they are
// simply old. Kept: everything within the window.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUTURE_EVENT_WINDOW } from '../../src/shared/celery-events';
import { pruneOnce } from '../../worker-collector/store/retention';
import { succeedingTask } from '../fixtures/events';
import { store } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const NOW = 1_800_000_000;

describe.each(DIALECTS)('retention of absurd times on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await database?.drop();
  });

  /** Stores tasks and then gives them these timestamps, as another writer could. */
  async function seed(times: Record<string, number>): Promise<void> {
    await database.db.deleteFrom('tasks').execute();
    await database.db.deleteFrom('task_events').execute();
    for (const uuid of Object.keys(times)) await store(database, succeedingTask({ uuid }, NOW - 10));
    for (const [uuid, timestamp] of Object.entries(times))
      await database.db.updateTable('tasks').set({ timestamp }).where('uuid', '=', uuid).execute();
  }

  const remaining = async () => (await database.db.selectFrom('tasks').select('uuid').orderBy('uuid').execute()).map((r) => r.uuid);

  const absurd: Record<string, number> = {
    'future-1e20': 1e20,
    'future-window': NOW + FUTURE_EVENT_WINDOW + 1,
    'past-1e20': -1e20,
    'max-double': 1.7976931348623157e308,
    // SQLite keeps infinities; MariaDB cannot hold them.
    ...(dialect === 'sqlite' ? { 'future-inf': Number.POSITIVE_INFINITY, 'past-inf': Number.NEGATIVE_INFINITY } : {}),
  };
  const sane = { 'now-ish': NOW - 5, 'tomorrow-ish': NOW + FUTURE_EVENT_WINDOW - 1 };

  it('the age rule removes them (and their timelines), keeping tasks within the window', async () => {
    await seed({ ...absurd, ...sane });
    const report = await pruneOnce(database.db, { maxTasks: 0, maxAgeSeconds: 3600, intervalMs: 0 }, NOW);
    expect(report.tasks).toBe(Object.keys(absurd).length);
    expect(await remaining()).toEqual(Object.keys(sane).sort());
    const orphans = await database.db.selectFrom('task_events').select('task_id').where('task_id', 'in', Object.keys(absurd)).execute();
    expect(orphans).toEqual([]);
  });

  it('the count rule alone removes the future ones first, so they cannot hold the newest places', async () => {
    await seed({ ...absurd, ...sane, 'old-1': NOW - 1000 });
    await pruneOnce(database.db, { maxTasks: 2, maxAgeSeconds: 0, intervalMs: 0 }, NOW);
    expect(await remaining()).toEqual(Object.keys(sane).sort());
  });

  it('with retention off, nothing is removed', async () => {
    await seed({ ...absurd, ...sane });
    await pruneOnce(database.db, { maxTasks: 0, maxAgeSeconds: 0, intervalMs: 0 }, NOW);
    expect(await remaining()).toHaveLength(Object.keys(absurd).length + Object.keys(sane).length);
  });
});
