// A worker coming online is inspected so its page fills by itself. Forged
// worker-online events (anyone who can publish on the broker can send them)
// must not turn into a broadcast storm: newly online workers are inspected
// together, at most one round of eight broadcasts per two seconds, however
// many arrive; a real worker that comes online during the flood is still
// inspected.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSPECT_METHODS } from '../../worker-collector/control/executor';
import { type OpenDatabase, openDatabase } from '../../worker-collector/store/db';
import { startWorker, uniqueWorkerName } from '../support/celery';
import { type ManagedProcess, printLogsOnFailure, spawnManaged, stopAllProcesses } from '../support/processes';
import { REPO_ROOT, waitFor } from '../support/stalk';

/** A Redis database of this file's own: its pidbox channel carries only this collector's broadcasts. */
const DB = 13;
const BROKER = `redis://localhost:6379/${DB}`;
const FORGED = 2_000;

interface Broadcast {
  method: string;
  destination: string[] | null;
  at: number;
}

const broadcasts: Broadcast[] = [];
const listener = new Redis(BROKER, { lazyConnect: true });
const publisher = new Redis(BROKER, { lazyConnect: true });
const dir = mkdtempSync(join(tmpdir(), 'stalk-storm-'));
let collector: ManagedProcess;
let database: OpenDatabase;

function envelope(event: Record<string, unknown>): string {
  return JSON.stringify({
    body: Buffer.from(JSON.stringify(event)).toString('base64'),
    'content-encoding': 'utf-8',
    'content-type': 'application/json',
    headers: { hostname: event.hostname },
    properties: {
      delivery_mode: 1,
      delivery_info: { exchange: 'celeryev', routing_key: 'worker.online' },
      priority: 0,
      body_encoding: 'base64',
      delivery_tag: 'x',
    },
  });
}

printLogsOnFailure();

beforeAll(async () => {
  await Promise.all([listener.connect(), publisher.connect()]);
  await listener.subscribe(`/${DB}.celery.pidbox`);
  listener.on('message', (_channel: string, message: string) => {
    const body = JSON.parse(Buffer.from((JSON.parse(message) as { body: string }).body, 'base64').toString('utf8')) as {
      method: string;
      destination: string[] | null;
    };
    broadcasts.push({ method: body.method, destination: body.destination, at: Date.now() });
  });
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('STALK_') || key === 'CELERY_BROKER_URL') delete env[key];
  const db = join(dir, 'stalk.db');
  collector = spawnManaged(
    'collector',
    process.execPath,
    [
      '--import',
      'tsx',
      'worker-collector/main.ts',
      '--broker',
      BROKER,
      '--db',
      db,
      '--no-enable-events',
      '--inspect-timeout',
      '500',
      '--queue-poll-interval',
      '0',
    ],
    { cwd: REPO_ROOT, env },
  );
  await collector.waitForOutput(/subscribed to/, 30_000);
  database = await openDatabase(db);
}, 60_000);

afterAll(async () => {
  await stopAllProcesses();
  await database?.close();
  listener.disconnect();
  publisher.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('a flood of forged worker-online events', () => {
  it('costs at most eight inspect broadcasts per two seconds, and a real worker is still inspected', async () => {
    // The start-up round (everyone) is over before the flood.
    await waitFor(
      async () => broadcasts.filter((b) => b.destination === null).length >= INSPECT_METHODS.length,
      10_000,
      'the start-up inspect round',
    );
    const floodStart = Date.now();
    const pipeline = publisher.pipeline();
    for (let i = 0; i < FORGED; i++) {
      const hostname = `forged-${i}@nowhere`;
      pipeline.publish(
        `/${DB}.celeryev/worker.online`,
        envelope({
          type: 'worker-online',
          hostname,
          timestamp: Date.now() / 1000,
          clock: i,
          freq: 2,
          sw_ident: 'py-celery',
          sw_ver: '5',
          sw_sys: 'Linux',
          pid: 1,
        }),
      );
    }
    await pipeline.exec();

    // A real worker comes online in the middle of it.
    const worker = await startWorker({ broker: BROKER, hostname: uniqueWorkerName('storm') });
    const inspected = await waitFor(
      async () =>
        (await database.db.selectFrom('worker_inspect').select('hostname').where('hostname', '=', worker.hostname).executeTakeFirst()) !==
        undefined,
      20_000,
      'the real worker inspected',
    );
    expect(inspected).toBe(true);
    const elapsed = (Date.now() - floodStart) / 1000;

    const inspects = broadcasts.filter((b) => b.at >= floodStart && (INSPECT_METHODS as readonly string[]).includes(b.method));
    // Rounds happened (the flood was seen) but stayed bounded: 8 per 2 s, plus one round in flight.
    expect(inspects.length).toBeGreaterThanOrEqual(INSPECT_METHODS.length);
    expect(inspects.length).toBeLessThanOrEqual(INSPECT_METHODS.length * (Math.ceil(elapsed / 2) + 1));
    // 2,000 names never travel in one broadcast: a big round asks everyone instead.
    for (const b of inspects) expect(b.destination === null || b.destination.length <= 33).toBe(true);
    expect(inspects.some((b) => b.destination === null)).toBe(true);
    await worker.stop();
  }, 60_000);
});
