// A collector stopped (SIGTERM) while its Redis reader still holds events in
// the disk spool hands them back and writes them before it exits: a rolling
// deploy after a slow database loses nothing the collector had read. The
// spool fills while this test holds SQLite's write lock; the stop comes the
// moment the lock goes, with most of the spool still on disk.

import { randomUUID } from 'node:crypto';
import Sqlite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT, envelope, RespPublisher, taskFinished, taskReceived, taskSent, taskStarted, WORKER } from '../../bench/celery-wire';
import type { OpenDatabase } from '../../worker-collector/store/db';
import { buildCollectorBundle, type CollectorBundle, startBundledCollector } from '../support/collector-bundle';
import { createTestDatabase, openTestConnection, type TestDatabase } from '../support/databases';
import { type ExitInfo, type ManagedProcess, printLogsOnFailure, stopAllProcesses } from '../support/processes';

/** This file's Redis database: the collector reads `/6.celeryev/*`, where no other test publishes. */
const REDIS_DB = 6;
const BROKER = `redis://127.0.0.1:6379/${REDIS_DB}`;
const TASKS = 12_000;

printLogsOnFailure();

describe('a collector stopped with events in its spool', () => {
  let target: TestDatabase;
  let database: OpenDatabase;
  let bundle: CollectorBundle;
  let collector: ManagedProcess;
  let exit: ExitInfo;
  const uuids: string[] = [];
  const prefix = `spoolstop.${randomUUID().slice(0, 8)}.`;

  beforeAll(async () => {
    target = await createTestDatabase('sqlite');
    bundle = await buildCollectorBundle();
    collector = startBundledCollector('collector', bundle, [
      ...['--broker', BROKER, '--db', target.url, '--no-enable-events', '--queue-poll-interval', '0'],
      ...['--max-task-age', '0', '--max-buffer-mb', '4', '--lease', 'off', '--log-level', 'debug'],
    ]);
    await collector.waitForOutput(/subscribed to \/6\.celeryev\/\*/, 30_000);
    database = await openTestConnection(target.url);

    const lock = new Sqlite(target.url);
    lock.pragma('busy_timeout = 10000');
    lock.exec('BEGIN IMMEDIATE');
    const publisher = await RespPublisher.open(BROKER, 4 * 1024 * 1024);
    const publish = (key: string, body: string, hostname: string) =>
      publisher.publish(`/${REDIS_DB}.celeryev/${key}`, envelope(body, key, hostname));
    for (let n = 0; n < TASKS; n++) {
      const uuid = randomUUID();
      uuids.push(uuid);
      let ok = publish('task.sent', taskSent(uuid, n, `${prefix}t${n % 3}`), CLIENT);
      const worker = [taskReceived(uuid, n, `${prefix}t${n % 3}`), taskStarted(uuid), taskFinished(uuid, n)].join(',');
      ok = publish('task.multi', `[${worker}]`, WORKER) && ok;
      if (!ok) await publisher.drain();
    }
    await publisher.settled();
    await collector.waitForOutput(/spooling events to disk/, 20_000);
    // Everything published has reached the reader (Redis answered every PUBLISH); give it a moment to spool the tail.
    await new Promise((resolve) => setTimeout(resolve, 500));
    lock.exec('COMMIT');
    lock.close();
    exit = await collector.stop(30_000);
  }, 120_000);

  afterAll(async () => {
    await stopAllProcesses();
    await database?.close();
    await target?.drop();
    bundle?.remove();
  });

  it('hands the spool back before it exits, and says so', () => {
    expect(collector.output()).toMatch(/stopping: handing back \d+ spooled messages first/);
    expect(collector.output()).not.toMatch(/spooled messages not read; they are lost/);
    expect(collector.output()).toMatch(/stopped; \d+ events taken in this run, all written/);
    expect(exit.code).toBe(0);
  });

  it('every task published before the stop is stored whole', async () => {
    const rows = await database.db.selectFrom('tasks').select(['uuid', 'state']).where('name', 'like', `${prefix}%`).execute();
    expect(rows.length).toBe(TASKS);
    const stored = new Set(rows.map((r) => r.uuid));
    expect(uuids.filter((u) => !stored.has(u)).slice(0, 5)).toEqual([]);
    expect(rows.filter((r) => r.state !== 'SUCCESS' && r.state !== 'FAILURE').slice(0, 5)).toEqual([]);
  });
});
