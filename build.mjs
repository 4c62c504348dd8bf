// Bundles the Node entries into dist/ (plain JavaScript: no TypeScript loader
// at run time, which saves memory and start-up time). npm start and npm run
// collector run this first (and npm run migrate); it takes a fraction of a second.
import { build } from 'esbuild';

await build({
  entryPoints: {
    node: 'src/node.ts',
    collector: 'worker-collector/main.ts',
    migrate: 'worker-collector/migrate.ts',
  },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
  jsx: 'automatic',
  jsxImportSource: 'hono/jsx',
});
