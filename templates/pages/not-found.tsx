import type { UiOptions } from '../../src/ui/context';
import { href } from '../components/format';
import { Page as Layout } from '../overrides';

export function NotFoundPage({ message, ui }: { message: string; ui: UiOptions }) {
  return (
    <Layout ui={ui} title="Not found" section="none">
      <h1>Not found</h1>
      <p>{message}</p>
      <p>
        <a href={href(ui, '/')}>Back to the workers</a>
      </p>
    </Layout>
  );
}
