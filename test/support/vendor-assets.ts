// Vitest's global setup: the pages load htmx and idiomorph from
// public/static/vendor/, which the build fills from node_modules; tests start
// src/node.ts without the build, so the copy is made here.

import { vendorAssets } from '../../scripts/vendor-assets.mjs';

export default function setup(): void {
  vendorAssets();
}
