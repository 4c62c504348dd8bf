// The statistics reads as the Worker makes them: through kysely-planetscale
// and the PlanetScale stand-in (numbers come back as strings there, and
// each query is an HTTP request), against the same MariaDB rows read
// directly: the answers must be the same.

import { Kysely } from 'kysely';
import { PlanetScaleDialect } from 'kysely-planetscale';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlanetScaleStandIn } from '../../dev/standins/planetscale';
import { exceptionStats, queueLengthSeries, taskStatsSeries, taskTypeStats, totalStatsSeries } from '../../src/queries/stats';
import type { Database } from '../../src/shared/schema';
import { createTestDatabase, openTestConnection, type TestDatabase } from '../support/databases';
import { migrateToLatest } from '../../worker-collector/migrations';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { seedExceptions, seedQueueLengths, seedStats } from '../support/stats';

const H = 1_800_000_000;

describe('stats queries through the PlanetScale stand-in', () => {
  let target: TestDatabase;
  let direct: OpenDatabase;
  let standIn: Awaited<ReturnType<typeof startPlanetScaleStandIn>>;
  let edge: Kysely<Database>;

  beforeAll(async () => {
    target = await createTestDatabase('mariadb');
    direct = await openTestConnection(target.url);
    await migrateToLatest(direct.db);
    const seeds = [];
    for (let m = 0; m < 180; m += 7) {
      seeds.push({
        bucket: H + m * 60,
        name: `t${m % 3}`,
        counts: { received: 2, succeeded: 1, failed: 1 },
        runtimes: [m / 10],
        minuteGone: m < 60,
      });
    }
    await seedStats(direct.db, seeds);
    await seedExceptions(direct.db, [{ bucket: H + 120, name: 't1', exception: 'KeyError', count: 3 }]);
    await seedQueueLengths(direct.db, [{ bucket: H + 60, queue: 'celery', length: 12 }]);
    standIn = await startPlanetScaleStandIn({ mysqlUrl: target.url, username: 'stats', password: 'pw' });
    edge = new Kysely<Database>({ dialect: new PlanetScaleDialect({ url: standIn.url }) });
  });
  afterAll(async () => {
    await edge?.destroy();
    await standIn?.close();
    await direct?.close();
    await target?.drop();
  });

  it('answer as the direct connection does', async () => {
    const window = { from: H, to: H + 3 * 3600 };
    for (const step of [60, 3600] as const) {
      const viaEdge = await taskStatsSeries(edge, { ...window, step });
      expect(viaEdge).toEqual(await taskStatsSeries(direct.db, { ...window, step }));
      expect(viaEdge.series.length).toBe(3);
      expect(await totalStatsSeries(edge, { ...window, step })).toEqual(await totalStatsSeries(direct.db, { ...window, step }));
      expect(await queueLengthSeries(edge, { ...window, step })).toEqual(await queueLengthSeries(direct.db, { ...window, step }));
    }
    const types = await taskTypeStats(edge, { ...window, slices: 3, step: 3600 });
    expect(types).toEqual(await taskTypeStats(direct.db, { ...window, slices: 3, step: 3600 }));
    expect(types.reduce((n, t) => n + t.succeeded, 0)).toBe(26);
    expect(typeof types[0]!.count).toBe('number');
    expect(await exceptionStats(edge, { ...window, limit: 5 })).toEqual([
      { name: 't1', exception: 'KeyError', count: 3, firstSeen: H + 120, lastSeen: H + 120 },
    ]);
  });
});
