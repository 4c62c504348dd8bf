import type { WorkerSummary } from '../../src/shared/workers';
import type { UiOptions } from '../../src/ui/context';
import { Page as Layout } from '../overrides';
import { WorkersPanel } from '../partials/workers-panel';

export function WorkersPage({ workers, ui, generatedAt }: { workers: WorkerSummary[]; ui: UiOptions; generatedAt: number }) {
  return (
    <Layout ui={ui} title="Workers" section="workers">
      <h1>Cluster overview</h1>
      <WorkersPanel workers={workers} ui={ui} generatedAt={generatedAt} />
    </Layout>
  );
}
