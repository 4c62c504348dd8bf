import type { UiOptions } from '../../src/ui/context';
import { href } from '../components/format';
import { Page as Layout } from '../overrides';

const LABELS: Record<string, string> = { google: 'Google', github: 'GitHub', gitlab: 'GitLab', okta: 'Okta' };

/** Shown when sign-in fails or after signing out; the sign-in itself is a redirect to the provider. */
export function LoginPage({
  ui,
  provider,
  message,
  next,
}: {
  ui: UiOptions;
  provider: string | null;
  message: string | null;
  next: string;
}) {
  return (
    <Layout ui={ui} title="Sign in" section="none">
      <h1>Sign in</h1>
      {message ? (
        <p class="error" role="alert">
          {message}
        </p>
      ) : null}
      {provider ? (
        <p>
          <a class="button" href={href(ui, `/login?next=${encodeURIComponent(next)}&start=1`)}>
            {`Sign in with ${LABELS[provider] ?? provider}`}
          </a>
        </p>
      ) : (
        <p class="muted">This Stalk uses HTTP Basic authentication: your browser asks for the user and password.</p>
      )}
    </Layout>
  );
}
