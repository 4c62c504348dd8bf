// Authentication settings, built once at each entry (Node options, Worker
// bindings) and checked there: a bad setting fails start-up with one line.

import { type BasicCredential, parseBasicAuthOption } from './basic';
import { type EmailRule, emailRule } from './email';
import { type ProviderSettings, providerName } from './providers';
import type { Role } from '../shared/roles';
import { randomToken, secretKey } from './tokens';

export interface AuthSettings {
  basic: BasicCredential[];
  /** Which OAuth emails may sign in (null without OAuth). */
  emails: EmailRule | null;
  /** OAuth emails that are operators, and admins (--auth-operators, --auth-admins); null: not set. */
  operators: EmailRule | null;
  admins: EmailRule | null;
  provider: ProviderSettings | null;
  /** Signs sessions, API tokens and OAuth state. */
  key: Uint8Array;
  /** True when the key was generated at start (sessions end with the process). */
  ephemeralKey: boolean;
  sessionTtlSeconds: number;
  /** Without any auth configured, serve /api anyway (Flower's FLOWER_UNAUTHENTICATED_API). */
  unauthenticatedApi: boolean;
  metricsOpen: boolean;
  metricsToken: string;
  /** Believe X-Forwarded-Proto (a reverse proxy sets it); otherwise only the request's own scheme counts. */
  trustProxy: boolean;
}

export interface AuthInput {
  basicAuth: string;
  auth: string;
  authOperators: string;
  authAdmins: string;
  authProvider: string;
  oauth2Key: string;
  oauth2Secret: string;
  oauth2RedirectUri: string;
  oauth2OktaBaseUrl: string;
  githubOauthDomain: string;
  gitlabOauthDomain: string;
  gitlabAuthAllowedGroups: string;
  gitlabMinAccessLevel: number;
  oauth2GoogleBase: string;
  cookieSecret: string;
  sessionTtl: number;
  unauthenticatedApi: boolean;
  metricsOpen: boolean;
  metricsToken: string;
  trustProxy: boolean;
}

/**
 * The role of a signed-in OAuth email: admin without --auth-operators and
 * --auth-admins (as before roles); with either, admins and operators by
 * their rules and everyone else --auth lets in a viewer.
 */
export function emailRole(settings: Pick<AuthSettings, 'operators' | 'admins'>, email: string): Role {
  if (!settings.operators && !settings.admins) return 'admin';
  if (settings.admins?.test(email)) return 'admin';
  if (settings.operators?.test(email)) return 'operator';
  return 'viewer';
}

export function authConfigured(settings: AuthSettings): boolean {
  return settings.basic.length > 0 || settings.provider !== null;
}

export function authSettings(input: AuthInput): AuthSettings {
  const basic = parseBasicAuthOption(input.basicAuth);
  let provider: ProviderSettings | null = null;
  let emails: EmailRule | null = null;
  if (input.authProvider) {
    const name = providerName(input.authProvider);
    if (!input.auth) throw new Error('--auth-provider needs --auth, the regular expression of emails allowed to sign in');
    emails = emailRule(input.auth);
    if (!input.oauth2Key || !input.oauth2Secret) throw new Error('--auth-provider needs --oauth2-key and --oauth2-secret');
    if (!/^https?:\/\/[^/]+/i.test(input.oauth2RedirectUri))
      throw new Error('--oauth2-redirect-uri must be the full URL of /login, e.g. https://stalk.example.com/login');
    if (name === 'okta' && !input.oauth2OktaBaseUrl) throw new Error('--auth-provider okta needs --oauth2-okta-base-url');
    provider = {
      name,
      clientId: input.oauth2Key,
      clientSecret: input.oauth2Secret,
      redirectUri: input.oauth2RedirectUri,
      githubDomain: input.githubOauthDomain || 'github.com',
      gitlabDomain: input.gitlabOauthDomain || 'gitlab.com',
      gitlabGroups: input.gitlabAuthAllowedGroups
        .split(',')
        .map((g) => g.trim())
        .filter(Boolean),
      gitlabMinAccessLevel: input.gitlabMinAccessLevel,
      oktaBaseUrl: input.oauth2OktaBaseUrl,
      googleBase: input.oauth2GoogleBase,
    };
  } else if (input.auth) {
    throw new Error('--auth needs --auth-provider (google, github, gitlab or okta)');
  }
  if ((input.authOperators || input.authAdmins) && !emails)
    throw new Error('--auth-operators and --auth-admins name OAuth emails: they need --auth-provider and --auth');
  const operators = input.authOperators ? emailRule(input.authOperators, '--auth-operators') : null;
  const admins = input.authAdmins ? emailRule(input.authAdmins, '--auth-admins') : null;
  const ephemeralKey = input.cookieSecret === '';
  return {
    basic,
    emails,
    operators,
    admins,
    provider,
    key: secretKey(ephemeralKey ? randomToken(48) : input.cookieSecret),
    ephemeralKey,
    sessionTtlSeconds: input.sessionTtl,
    unauthenticatedApi: input.unauthenticatedApi,
    metricsOpen: input.metricsOpen,
    metricsToken: input.metricsToken,
    trustProxy: input.trustProxy,
  };
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(address: string): boolean {
  const a = address
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return a === 'localhost' || a === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(a);
}

/**
 * Listening beyond this machine without sign-in would let anyone who can
 * reach the port shut workers down and send tasks: that takes --read-only,
 * or an explicit --allow-anonymous-control. The reason as one line, or null.
 */
export function exposureProblem(
  address: string,
  auth: AuthSettings,
  flags: { readOnly: boolean; allowAnonymousControl: boolean },
): string | null {
  if (isLoopback(address) || authConfigured(auth) || flags.readOnly || flags.allowAnonymousControl) return null;
  return (
    `--address ${address} without authentication would let anyone who reaches it control the workers: ` +
    'configure --basic-auth or --auth-provider, or add --read-only (pages only), or --allow-anonymous-control if that is really meant'
  );
}
