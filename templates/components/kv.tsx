import { display } from '../../src/shared/inspect';

/** A two-column table of keys and values, sorted by key. */
export function KeyValues({ data, skip = [], caption }: { data: Record<string, unknown> | undefined; skip?: string[]; caption?: string }) {
  const entries = Object.entries(data ?? {})
    .filter(([k, v]) => !skip.includes(k) && v !== null && v !== undefined)
    .sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return <p class="muted">Nothing reported.</p>;
  return (
    <div class="scroll">
    <table class="kv">
      {caption ? <caption>{caption}</caption> : null}
      <tbody>
        {entries.map(([key, value]) => (
          <tr>
            <th scope="row">{key}</th>
            <td>
              <code>{display(value)}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
    </div>
  );
}
