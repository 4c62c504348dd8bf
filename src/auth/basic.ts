// HTTP Basic authentication against `--basic-auth user:pass[:role][,...]`,
// compared in constant time (the length of the secret aside).

import { type Role, splitRole } from '../shared/roles';

export interface BasicCredential {
  user: string;
  password: string;
  /** What the user may do (src/auth/roles.ts); admin when the entry names no role. */
  role: Role;
}

export function parseBasicAuthOption(value: string): BasicCredential[] {
  if (value.trim() === '') return [];
  const pairs = value.split(',');
  return pairs.map((entry, i) => {
    const { rest: pair, role } = splitRole(entry);
    const colon = pair.indexOf(':');
    // Never echo the entry: one typed with another separator ("admin;secret") is all password.
    if (colon <= 0 || colon === pair.length - 1)
      throw new Error(`--basic-auth: entry ${i + 1} of ${pairs.length} is not user:password or user:password:role`);
    return { user: pair.slice(0, colon), password: pair.slice(colon + 1), role };
  });
}

const encoder = new TextEncoder();

/** Equal bytes, in time that depends only on the lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ (y[i % Math.max(1, y.length)] ?? 0);
  return diff === 0;
}

/** The credential an `Authorization: Basic ...` header proves, or null. */
export function checkBasicAuth(header: string | undefined, credentials: BasicCredential[]): BasicCredential | null {
  if (!header || credentials.length === 0) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) return null;
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(atob(match[1]!), (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
  let found: BasicCredential | null = null;
  // Compare against every credential, so timing does not tell which user exists.
  for (const credential of credentials) {
    if (constantTimeEqual(decoded, `${credential.user}:${credential.password}`)) found = credential;
  }
  return found;
}
