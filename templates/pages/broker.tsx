import type { QueueView } from '../../src/ui/views';
import type { UiOptions } from '../../src/ui/context';
import { Page as Layout } from '../overrides';
import { BrokerPanel } from '../partials/broker-panel';

export function BrokerPage({ broker, queues, ui }: { broker: string | null; queues: QueueView[]; ui: UiOptions }) {
  return (
    <Layout ui={ui} title="Broker" section="broker">
      <h1>Message broker</h1>
      <p>
        <code>{broker ?? 'no collector has reported yet'}</code>
      </p>
      <BrokerPanel queues={queues} ui={ui} />
    </Layout>
  );
}
