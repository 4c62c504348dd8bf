// GET /healthcheck: `OK` when the database answers and the collector reported
// within its interval; 503 and the reason otherwise.
//
// 1. The real local entry (collector + web in one process, on a private
//    redis-server) on a private MariaDB server that is shut down, restarted,
//    frozen (SIGSTOP) and thawed under it: 503 naming the database, within a
//    bounded time even when the server hangs, and OK again without
//    restarting Stalk. The shared MariaDB on 3306 is not touched.
// 2. A web app without a collector of its own (as on the Worker): health
//    comes from the newest collector_status row.
// 3. checkHealth itself: its timeout, and the in-process collector's problems.
// The broker going away in local mode is covered by
// test/integration/broker-restart.test.ts (503 naming the broker, then OK).

import { Kysely, MysqlDialect, type MysqlPool } from 'kysely';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { checkHealth, HEALTH_QUERY_TIMEOUT_MS } from '../../src/queries/health';
import { COLLECTOR_SILENCE_LIMIT } from '../../src/shared/health';
import type { CollectorStatusTable, Database } from '../../src/shared/schema';
import { testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';
import { freePort, type ManagedProcess, printLogsOnFailure, spawnManaged, stopAllProcesses } from '../support/processes';
import { type HttpResponse, type Stalk, startStalk, waitFor } from '../support/stalk';
import { LATE_MS } from '../support/timing';
import { createDatabaseOn, createPrivateMariadb, type PrivateMariadb } from './mariadb';

/** How long a probe may take when the database does not answer: the health query's own limit, plus slack. */
const BOUNDED_MS = HEALTH_QUERY_TIMEOUT_MS + LATE_MS;

/**
 * A private redis-server as the broker: a real one, but not the shared one on 6379, where other
 * files' workers would meet this collector (which inspects every worker it sees).
 */
async function startRedis(): Promise<{ redis: ManagedProcess; url: string }> {
  const port = await freePort();
  const redis = spawnManaged(`redis-server :${port}`, 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  await redis.waitForOutput(/Ready to accept connections/, 15_000);
  return { redis, url: `redis://127.0.0.1:${port}/0` };
}

describe('healthcheck of the local entry on a private MariaDB', () => {
  let server: PrivateMariadb | undefined;
  let stalk: Stalk | undefined;
  const timings: Record<string, number> = {};

  printLogsOnFailure();

  beforeAll(async () => {
    let t = Date.now();
    server = await createPrivateMariadb();
    timings['mariadb-install-db'] = Date.now() - t;
    t = Date.now();
    await server.start();
    timings['mariadbd start'] = Date.now() - t;
    const url = await createDatabaseOn(server, 'stalk');
    const broker = await startRedis();
    t = Date.now();
    stalk = await startStalk({ broker: broker.url, db: url });
    timings['stalk start (to first 200)'] = Date.now() - t;
  }, 90_000);

  afterAll(async () => {
    try {
      // The database must be up (and not frozen) for Stalk's last flush, or that waits for its deadline.
      if (server?.process && server.process.exitInfo() === null) server.thaw();
      await stalk?.stop(15_000);
    } finally {
      await server?.destroy();
      await stopAllProcesses();
      console.log(`healthcheck timings (ms): ${JSON.stringify(timings)}`);
    }
  }, 60_000);

  function alive(): Stalk {
    if (!stalk) throw new Error('stalk did not start');
    const exit = stalk.process.exitInfo();
    if (exit) throw new Error(`stalk exited: ${JSON.stringify(exit)}`);
    return stalk;
  }

  function running(): PrivateMariadb {
    if (!server) throw new Error('mariadb did not start');
    return server;
  }

  /** One probe, and how long it took (a probe that hangs past fetchText's 10 s limit throws). */
  async function probe(): Promise<HttpResponse & { ms: number }> {
    const started = Date.now();
    const response = await alive().fetchText('/healthcheck');
    return { ...response, ms: Date.now() - started };
  }

  async function waitForStatus(status: number, timeoutMs: number, what: string): Promise<HttpResponse & { ms: number }> {
    return waitFor(
      async () => {
        const response = await probe();
        return response.status === status ? response : undefined;
      },
      timeoutMs,
      what,
      200,
    );
  }

  /** The collector's own status row, read straight from the private server. */
  async function collectorUpdatedAt(): Promise<number> {
    const conn = await createConnection(`${running().serverUrl}/stalk`);
    try {
      const [rows] = await conn.query('SELECT MAX(updated_at) AS updated_at FROM collector_status');
      return Number((rows as { updated_at: number | null }[])[0]?.updated_at ?? 0);
    } finally {
      await conn.end();
    }
  }

  it('answers OK while the database answers and the collector reports', async () => {
    const response = await probe();
    expect(response).toMatchObject({ status: 200, text: 'OK' });
    // The in-process collector writes its status row.
    await waitFor(async () => Date.now() / 1000 - (await collectorUpdatedAt()) < COLLECTOR_SILENCE_LIMIT, 15_000, 'a collector status row');
  });

  it('goes 503 naming the database when the server shuts down, and back to OK when it returns', async () => {
    const db = running();
    let t = Date.now();
    expect(await db.stop()).toEqual({ code: 0, signal: null });
    timings['mariadbd SIGTERM shutdown'] = Date.now() - t;

    t = Date.now();
    const outage = await waitForStatus(503, 10_000, '/healthcheck to report the database outage');
    timings['503 after shutdown'] = Date.now() - t;
    expect(outage.text).toMatch(/^database unavailable: /);
    expect(outage.text).toContain('ECONNREFUSED');
    // Still down and answered promptly; Stalk keeps running through the outage (the collector buffers
    // and retries), as the same process answering after the restart below shows.
    const still = await probe();
    expect(still.status).toBe(503);
    expect(still.text).toMatch(/^database unavailable: /);
    expect(still.ms).toBeLessThan(BOUNDED_MS);

    t = Date.now();
    await db.start();
    timings['mariadbd restart'] = Date.now() - t;
    t = Date.now();
    const back = await waitForStatus(200, 30_000, '/healthcheck back to 200 after the restart');
    timings['OK after restart'] = Date.now() - t;
    expect(back.text).toBe('OK');
    // Same Stalk process, and its collector writes to the restarted server again.
    expect(alive().process.exitInfo()).toBeNull();
    const restartedAt = Date.now() / 1000;
    await waitFor(async () => (await collectorUpdatedAt()) >= restartedAt - 1, 15_000, 'a collector status row written after the restart');
  }, 90_000);

  it('goes 503 within a bounded time when the server hangs, and back to OK when it answers again', async () => {
    const db = running();
    // Independent of the test before: the server runs and Stalk is healthy.
    if (!db.process) await db.start();
    await waitForStatus(200, 30_000, '/healthcheck OK before the freeze');
    db.freeze();
    try {
      const t = Date.now();
      // The first probe after the freeze must already fail, and in bounded time: a frozen server
      // accepts TCP connections and answers nothing, so only a timeout ends the wait.
      const first = await probe();
      timings['first probe while frozen'] = Date.now() - t;
      expect(first.status).toBe(503);
      expect(first.text).toMatch(/^database unavailable: /);
      expect(first.ms).toBeLessThan(BOUNDED_MS);
      // Probes keep coming (a load balancer does not wait); each one is answered in bounded time.
      const more = await Promise.all([probe(), probe(), probe(), probe(), probe(), probe()]);
      for (const response of more) {
        expect(response.status).toBe(503);
        expect(response.text).toMatch(/^database unavailable: /);
        expect(response.ms).toBeLessThan(BOUNDED_MS);
      }
      const later = await probe();
      expect(later).toMatchObject({ status: 503 });
      expect(later.ms).toBeLessThan(BOUNDED_MS);
    } finally {
      db.thaw();
    }
    const t = Date.now();
    const back = await waitForStatus(200, 30_000, '/healthcheck back to 200 after the thaw');
    timings['OK after thaw'] = Date.now() - t;
    expect(back.text).toBe('OK');
    expect(alive().process.exitInfo()).toBeNull();
  }, 90_000);
});

describe('healthcheck of a web app without a collector of its own', () => {
  const NOW = 1_800_000_000;
  let database: Awaited<ReturnType<typeof openTestDatabase>>;

  beforeAll(async () => {
    database = await openTestDatabase('sqlite');
  });
  afterAll(async () => {
    await database?.drop();
  });
  beforeEach(async () => {
    await database.db.deleteFrom('collector_status').execute();
  });

  async function report(row: Partial<CollectorStatusTable> & { id: string; updated_at: number }): Promise<void> {
    await database.db
      .insertInto('collector_status')
      .values({
        started_at: row.updated_at - 600,
        broker_url: 'redis://broker.example:6379/0',
        broker_connected: 1,
        last_event_at: null,
        events_total: 0,
        dropped: '{}',
        lag_seconds: null,
        flush_seconds: null,
        ...row,
      })
      .execute();
  }

  async function healthcheck(now = NOW): Promise<{ status: number; text: string; cacheControl: string | null }> {
    const app = testApp(database, { now, health: () => checkHealth(database.db, now) });
    const response = await app.request('/healthcheck');
    return { status: response.status, text: await response.text(), cacheControl: response.headers.get('cache-control') };
  }

  it('is 503 until a collector has reported', async () => {
    expect(await healthcheck()).toMatchObject({ status: 503, text: 'no collector has reported yet' });
  });

  it('is OK while the collector reports within its interval', async () => {
    await report({ id: 'collector@a', updated_at: NOW - 5 });
    expect(await healthcheck()).toEqual({ status: 200, text: 'OK', cacheControl: 'no-store' });
    // Right at the limit it still counts as reporting.
    expect(await healthcheck(NOW - 5 + COLLECTOR_SILENCE_LIMIT)).toMatchObject({ status: 200, text: 'OK' });
  });

  it('is 503 "silent" once the collector has not reported for longer than the limit', async () => {
    await report({ id: 'collector@a', updated_at: NOW - COLLECTOR_SILENCE_LIMIT - 12 });
    const response = await healthcheck();
    expect(response).toMatchObject({ status: 503, cacheControl: 'no-store' });
    expect(response.text).toBe(`collector collector@a silent for ${COLLECTOR_SILENCE_LIMIT + 12} s`);
  });

  it('is 503 naming the broker when the collector reports it lost the broker', async () => {
    await report({ id: 'collector@a', updated_at: NOW - 1, broker_connected: 0, broker_url: 'amqp://guest:****@mq.example:5672//' });
    expect(await healthcheck()).toMatchObject({ status: 503, text: 'broker unavailable: amqp://guest:****@mq.example:5672//' });
  });

  it('judges by the newest collector: a replaced collector left behind does not count', async () => {
    await report({ id: 'collector@old', updated_at: NOW - 3_600, broker_connected: 0 });
    await report({ id: 'collector@new', updated_at: NOW - 2 });
    expect(await healthcheck()).toMatchObject({ status: 200, text: 'OK' });
  });

  it('is 503 naming the database when it cannot be read', async () => {
    const closed = await openTestDatabase('sqlite');
    await closed.close();
    try {
      const app = testApp(closed, { now: NOW, health: () => checkHealth(closed.db, NOW) });
      const response = await app.request('/healthcheck');
      expect(response.status).toBe(503);
      expect(await response.text()).toMatch(/^database unavailable: /);
    } finally {
      await closed.drop().catch(() => undefined);
    }
  });
});

describe('checkHealth', () => {
  it('gives up on a database that never answers, after its timeout', async () => {
    // A pool that never hands out a connection: what a frozen server or a full pool looks like.
    const pool: MysqlPool = { getConnection: () => undefined, end: (callback) => callback(null) };
    const db = new Kysely<Database>({ dialect: new MysqlDialect({ pool }) });
    const started = Date.now();
    const report = await checkHealth(db, 0, undefined, { timeoutMs: 300 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(300 + LATE_MS);
    expect(report).toEqual({ ok: false, problems: ['database unavailable: no answer within 0.3 s'] });
  });

  it('reports the in-process collector: broker lost, database writes failing, writes stopped', async () => {
    const database = await openTestDatabase('sqlite');
    const NOW = 1_800_000_000;
    try {
      const collector = (brokerConnected: boolean, databaseError: string | null, lastFlushAt: number | null = NOW - 4) => ({
        health: () => ({ brokerConnected, databaseError, lastFlushAt }),
        brokerDisplay: 'redis://broker.example:6379/0',
      });
      expect(await checkHealth(database.db, NOW, collector(true, null))).toEqual({ ok: true, problems: [] });
      // Not flushed yet (just started): nothing to judge by.
      expect(await checkHealth(database.db, NOW, collector(true, null, null))).toEqual({ ok: true, problems: [] });
      expect(await checkHealth(database.db, NOW, collector(false, 'disk full'))).toEqual({
        ok: false,
        problems: ['broker unavailable: redis://broker.example:6379/0', 'database writes failing: disk full'],
      });
      // A flush that never returns leaves no error behind: only its silence tells.
      expect(await checkHealth(database.db, NOW, collector(true, null, NOW - COLLECTOR_SILENCE_LIMIT - 1))).toEqual({
        ok: false,
        problems: [`collector has not written for ${COLLECTOR_SILENCE_LIMIT + 1} s`],
      });
      expect(await checkHealth(database.db, NOW, collector(true, null, NOW - COLLECTOR_SILENCE_LIMIT))).toEqual({ ok: true, problems: [] });
    } finally {
      await database.drop();
    }
  });
});
