// Key-value tables (class kv): a key as the row header, its value beside it.

import type { Child } from 'hono/jsx';
import { display } from '../../src/shared/inspect';

/** A table of <KvRow>s; `scroll` lets a wide one scroll sideways on a phone. */
export function KvTable({ caption, scroll = false, children }: { caption?: string | undefined; scroll?: boolean; children?: Child }) {
  const table = (
    <table class="kv">
      {caption ? <caption>{caption}</caption> : null}
      <tbody>{children}</tbody>
    </table>
  );
  return scroll ? <div class="scroll">{table}</div> : table;
}

export function KvRow({ label, children }: { label: string; children?: Child }) {
  return (
    <tr>
      <th scope="row">{label}</th>
      <td>{children}</td>
    </tr>
  );
}

/** Data (inspect replies) as a key-value table, sorted by key, each value as code. */
export function KeyValues({ data, skip = [], caption }: { data: Record<string, unknown> | undefined; skip?: string[]; caption?: string }) {
  const entries = Object.entries(data ?? {})
    .filter(([k, v]) => !skip.includes(k) && v !== null && v !== undefined)
    .sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return <p class="muted">Nothing reported.</p>;
  return (
    <KvTable caption={caption} scroll>
      {entries.map(([key, value]) => (
        <KvRow label={key}>
          <code>{display(value)}</code>
        </KvRow>
      ))}
    </KvTable>
  );
}
