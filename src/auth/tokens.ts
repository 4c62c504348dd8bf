// Signed tokens (jose, HS256 pinned): browser sessions in a cookie, API
// tokens for scripts (Authorization: Bearer), and the short-lived state of
// an OAuth login. One secret signs all three; each kind has its own
// audience, so one can never stand in for another.

import { jwtVerify, SignJWT } from 'jose';
import { base64url } from '../shared/base64url';

export { randomToken } from '../shared/base64url';

export const ALGORITHM = 'HS256';
const ISSUER = 'stalk';

export type TokenKind = 'session' | 'api' | 'oauth-state';

export interface SessionClaims {
  /** The signed-in user (an email, or a basic-auth user). */
  sub: string;
  /** The CSRF token forms and htmx requests must echo. */
  csrf: string;
}

export interface OAuthStateClaims {
  state: string;
  verifier: string;
  next: string;
}

export function secretKey(secret: string): Uint8Array {
  if (secret.length < 32) throw new Error('the cookie secret must be at least 32 characters (see --cookie-secret)');
  return new TextEncoder().encode(secret);
}

export async function signToken(
  key: Uint8Array,
  kind: TokenKind,
  claims: Record<string, unknown>,
  ttlSeconds: number,
  subject?: string,
): Promise<string> {
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(kind)
    .setIssuedAt()
    .setExpirationTime(`${Math.floor(ttlSeconds)}s`);
  if (subject) jwt = jwt.setSubject(subject);
  return jwt.sign(key);
}

/**
 * The claims of a valid token of this kind, or null (bad signature, other
 * algorithm, expired, wrong kind). A token must carry an expiry: signToken
 * always sets one, and one without would be good forever.
 */
export async function verifyToken<T>(key: Uint8Array, kind: TokenKind, token: string): Promise<(T & { sub?: string }) | null> {
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: [ALGORITHM],
      issuer: ISSUER,
      audience: kind,
      requiredClaims: ['exp', 'iat'],
    });
    return payload as T & { sub?: string };
  } catch {
    return null;
  }
}

/** PKCE (RFC 7636): the S256 challenge of a verifier. */
export async function pkceChallenge(verifier: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
}
