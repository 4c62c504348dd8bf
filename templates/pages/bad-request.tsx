import type { UiOptions } from '../../src/ui/context';
import { href } from '../components/format';
import { Page as Layout } from '../overrides';

/** A page asked for with a parameter it does not take: what was wrong, and a way back. */
export function BadRequestPage({ message, ui }: { message: string; ui: UiOptions }) {
  return (
    <Layout ui={ui} title="Bad request" section="none">
      <h1>Bad request</h1>
      <p>{message}</p>
      <p>
        <a href={href(ui, '/')}>Back to the workers</a>
      </p>
    </Layout>
  );
}
