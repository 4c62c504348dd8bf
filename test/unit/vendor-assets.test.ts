// htmx and idiomorph come from npm, copied unedited into public/static/vendor/
// under versioned names; the pages name those files (src/ui/vendor.ts).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VENDOR_DIR, vendorAssets } from '../../scripts/vendor-assets.mjs';
import { HTMX_SCRIPT, IDIOMORPH_SCRIPT } from '../../src/ui/vendor';
import { REPO_ROOT } from '../support/stalk';

function installed(pkg: string): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

describe('vendored browser scripts', () => {
  it('copies the installed htmx and idiomorph byte for byte, under the names the pages use', () => {
    const names = vendorAssets();
    expect(names.sort()).toEqual([`htmx-${installed('htmx.org')}.min.js`, `idiomorph-ext-${installed('idiomorph')}.min.js`]);
    expect(HTMX_SCRIPT).toBe(`/static/vendor/htmx-${installed('htmx.org')}.min.js`);
    expect(IDIOMORPH_SCRIPT).toBe(`/static/vendor/idiomorph-ext-${installed('idiomorph')}.min.js`);
    const pairs: [string, string][] = [
      [HTMX_SCRIPT, 'htmx.org/dist/htmx.min.js'],
      [IDIOMORPH_SCRIPT, 'idiomorph/dist/idiomorph-ext.min.js'],
    ];
    for (const [served, source] of pairs) {
      const copy = readFileSync(join(VENDOR_DIR, served.replace('/static/vendor/', '')));
      expect(copy.equals(readFileSync(join(REPO_ROOT, 'node_modules', source)))).toBe(true);
    }
  });

  it('pins both packages exactly in package.json', () => {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(manifest.dependencies['htmx.org']).toBe(installed('htmx.org'));
    expect(manifest.dependencies.idiomorph).toBe(installed('idiomorph'));
    expect(installed('htmx.org')).toMatch(/^2\.0\.\d+$/);
  });
});
