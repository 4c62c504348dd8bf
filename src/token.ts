// Mint an API token for scripts: `npm run token -- --name ci [--ttl 90d] [--role viewer|operator|admin]`.
// It is a JWT signed with the same secret as sessions (--cookie-secret or
// STALK_COOKIE_SECRET / COOKIE_SECRET at the edge), sent as
// `Authorization: Bearer <token>` to the API and /metrics.

import { parseDuration } from './options';
import { secretKey, signToken } from './auth/tokens';
import { isRole, ROLES } from './shared/roles';

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i >= 0) return argv[i + 1];
  return argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const name = flag(argv, 'name');
  const ttl = parseDuration(flag(argv, 'ttl') ?? '90d');
  const secret = flag(argv, 'cookie-secret') ?? process.env.STALK_COOKIE_SECRET ?? process.env.FLOWER_COOKIE_SECRET ?? '';
  if (!name || !/^[\w.@-]{1,100}$/.test(name)) throw new Error('--name: who the token is for (letters, digits, . _ @ -)');
  if (!ttl) throw new Error('--ttl: a duration such as 30d or 12h');
  if (!secret) throw new Error('the signing secret: --cookie-secret or STALK_COOKIE_SECRET (the one Stalk runs with)');
  // Without --role the token is an admin's, as tokens were before roles.
  const role = flag(argv, 'role') ?? 'admin';
  if (!isRole(role)) throw new Error(`--role: one of ${ROLES.join(', ')}`);
  console.log(await signToken(secretKey(secret), 'api', { role }, ttl, name));
}

main().catch((error: unknown) => {
  console.error(`stalk token: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
});
