// A deployment's own layout (--template-path DIR/layout.js) replaces the built-in one.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Layout } from '../../templates/layouts/base';
import { useLayout } from '../../templates/overrides';
import { testApp } from '../support/app';
import { openTestDatabase } from '../support/databases';

describe('template overrides', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase('sqlite');
  });
  afterAll(async () => {
    useLayout(Layout);
    await database?.drop();
  });

  it('renders every page through a layout written in plain JavaScript', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stalk-templates-'));
    writeFileSync(
      join(dir, 'layout.js'),
      `import { html } from 'hono/html';
export default function Layout({ title, children }) {
  return html\`<!doctype html><html><head><title>\${title} · ACME ops</title></head><body class="acme">\${children}</body></html>\`;
}
`,
    );
    const module = (await import(pathToFileURL(join(dir, 'layout.js')).href)) as { default: Parameters<typeof useLayout>[0] };
    useLayout(module.default);
    const app = testApp(database);
    const html = await (await app.request('/tasks')).text();
    expect(html).toContain('<title>Tasks · ACME ops</title>');
    expect(html).toContain('<body class="acme">');
    expect(html).toContain('id="tasks-panel"');
    // Escaping still applies inside a custom layout.
    const missing = await (await app.request('/worker/%3Cb%3Ex')).text();
    expect(missing).toContain('&lt;b&gt;x');
  });
});
