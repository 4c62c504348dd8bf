// Copies the browser scripts Stalk takes from npm (htmx and its idiomorph
// extension, pinned in package.json) into public/static/vendor/, where Node
// (src/node.ts) and the Worker's assets ([assets] in wrangler.toml) serve
// them. The files are copied as published, never edited, under names that
// carry the package's version (src/ui/vendor.ts names them for the pages).
// build.mjs, `npm run dev`, wrangler's [build] and the test setup run this.
//
//   node scripts/vendor-assets.mjs

import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const VENDOR_DIR = join(ROOT, 'public', 'static', 'vendor');

/** What is copied: the package, its file, and the served name's stem (the version is added). */
const VENDORED = [
  { pkg: 'htmx.org', file: 'dist/htmx.min.js', stem: 'htmx' },
  { pkg: 'idiomorph', file: 'dist/idiomorph-ext.min.js', stem: 'idiomorph-ext' },
];

export function vendorAssets() {
  mkdirSync(VENDOR_DIR, { recursive: true });
  const names = new Set();
  for (const { pkg, file, stem } of VENDORED) {
    const manifest = join(ROOT, 'node_modules', pkg, 'package.json');
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
    const name = `${stem}-${version}.min.js`;
    copyFileSync(join(dirname(manifest), file), join(VENDOR_DIR, name));
    names.add(name);
  }
  // A version left behind by an upgrade is not served any more.
  for (const name of readdirSync(VENDOR_DIR)) if (!names.has(name)) rmSync(join(VENDOR_DIR, name));
  return [...names];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) vendorAssets();
