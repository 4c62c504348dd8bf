// Locally, Stalk listens on loopback by default. Listening on any other
// address without sign-in would hand worker control to whoever reaches the
// port, so that needs --read-only or an explicit --allow-anonymous-control.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { authSettings, exposureProblem, isLoopback } from '../../src/auth/config';
import { NO_AUTH_INPUT } from '../support/app';
import { spawnManaged, stopAllProcesses } from '../support/processes';
import { REPO_ROOT } from '../support/stalk';

const open = authSettings(NO_AUTH_INPUT);
const basic = authSettings({ ...NO_AUTH_INPUT, basicAuth: 'admin:pw' });
const neither = { readOnly: false, allowAnonymousControl: false };

describe('which addresses count as this machine only', () => {
  it.each(['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1'])('%s is loopback', (address) => {
    expect(isLoopback(address)).toBe(true);
  });
  it.each(['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', '128.0.0.1', '127.0.0.1.evil.example', 'example.com', '::ffff:10.0.0.1', ''])(
    '%s is not',
    (address) => {
      expect(isLoopback(address)).toBe(false);
    },
  );
});

describe('listening beyond loopback', () => {
  it('without auth needs --read-only or --allow-anonymous-control', () => {
    expect(exposureProblem('0.0.0.0', open, neither)).toMatch(
      /^--address 0\.0\.0\.0 without authentication .*--read-only.*--allow-anonymous-control/,
    );
    expect(exposureProblem('0.0.0.0', open, { ...neither, readOnly: true })).toBeNull();
    expect(exposureProblem('0.0.0.0', open, { ...neither, allowAnonymousControl: true })).toBeNull();
    expect(exposureProblem('0.0.0.0', basic, neither)).toBeNull();
    expect(exposureProblem('127.0.0.1', open, neither)).toBeNull();
  });
});

describe('npm start on 0.0.0.0', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stalk-exposure-'));
  afterAll(async () => {
    await stopAllProcesses();
    rmSync(dir, { recursive: true, force: true });
  });
  const start = (...extra: string[]) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const key of Object.keys(env)) if (key.startsWith('STALK_') || key.startsWith('FLOWER_')) delete env[key];
    return spawnManaged(
      'stalk',
      process.execPath,
      ['--import', 'tsx', 'src/node.ts', '--no-collector', '--db', join(dir, 'stalk.db'), '--port', '0', '--address', '0.0.0.0', ...extra],
      {
        cwd: REPO_ROOT,
        env,
      },
    );
  };

  it('refuses to start without auth, saying what to add', async () => {
    const proc = start();
    const exit = await proc.exited;
    expect(exit.code).toBe(2);
    expect(proc.output()).toContain('--address 0.0.0.0 without authentication would let anyone who reaches it control the workers');
  }, 30_000);

  it('starts with --read-only', async () => {
    const proc = start('--read-only');
    await proc.waitForOutput(/Stalk at http:\/\/0\.0\.0\.0:\d+\//, 30_000);
    expect(proc.exitInfo()).toBeNull();
    await proc.stop(5_000);
  }, 40_000);

  it('starts with --allow-anonymous-control, warning about it', async () => {
    const proc = start('--allow-anonymous-control');
    await proc.waitForOutput(/Stalk at http:\/\/0\.0\.0\.0:\d+\//, 30_000);
    expect(proc.output()).toContain('anyone who reaches this port can control the workers');
    await proc.stop(5_000);
  }, 40_000);
});
