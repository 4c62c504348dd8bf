import type { WorkerSummary } from '../../src/shared/workers';
import type { WorkerInspect } from '../../src/shared/inspect';
import type { UiOptions } from '../../src/ui/context';
import { Page as Layout } from '../overrides';
import type { TaskCountsByName } from '../../src/ui/views';
import { WorkerTabs } from '../partials/worker-tabs';

export function WorkerPage({
  worker,
  counts,
  inspect,
  ui,
  readOnly,
}: {
  worker: WorkerSummary;
  counts: TaskCountsByName[];
  inspect: WorkerInspect | null;
  ui: UiOptions;
  readOnly: boolean;
}) {
  return (
    <Layout ui={ui} title={worker.hostname} section="workers">
      <h1>{worker.hostname}</h1>
      <WorkerTabs worker={worker} counts={counts} inspect={inspect} ui={ui} readOnly={readOnly} autoInspect={inspect === null} />
    </Layout>
  );
}
