import type { AuditEntry } from '../../src/ui/views';
import type { UiOptions } from '../../src/ui/context';
import { Clip, href, Time, ZoneLabel } from '../components/format';
import { Pager } from '../components/pager';
import { Page as Layout } from '../overrides';

export function AuditPage({ entries, ui, offset, limit }: { entries: AuditEntry[]; ui: UiOptions; offset: number; limit: number }) {
  return (
    <Layout ui={ui} title="Audit log" section="audit">
      <h1>Audit log</h1>
      <p class="muted">Every control and task action: who asked, what, with which arguments, when, and what came back.</p>
      <div class="scroll">
        <table class="grid" id="audit-table">
          <thead>
            <tr>
              <th scope="col">
                When <ZoneLabel />
              </th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">Arguments</th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {entries.length === 0 ? (
              <tr>
                <td colspan={6} class="empty">
                  No actions yet.
                </td>
              </tr>
            ) : (
              entries.map((e) => (
                <tr data-audit={String(e.id)} data-ok={e.ok ? 'true' : 'false'}>
                  <td>
                    <Time at={e.at} ui={ui} bare />
                  </td>
                  <td>{e.user}</td>
                  <td>{e.action}</td>
                  <td>{e.target ?? '—'}</td>
                  <td>
                    <Clip text={e.arguments} max={120} />
                  </td>
                  <td>
                    <span class={`badge ${e.ok ? 'ok' : 'bad'}`}>{e.ok ? 'ok' : 'failed'}</span> <Clip text={e.result} max={120} />
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </div>
      <Pager
        prev={offset > 0 ? { href: href(ui, `/audit?offset=${Math.max(0, offset - limit)}`), label: '‹ Newer' } : null}
        next={entries.length === limit ? { href: href(ui, `/audit?offset=${offset + limit}`), label: 'Older ›' } : null}
      />
    </Layout>
  );
}
