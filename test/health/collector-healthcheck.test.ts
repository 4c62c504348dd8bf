// The collector image's health check (worker-collector/healthcheck.ts, run by
// Docker's HEALTHCHECK) against a real collector: unhealthy before it has
// written anything, while its broker is unreachable, and once it falls
// silent; healthy while it reports with the broker connected.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../worker-collector/store/db';
import { type ManagedProcess, printLogsOnFailure, spawnManaged, stopAllProcesses } from '../support/processes';
import { REPO_ROOT, waitFor } from '../support/stalk';

const dir = mkdtempSync(join(tmpdir(), 'stalk-health-'));
const db = join(dir, 'stalk.db');

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('STALK_') || key === 'CELERY_BROKER_URL') delete env[key];
  return env;
}

async function healthcheck(): Promise<{ code: number | null; output: string }> {
  const proc = spawnManaged('healthcheck', process.execPath, ['--import', 'tsx', 'worker-collector/healthcheck.ts', '--db', db], {
    cwd: REPO_ROOT,
    env: cleanEnv(),
  });
  const exit = await proc.exited;
  return { code: exit.code, output: proc.output().trim() };
}

function collector(broker: string): ManagedProcess {
  return spawnManaged(
    'collector',
    process.execPath,
    ['--import', 'tsx', 'worker-collector/main.ts', '--broker', broker, '--db', db, '--no-enable-events', '--queue-poll-interval', '0'],
    {
      cwd: REPO_ROOT,
      env: cleanEnv(),
    },
  );
}

printLogsOnFailure();

afterAll(async () => {
  await stopAllProcesses();
  rmSync(dir, { recursive: true, force: true });
});

describe('the collector container health check', () => {
  it('is unhealthy before the collector made its database, without creating it', async () => {
    const first = await healthcheck();
    expect(first.code).toBe(1);
    expect(first.output).toMatch(/^unhealthy: .*stalk\.db does not exist yet$/);
    expect((await healthcheck()).output).toContain('does not exist yet');
  }, 30_000);

  it('is unhealthy while the broker is unreachable, healthy once connected, unhealthy when silent', async () => {
    // Nothing listens on port 1: the collector runs, reports, and says the broker is down.
    const down = collector('redis://127.0.0.1:1/0');
    await down.waitForOutput(/database ready/, 30_000);
    const unreachable = await waitFor(
      async () => {
        const result = await healthcheck();
        return result.output.includes('not connected to the broker') ? result : null;
      },
      20_000,
      'the broker reported down',
    );
    expect(unreachable.code).toBe(1);
    expect(unreachable.output).toMatch(/^unhealthy: collector@\S+ is not connected to the broker redis:\/\/127\.0\.0\.1:1\/0$/);
    await down.stop();

    const up = collector('redis://localhost:6379/8');
    await up.waitForOutput(/subscribed to/, 30_000);
    const healthy = await waitFor(
      async () => {
        const result = await healthcheck();
        return result.code === 0 ? result : null;
      },
      20_000,
      'healthy',
    );
    expect(healthy.output).toMatch(/^healthy: collector@\S+ reported [\d.]+ s ago, broker connected$/);
    await up.stop();

    // Stopped a minute ago, as far as the row says.
    const database = await openDatabase(db);
    await database.db
      .updateTable('collector_status')
      .set({ updated_at: Date.now() / 1000 - 60 })
      .execute();
    await database.close();
    const silent = await healthcheck();
    expect(silent.code).toBe(1);
    expect(silent.output).toMatch(/^unhealthy: collector@\S+ silent for 6\d s$/);
  }, 90_000);
});
