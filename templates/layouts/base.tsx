// The page shell: head, navigation, main. Static assets live under /static.

import type { Child } from 'hono/jsx';
import type { UiOptions } from '../../src/ui/context';
import { HTMX_SCRIPT, IDIOMORPH_SCRIPT } from '../../src/ui/vendor';
import { href } from '../components/format';

export type Section = 'workers' | 'tasks' | 'stats' | 'broker' | 'audit' | 'alerts' | 'none';

const NAV: { section: Section; path: string; label: string }[] = [
  { section: 'workers', path: '/workers', label: 'Workers' },
  { section: 'tasks', path: '/tasks', label: 'Tasks' },
  { section: 'stats', path: '/stats', label: 'Stats' },
  { section: 'broker', path: '/broker', label: 'Broker' },
  { section: 'audit', path: '/audit', label: 'Audit' },
  { section: 'alerts', path: '/alerts', label: 'Alerts' },
];

export function Layout({ ui, title, section, children }: { ui: UiOptions; title: string; section: Section; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · Stalk`}</title>
        <meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false}' />
        <link rel="icon" type="image/svg+xml" href={href(ui, '/static/favicon.svg')} />
        <link rel="stylesheet" href={href(ui, '/static/stalk.css')} />
        {/* Not deferred: it puts the chosen theme on <html> before the first paint. */}
        <script src={href(ui, '/static/theme.js')}></script>
        <script src={href(ui, HTMX_SCRIPT)} defer></script>
        <script src={href(ui, IDIOMORPH_SCRIPT)} defer></script>
        <script src={href(ui, '/static/stalk.js')} defer></script>
      </head>
      <body hx-ext="morph" hx-headers={ui.csrf ? JSON.stringify({ 'X-CSRF-Token': ui.csrf }) : undefined}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href={href(ui, '/')}>
            Stalk
          </a>
          <nav aria-label="Main">
            {NAV.map((item) => (
              <a href={href(ui, item.path)} aria-current={item.section === section ? 'page' : undefined}>
                {item.label}
              </a>
            ))}
          </nav>
          {/* Shown and labelled by static/stalk.js, which does the switching; without it times stay in UTC. */}
          <button type="button" class="link zone-toggle" id="zone-toggle" hidden>
            Times: UTC
          </button>
          {/* Shown by static/theme.js, which applies and remembers the choice; without it the system's theme applies. */}
          <label class="theme-toggle" hidden>
            Theme{' '}
            <select id="theme-select">
              <option value="system">System</option>
              <option value="light">Light</option>
              <option value="dark">Dark</option>
            </select>
          </label>
          {ui.user ? (
            <form class="signout" method="post" action={href(ui, '/logout')}>
              {ui.csrf ? <input type="hidden" name="_csrf" value={ui.csrf} /> : null}
              <span class="muted">{ui.user}</span> <button type="submit">Sign out</button>
            </form>
          ) : null}
        </header>
        <main id="main">{children}</main>
      </body>
    </html>
  );
}
