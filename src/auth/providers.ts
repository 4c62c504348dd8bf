// OAuth2 authorization-code sign-in with Google, GitHub, GitLab and Okta:
// where to send the user, how to turn the code into a token (with PKCE
// where the provider supports it), and which verified email the provider
// vouches for. Uses fetch only, so it runs on Node and in the Worker.

export type ProviderName = 'google' | 'github' | 'gitlab' | 'okta';

export interface ProviderSettings {
  name: ProviderName;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** GitHub/GitLab host or URL; Okta authorization server URL; Google endpoints host override. */
  githubDomain: string;
  gitlabDomain: string;
  gitlabGroups: string[];
  gitlabMinAccessLevel: number;
  oktaBaseUrl: string;
  googleBase: string;
}

/** Flower's class names map onto the provider names. */
const ALIASES: Record<string, ProviderName> = {
  google: 'google',
  'flower.views.auth.googleauth2loginhandler': 'google',
  github: 'github',
  'flower.views.auth.githubloginhandler': 'github',
  gitlab: 'gitlab',
  'flower.views.auth.gitlabloginhandler': 'gitlab',
  okta: 'okta',
  'flower.views.auth.oktaloginhandler': 'okta',
};

export function providerName(value: string): ProviderName {
  const name = ALIASES[value.trim().toLowerCase()];
  if (!name) throw new Error(`--auth-provider: '${value}' is not one of google, github, gitlab, okta`);
  return name;
}

/** 'github.com' -> 'https://github.com'; a full URL is kept (self-hosted instances, test servers). */
function origin(hostOrUrl: string): string {
  const value = hostOrUrl.trim().replace(/\/+$/, '');
  return /^https?:\/\//i.test(value) ? value : `https://${value}`;
}

interface Endpoints {
  authorize: string;
  token: string;
  scope: string;
  pkce: boolean;
}

function endpoints(s: ProviderSettings): Endpoints {
  switch (s.name) {
    case 'google': {
      const base = s.googleBase ? origin(s.googleBase) : '';
      return {
        authorize: `${base || 'https://accounts.google.com'}/o/oauth2/v2/auth`,
        token: `${base || 'https://oauth2.googleapis.com'}/token`,
        scope: 'openid email profile',
        pkce: true,
      };
    }
    case 'github': {
      const web = origin(s.githubDomain);
      // GitHub's OAuth apps do not take PKCE everywhere (GitHub Enterprise): state only.
      return { authorize: `${web}/login/oauth/authorize`, token: `${web}/login/oauth/access_token`, scope: 'user:email', pkce: false };
    }
    case 'gitlab': {
      const web = origin(s.gitlabDomain);
      return { authorize: `${web}/oauth/authorize`, token: `${web}/oauth/token`, scope: 'read_api', pkce: true };
    }
    case 'okta': {
      const base = origin(s.oktaBaseUrl);
      return { authorize: `${base}/v1/authorize`, token: `${base}/v1/token`, scope: 'openid email', pkce: true };
    }
  }
}

export function authorizeUrl(s: ProviderSettings, state: string, challenge: string): string {
  const e = endpoints(s);
  const url = new URL(e.authorize);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', s.clientId);
  url.searchParams.set('redirect_uri', s.redirectUri);
  url.searchParams.set('scope', e.scope);
  url.searchParams.set('state', state);
  if (e.pkce) {
    url.searchParams.set('code_challenge', challenge);
    url.searchParams.set('code_challenge_method', 'S256');
  }
  return url.toString();
}

export class SignInError extends Error {
  override name = 'SignInError';
}

async function json(response: Response, what: string): Promise<unknown> {
  if (!response.ok) throw new SignInError(`${what} answered ${response.status}`);
  try {
    return (await response.json()) as unknown;
  } catch {
    throw new SignInError(`${what} did not answer JSON`);
  }
}

const TIMEOUT = () => AbortSignal.timeout(10_000);

export async function exchangeCode(s: ProviderSettings, code: string, verifier: string): Promise<string> {
  const e = endpoints(s);
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: s.redirectUri,
    client_id: s.clientId,
    client_secret: s.clientSecret,
  });
  if (e.pkce) form.set('code_verifier', verifier);
  const response = await fetch(e.token, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    body: form,
    signal: TIMEOUT(),
  });
  const body = (await json(response, 'the token endpoint')) as { access_token?: unknown; error?: unknown };
  if (typeof body.access_token !== 'string')
    throw new SignInError(`the token endpoint refused the code (${String(body.error ?? 'no access_token')})`);
  return body.access_token;
}

async function get(url: string, token: string, what: string): Promise<unknown> {
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', 'user-agent': 'stalk' },
    signal: TIMEOUT(),
  });
  return json(response, what);
}

/**
 * The verified emails the provider vouches for (best first). Unverified
 * addresses are never returned: an email nobody proved owning cannot sign in.
 * GitLab also checks group membership when groups are configured.
 */
export async function verifiedEmails(s: ProviderSettings, token: string): Promise<string[]> {
  switch (s.name) {
    case 'google': {
      const base = s.googleBase ? origin(s.googleBase) : 'https://openidconnect.googleapis.com';
      const info = (await get(`${base}/v1/userinfo`, token, 'Google userinfo')) as { email?: unknown; email_verified?: unknown };
      return typeof info.email === 'string' && info.email_verified === true ? [info.email] : [];
    }
    case 'okta': {
      const info = (await get(`${origin(s.oktaBaseUrl)}/v1/userinfo`, token, 'Okta userinfo')) as {
        email?: unknown;
        email_verified?: unknown;
      };
      return typeof info.email === 'string' && info.email_verified === true ? [info.email] : [];
    }
    case 'github': {
      const web = origin(s.githubDomain);
      const api = /^https:\/\/github\.com$/i.test(web) ? 'https://api.github.com' : `${web}/api/v3`;
      const emails = await get(`${api}/user/emails`, token, 'GitHub emails');
      if (!Array.isArray(emails))
        throw new SignInError('GitHub emails: not a list (does the app have the "Email addresses: read" permission?)');
      return (emails as { email?: unknown; verified?: unknown; primary?: unknown }[])
        .filter((e) => typeof e.email === 'string' && e.verified === true)
        .sort((a, b) => Number(b.primary === true) - Number(a.primary === true))
        .map((e) => e.email as string);
    }
    case 'gitlab': {
      const web = origin(s.gitlabDomain);
      const user = (await get(`${web}/api/v4/user`, token, 'GitLab user')) as { email?: unknown; confirmed_at?: unknown; state?: unknown };
      if (typeof user.email !== 'string' || !user.confirmed_at || (user.state !== undefined && user.state !== 'active')) return [];
      if (s.gitlabGroups.length > 0 && !(await inGitLabGroups(s, web, token))) return [];
      return [user.email];
    }
  }
}

/** Every page of the user's groups (Flower read only the first). */
async function inGitLabGroups(s: ProviderSettings, web: string, token: string): Promise<boolean> {
  for (let page = 1; page <= 50; page++) {
    const groups = await get(
      `${web}/api/v4/groups?min_access_level=${s.gitlabMinAccessLevel}&per_page=100&page=${page}`,
      token,
      'GitLab groups',
    );
    if (!Array.isArray(groups) || groups.length === 0) return false;
    if ((groups as { full_path?: unknown }[]).some((g) => typeof g.full_path === 'string' && s.gitlabGroups.includes(g.full_path)))
      return true;
    if (groups.length < 100) return false;
  }
  return false;
}
