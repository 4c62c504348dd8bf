// The two programs meet only in src/shared: the collector (worker-collector/)
// imports nothing of the web app but src/shared, src/options.ts and the
// /metrics renderer (src/metrics/, src/queries/metrics.ts, which in turn
// import nothing of the web app but src/shared), the
// templates nothing but src/ui and src/shared, src/shared nothing outside
// itself (and no node: or cloudflare: module: the Worker runs it), and no
// import circle exists anywhere. Like the route walk (test/security/
// route-walk.test.ts), this reads the real thing, TypeScript's own parse of
// every source file, so a file or import added later is checked too; the
// checks are first run on a small bad graph, so they can fail.

import { describe, expect, it } from 'vitest';
import {
  type BoundaryRule,
  boundaryViolations,
  type ImportGraph,
  importCycles,
  importSpecifiers,
  readImportGraph,
} from '../support/import-graph';
import { REPO_ROOT } from '../support/stalk';

const RULES: BoundaryRule[] = [
  // And the /metrics renderer (itself built on src/shared only): the collector renders /metrics for the Worker with it
  // (worker-collector/metrics-snapshot.ts), byte for byte as a scrape would.
  { from: 'worker-collector/', into: 'src/', allowed: ['src/shared/', 'src/options.ts', 'src/metrics/', 'src/queries/metrics.ts'] },
  { from: 'src/metrics/', into: 'src/', allowed: ['src/metrics/', 'src/shared/', 'src/queries/metrics.ts'] },
  { from: 'src/queries/metrics.ts', into: 'src/', allowed: ['src/shared/'] },
  { from: 'templates/', into: 'src/', allowed: ['src/ui/', 'src/shared/'] },
  { from: 'src/shared/', into: '', allowed: ['src/shared/'] },
  { from: 'src/ui/', into: '', allowed: ['src/ui/', 'src/shared/'] },
  // The web app runs the collector only from its Node entry (local all-in-one mode).
  { from: 'src/', except: ['src/node.ts'], into: 'worker-collector/', allowed: [] },
  { from: 'templates/', into: 'worker-collector/', allowed: [] },
];

/** Files allowed one computed import(), and why: it loads a file of the user's, not a source. */
const COMPUTED_IMPORTS: Record<string, string> = { 'src/node.ts': "--template-path's layout.js" };

const graphOf = (edges: Record<string, string[]>): ImportGraph => new Map(Object.entries(edges).map(([from, to]) => [from, new Set(to)]));

describe('the import checks, on graphs made to fail them', () => {
  it('read every kind of import, type-only and dynamic ones included', () => {
    const text = [
      "import a from './a';",
      "import type { B } from './b';",
      "import { type C, d } from '../c';",
      "import './side-effect';",
      "export { e } from './e';",
      "export type { F } from './f';",
      "export * from './g';",
      "import h = require('./h');",
      "const i = await import('./i');",
      "let j: import('./j').J;",
      "import { k } from 'kysely';",
      'const l = await import(name);',
      'const text = "import m from \'./m\'";',
    ].join('\n');
    expect(importSpecifiers('x.ts', text)).toEqual([
      './a',
      './b',
      '../c',
      './side-effect',
      './e',
      './f',
      './g',
      './h',
      './i',
      './j',
      'kysely',
      '<computed import()>',
    ]);
    expect(importSpecifiers('x.tsx', "import { P } from './p';\nexport const Q = () => <P />;")).toEqual(['./p']);
  });

  it('name each import across a boundary', () => {
    const graph = graphOf({
      'worker-collector/collector.ts': [
        'src/queries/workers.ts',
        'src/shared/workers.ts',
        'src/options.ts',
        'worker-collector/fold/batch.ts',
      ],
      'templates/pages/worker.tsx': ['src/routes/api.ts', 'src/ui/views.ts', 'templates/components/kv.tsx'],
      'src/shared/hot-state.ts': ['src/queries/workers.ts', 'src/shared/workers.ts'],
      'src/routes/api.ts': ['worker-collector/fold/batch.ts'],
      'src/node.ts': ['worker-collector/setup.ts'],
    });
    expect(boundaryViolations(graph, RULES)).toEqual([
      'src/routes/api.ts -> worker-collector/fold/batch.ts',
      'src/shared/hot-state.ts -> src/queries/workers.ts',
      'templates/pages/worker.tsx -> src/routes/api.ts',
      'worker-collector/collector.ts -> src/queries/workers.ts',
    ]);
  });

  it('report each circle as a path, once per tangle, self-imports included', () => {
    const graph = graphOf({
      'a.ts': ['b.ts'],
      'b.ts': ['c.ts', 'd.ts'],
      'c.ts': ['a.ts', 'b.ts'],
      'd.ts': [],
      'e.ts': ['e.ts'],
      'f.ts': ['a.ts'],
    });
    expect(importCycles(graph)).toEqual(
      expect.arrayContaining([
        ['a.ts', 'b.ts', 'c.ts', 'a.ts'],
        ['e.ts', 'e.ts'],
      ]),
    );
    expect(importCycles(graph)).toHaveLength(2);
    expect(importCycles(graphOf({ 'a.ts': ['b.ts'], 'b.ts': ['c.ts'], 'c.ts': [] }))).toEqual([]);
  });
});

describe('the sources', () => {
  const { graph, packages, unresolved } = readImportGraph(REPO_ROOT, ['src', 'templates', 'worker-collector']);

  it('are all read, and every relative import names a source file', () => {
    // Not a tautology: the graph holds the entries and the contract.
    for (const file of ['src/node.ts', 'src/worker.ts', 'worker-collector/main.ts', 'src/shared/control.ts', 'templates/pages/workers.tsx'])
      expect(graph.has(file), file).toBe(true);
    expect(graph.get('src/app.tsx')?.has('src/routes/api.ts')).toBe(true);
    expect(unresolved.filter((u) => !(u.specifier === '<computed import()>' && u.from in COMPUTED_IMPORTS))).toEqual([]);
  });

  it('cross no boundary', () => {
    expect(boundaryViolations(graph, RULES)).toEqual([]);
  });

  it('import no node: or cloudflare: module in src/shared (the Worker and the collector both run it)', () => {
    const runtime = [...packages].flatMap(([file, names]) =>
      file.startsWith('src/shared/')
        ? [...names].filter((name) => /^(node|cloudflare):/.test(name)).map((name) => `${file} -> ${name}`)
        : [],
    );
    expect(runtime).toEqual([]);
  });

  it('have no import circle', () => {
    expect(importCycles(graph).map((cycle) => cycle.join(' -> '))).toEqual([]);
  });
});
