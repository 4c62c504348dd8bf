// Who may do what. Three roles, each including the one below it:
//   viewer    pages and the read API
//   operator  task actions: revoke, terminate, abort, retry, send
//   admin     worker control: shutdown, pool, autoscale, consumers, rate and time limits
// Every request needs a role (requiredRole); the middleware refuses one that
// falls short with 403 naming the missing role. Routes are matched here, in
// one table, rather than at each route: a route nobody listed needs admin,
// so a new action is closed until someone decides otherwise.

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function hasRole(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** Requests that change nothing in the cluster although they are POSTs. */
const VIEWER_POSTS: RegExp[] = [
  /^\/logout$/,
  // Flower's DataTables endpoint may be read by POST.
  /^\/tasks\/datatable$/,
  // Asking workers for fresh inspect replies (the worker page's Refresh and its live tabs).
  /^\/worker\/[^/]+(?:\/[^/]+)*\/inspect$/,
];

/** Task actions. */
const OPERATOR_POSTS: RegExp[] = [
  /^\/api\/task\/(?:revoke|abort|apply|async-apply|send-task|retry)\/.+/,
  /^\/api\/tasks\/retry$/,
  /^\/tasks\/send$/,
];

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The least role a request needs (`path` without the URL prefix). */
export function requiredRole(method: string, path: string): Role {
  if (READS.has(method)) return 'viewer';
  if (VIEWER_POSTS.some((pattern) => pattern.test(path))) return 'viewer';
  if (OPERATOR_POSTS.some((pattern) => pattern.test(path))) return 'operator';
  return 'admin';
}

/**
 * `--basic-auth` entries are `user:password` or `user:password:role`; an
 * entry is taken to name a role only when its last `:` part is one of the
 * three (a password may hold colons). No role: admin, as before roles.
 */
export function splitRole(entry: string): { rest: string; role: Role } {
  const colon = entry.lastIndexOf(':');
  const tail = entry.slice(colon + 1);
  if (colon > 0 && isRole(tail) && entry.indexOf(':') < colon) return { rest: entry.slice(0, colon), role: tail };
  return { rest: entry, role: 'admin' };
}
