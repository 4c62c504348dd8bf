// One control action: a small form that htmx posts, with the collector's
// answer shown inline (in the form, or in its row's shared results area, so
// an answer never pushes the other buttons aside). Destructive actions ask
// for confirmation first. A refused request (4xx/5xx) is shown there too, by
// public/static/stalk.js.

import type { Child } from 'hono/jsx';
import { mayPost, type UiOptions } from '../../src/ui/context';
import { href } from './format';

export function Action({
  ui,
  path,
  label,
  confirm,
  children,
  danger,
  off,
  results,
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
  /** The id of the results area this action answers in (see ActionResults); absent: its own <output>. */
  results?: string;
}) {
  // The server refuses it anyway (src/auth/middleware.ts); a reader is not shown what their role cannot do.
  if (!mayPost(ui, path)) return null;
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
      hx-target={results ? `#${results}` : 'find output'}
      hx-swap={results ? 'innerHTML' : 'outerHTML'}
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
      {results ? null : <output></output>}
    </form>
  );
}

/** Below a row of actions: where their answers appear (kept by a live page's morph). */
export function ActionResults({ id }: { id: string }) {
  return <div class="action-results" id={id} aria-live="polite" data-keep></div>;
}
