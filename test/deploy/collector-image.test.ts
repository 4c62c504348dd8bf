// The collector image (worker-collector/Dockerfile) installs only the
// packages listed in worker-collector/image-packages.json. No Docker engine
// runs here, so this checks what the image depends on instead: the bundles
// it ships import nothing outside that list (so the list cannot go stale),
// every listed package is pinned in package.json and really imported, and
// the base image is a pinned, supported Node LTS.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnManaged } from '../support/processes';
import { REPO_ROOT } from '../support/stalk';

/** The bundles the image copies from the build stage (dist/node.js is removed there). */
const IMAGE_ENTRIES = ['collector.js', 'healthcheck.js', 'migrate.js', 'metrics-snapshot-thread.js'];

interface Metafile {
  outputs: Record<string, { imports: { path: string; external?: boolean }[] }>;
}

const list = JSON.parse(readFileSync(join(REPO_ROOT, 'worker-collector/image-packages.json'), 'utf8')) as {
  packages: string[];
  sqlite: string[];
};
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const dockerfile = readFileSync(join(REPO_ROOT, 'worker-collector/Dockerfile'), 'utf8');
const out = mkdtempSync(join(tmpdir(), 'stalk-image-'));
let imports = new Map<string, Set<string>>();

/** 'ioredis', '@scope/name' and 'hono/cookie' -> the package name. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

beforeAll(async () => {
  const meta = join(out, 'meta.json');
  const build = spawnManaged('build.mjs', process.execPath, ['build.mjs', '--outdir', out, '--metafile', meta], { cwd: REPO_ROOT });
  const exit = await build.exited;
  if (exit.code !== 0) throw new Error(`build.mjs failed:\n${build.output()}`);
  const metafile = JSON.parse(readFileSync(meta, 'utf8')) as Metafile;
  imports = new Map();
  for (const [file, output] of Object.entries(metafile.outputs)) {
    const entry = IMAGE_ENTRIES.find((e) => file.endsWith(`/${e}`));
    if (!entry) continue;
    const packages = new Set(
      output.imports
        .filter((i) => i.external && !i.path.startsWith('node:') && !builtinModules.includes(i.path))
        .map((i) => packageOf(i.path)),
    );
    imports.set(entry, packages);
  }
}, 60_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the collector image', () => {
  it('ships bundles that import only the listed packages, and every listed package is used', () => {
    expect([...imports.keys()].sort()).toEqual([...IMAGE_ENTRIES].sort());
    const used = new Set([...imports.values()].flatMap((s) => [...s]));
    const allowed = new Set([...list.packages, ...list.sqlite]);
    for (const name of used) expect(allowed.has(name), `${name} is imported by the collector but not installed in the image`).toBe(true);
    for (const name of allowed) expect(used.has(name), `${name} is installed in the image but never imported`).toBe(true);
  });

  it('leaves out what the collector does not use', () => {
    const listed = [...list.packages, ...list.sqlite];
    for (const name of [
      'tsx',
      'hono',
      '@hono/node-server',
      '@planetscale/database',
      'kysely-planetscale',
      '@upstash/redis',
      // prom-client is in: the metrics snapshot thread renders /metrics for the Worker.
      'jose',
      'wrangler',
    ]) {
      expect(listed, name).not.toContain(name);
    }
    // SQLite only on request.
    expect(list.packages).not.toContain('better-sqlite3');
    expect(dockerfile).toMatch(/ARG SQLITE=0/);
  });

  it('installs pinned versions from package.json', () => {
    for (const name of [...list.packages, ...list.sqlite]) expect(pkg.dependencies[name], name).toMatch(/^\d+\.\d+\.\d+$/);
    expect(dockerfile).toContain('COPY package.json package-lock.json worker-collector/image-packages.json ./');
  });

  it('runs on a pinned, supported Node LTS and checks its health with dist/healthcheck.js', () => {
    const image = /^ARG NODE_IMAGE=node:(\d+)\.(\d+)\.(\d+)-[a-z]+-slim$/m.exec(dockerfile);
    expect(image, 'NODE_IMAGE pinned to a full version').not.toBeNull();
    const major = Number(image![1]);
    // Even majors are the LTS lines; 20 reached its end of life in April 2026.
    expect(major % 2).toBe(0);
    expect(major).toBeGreaterThanOrEqual(22);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*CMD \["node", "dist\/healthcheck\.js"\]$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
  });
});
