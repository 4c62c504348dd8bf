// One control action: a small form that htmx posts, with the collector's
// answer shown inline. Destructive actions ask for confirmation first.

import type { Child } from 'hono/jsx';
import type { UiOptions } from '../../src/ui/context';
import { href } from './format';

export function Action({
  ui,
  path,
  label,
  confirm,
  children,
  danger,
  off,
}: {
  ui: UiOptions;
  /** Under the app, e.g. /api/worker/pool/restart/w1@host (already encoded). */
  path: string;
  label: string;
  confirm?: string;
  children?: Child;
  danger?: boolean;
  /** Why the action cannot work now (an offline worker): rendered disabled, with this as its title. */
  off?: string | null | undefined;
}) {
  const button = (
    <button type="submit" class={danger ? 'danger' : undefined} disabled={off ? true : undefined} title={off ?? undefined}>
      {label}
    </button>
  );
  return (
    <form
      class="action"
      method="post"
      action={href(ui, path)}
      hx-post={href(ui, path)}
      hx-target="find output"
      hx-swap="outerHTML"
      hx-confirm={confirm}
    >
      {ui.csrf ? <input type="hidden" name="_csrf" value={ui.csrf} /> : null}
      {off ? (
        <fieldset class="off" disabled title={off}>
          {children}
          {button}
        </fieldset>
      ) : (
        <>
          {children}
          {button}
        </>
      )}
      <output></output>
    </form>
  );
}
