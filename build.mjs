// Bundles the Node entries into dist/ (plain JavaScript: no TypeScript loader
// at run time, which saves memory and start-up time). npm start and npm run
// collector (and npm run migrate) run this first; it takes a fraction of a second.
//
//   node build.mjs [--outdir DIR] [--metafile FILE]
//
// Packages stay external (imported from node_modules at run time); the
// metafile lists them per entry, which the collector image's test reads.
// It also copies htmx and idiomorph from node_modules into public/static/vendor/
// (scripts/vendor-assets.mjs).
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { vendorAssets } from './scripts/vendor-assets.mjs';

const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' }, metafile: { type: 'string' } } });

vendorAssets();

const result = await build({
  entryPoints: {
    node: 'src/node.ts',
    collector: 'worker-collector/main.ts',
    'store-thread': 'worker-collector/store/thread-entry.ts',
    'redis-reader': 'worker-collector/transport/redis-reader.ts',
    'metrics-snapshot-thread': 'worker-collector/metrics-snapshot-thread.ts',
    healthcheck: 'worker-collector/healthcheck.ts',
    migrate: 'worker-collector/migrate.ts',
  },
  outdir: values.outdir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  sourcemap: true,
  metafile: values.metafile !== undefined,
  logLevel: 'warning',
  jsx: 'automatic',
  jsxImportSource: 'hono/jsx',
});
if (values.metafile) writeFileSync(values.metafile, JSON.stringify(result.metafile));
