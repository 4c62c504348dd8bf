import type { UiOptions } from '../../src/ui/context';
import { href } from '../components/format';
import { Page as Layout } from '../overrides';

/** A page that could not be shown (not found, a parameter it does not take): what was wrong, and a way back. */
export function ErrorPage({ title, message, ui }: { title: string; message: string; ui: UiOptions }) {
  return (
    <Layout ui={ui} title={title} section="none">
      <h1>{title}</h1>
      <p>{message}</p>
      <p>
        <a href={href(ui, '/')}>Back to the workers</a>
      </p>
    </Layout>
  );
}
