import type { QueueView } from '../../src/ui/views';
import type { UiOptions } from '../../src/ui/context';
import { href, Time } from '../components/format';

function Cell({ value }: { value: number | null }) {
  return value === null ? <span class="muted">N/A</span> : <span>{value}</span>;
}

export function BrokerPanel({ queues, ui }: { queues: QueueView[]; ui: UiOptions }) {
  const poll = ui.refreshSeconds > 0 ? `every ${ui.refreshSeconds}s` : undefined;
  return (
    <section id="broker-panel" hx-get={href(ui, '/broker')} hx-trigger={poll} hx-swap="morph:outerHTML">
      {queues.length === 0 ? (
        <p class="muted">No queue data is available yet: the collector measures queue lengths while it runs.</p>
      ) : (
        <div class="scroll">
          <table class="grid" id="queues-table">
            <thead>
              <tr>
                <th scope="col">Queue</th>
                <th scope="col" class="num">
                  Messages
                </th>
                <th scope="col" class="num">
                  Ready
                </th>
                <th scope="col" class="num">
                  Unacked
                </th>
                <th scope="col" class="num">
                  Consumers
                </th>
                <th scope="col">Measured</th>
              </tr>
            </thead>
            <tbody>
              {queues.map((q) => (
                <tr data-queue={q.name}>
                  <td>{q.name}</td>
                  <td class="num">{q.messages}</td>
                  <td class="num">
                    <Cell value={q.ready} />
                  </td>
                  <td class="num">
                    <Cell value={q.unacked} />
                  </td>
                  <td class="num">
                    <Cell value={q.consumers} />
                  </td>
                  <td>
                    <Time at={q.measured_at} ui={{ ...ui, naturalTime: true }} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
