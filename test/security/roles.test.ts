// Roles: every route of the app (read from Hono's route table, so a route
// added later is walked too) against a viewer, an operator and an admin.
// The minimum role of each route is written out below, independently of
// src/shared/roles.ts: a route needing less than listed here (or more) fails.

import { beforeAll, describe, expect, it } from 'vitest';
import { parseBasicAuthOption } from '../../src/auth/basic';
import { authSettings, emailRole } from '../../src/auth/config';
import { secretKey, signToken } from '../../src/auth/tokens';
import { hasRole, type Role, ROLES, splitRole } from '../../src/shared/roles';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { received, started, workerEvent } from '../fixtures/events';
import { NO_AUTH_INPUT, store, testApp } from '../support/app';
import type { openTestDatabase } from '../support/databases';
import type { FakeOAuthServer } from '../support/fake-oauth';
import {
  type App,
  basicHeader,
  concretePath,
  handlerRoutes,
  oauthInput,
  recordingControl,
  SECRET,
  useDatabaseAndFakeOAuth,
} from './support';

const ORIGIN = 'http://stalk.test';
const USERS = 'watcher:pw-view:viewer,oncall:pw-ops:operator,root:pw-root:admin';
const PASSWORDS: Record<Role, [string, string]> = {
  viewer: ['watcher', 'pw-view'],
  operator: ['oncall', 'pw-ops'],
  admin: ['root', 'pw-root'],
};

/** Routes that need more than viewer; every other route is a viewer's. */
const OPERATOR_ROUTES = [
  'POST /api/task/revoke/:id{.+}',
  'POST /api/task/abort/:id{.+}',
  'POST /api/task/apply/:name{.+}',
  'POST /api/task/async-apply/:name{.+}',
  'POST /api/task/send-task/:name{.+}',
  'POST /tasks/send',
];
const ADMIN_ROUTES = [
  'POST /api/worker/shutdown/:name{.+}',
  'POST /api/worker/pool/restart/:name{.+}',
  'POST /api/worker/pool/grow/:name{.+}',
  'POST /api/worker/pool/shrink/:name{.+}',
  'POST /api/worker/pool/autoscale/:name{.+}',
  'POST /api/worker/queue/add-consumer/:name{.+}',
  'POST /api/worker/queue/cancel-consumer/:name{.+}',
  'POST /api/task/timeout/:name{.+}',
  'POST /api/task/rate-limit/:name{.+}',
];
/** Retry routes need an operator (issue 12); listed when they exist. */
const OPERATOR_IF_PRESENT = ['POST /api/task/retry/:id{.+}', 'POST /api/tasks/retry'];
/** Public routes answer anyone (route-walk.test.ts). */
const PUBLIC = ['GET /healthcheck', 'GET /login', 'GET /favicon.ico'];

function expectedRole(key: string): Role {
  if (ADMIN_ROUTES.includes(key)) return 'admin';
  if (OPERATOR_ROUTES.includes(key) || OPERATOR_IF_PRESENT.includes(key)) return 'operator';
  return 'viewer';
}

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let fake: FakeOAuthServer;
useDatabaseAndFakeOAuth((d, f) => ([database, fake] = [d, f]));

// A worker online and a task running on it, so that the pages have actions to show.
beforeAll(async () => {
  const workers = new Map<string, WorkerState>();
  const batch = new EventBatch();
  const story = { uuid: 'task-1', name: 'tasks.add', worker: 'w1@host' };
  for (const event of [received(story, 1_800_000_000), started(story, 1_800_000_001)]) batch.add(event, workers);
  batch.add(workerEvent('worker-online', 'w1@host', 1_800_000_000), workers);
  await store(database, batch, workers);
});

async function request(app: App, method: string, path: string, authorization: string): Promise<Response> {
  return app.request(`${ORIGIN}${path}`, { method, headers: { authorization } });
}

describe('roles on every route', () => {
  it('each route answers exactly the roles at or above its minimum; below it, 403 naming the missing role, and no command runs', async () => {
    const control = recordingControl();
    const app = testApp(database, { control, auth: { basicAuth: USERS } });
    const routes = handlerRoutes(app);
    const keys = routes.map((r) => `${r.method} ${r.path}`);
    // The lists name real routes (a rename cannot hide behind them).
    for (const key of [...OPERATOR_ROUTES, ...ADMIN_ROUTES]) expect(keys, key).toContain(key);
    let checked = 0;
    for (const route of routes) {
      const key = `${route.method} ${route.path}`;
      if (PUBLIC.includes(key)) continue;
      const needed = expectedRole(key);
      const methods = route.method === 'ALL' ? ['GET', 'POST'] : [route.method];
      for (const method of methods) {
        const minimum = method === 'GET' ? 'viewer' : needed;
        for (const role of ROLES) {
          const before = control.commands.length;
          const [user, password] = PASSWORDS[role];
          const response = await request(app, method, concretePath(route.path), basicHeader(user, password));
          const label = `${role} ${method} ${route.path}`;
          if (hasRole(role, minimum)) {
            expect([401, 403], label).not.toContain(response.status);
          } else {
            expect(response.status, label).toBe(403);
            expect(await response.text(), label).toContain(`${minimum} role required`);
            expect(control.commands.length, label).toBe(before);
          }
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(90);
  });

  it('an API token carries its role; one minted before roles is an admin; a token with an unknown role opens nothing', async () => {
    const control = recordingControl();
    const app = testApp(database, { control, auth: { basicAuth: USERS } });
    const key = secretKey(SECRET);
    const token = async (claims: Record<string, unknown>) => `Bearer ${await signToken(key, 'api', claims, 600, 'ci')}`;
    const shutdown = '/api/worker/shutdown/w1@host';
    const revoke = '/api/task/revoke/task-1';
    expect((await request(app, 'POST', revoke, await token({ role: 'viewer' }))).status).toBe(403);
    expect((await request(app, 'POST', revoke, await token({ role: 'operator' }))).status).not.toBe(403);
    expect((await request(app, 'POST', shutdown, await token({ role: 'operator' }))).status).toBe(403);
    expect((await request(app, 'POST', shutdown, await token({}))).status).not.toBe(403);
    expect((await request(app, 'GET', '/api/workers', await token({ role: 'root' }))).status).toBe(401);
    expect((await request(app, 'GET', '/api/workers', await token({ role: 'viewer' }))).status).toBe(200);
  });

  it('OAuth: --auth-admins and --auth-operators pick roles by full match; others --auth lets in are viewers; without either, admins', () => {
    const withRoles = authSettings({
      ...NO_AUTH_INPUT,
      ...oauthInput(fake, 'google'),
      auth: '.*@example\\.com',
      authOperators: '(ann|bob)@example\\.com',
      authAdmins: 'root@example\\.com',
    });
    expect(emailRole(withRoles, 'root@example.com')).toBe('admin');
    expect(emailRole(withRoles, 'ann@example.com')).toBe('operator');
    expect(emailRole(withRoles, 'ann@example.com.evil.org')).toBe('viewer');
    expect(emailRole(withRoles, 'xroot@example.com')).toBe('viewer');
    expect(emailRole(withRoles, 'eve@example.com')).toBe('viewer');
    const without = authSettings({ ...NO_AUTH_INPUT, ...oauthInput(fake, 'google'), auth: '.*@example\\.com' });
    expect(emailRole(without, 'eve@example.com')).toBe('admin');
    expect(() => authSettings({ ...NO_AUTH_INPUT, basicAuth: 'a:b', authAdmins: '.*' })).toThrow(/--auth-admins.*--auth-provider/);
    expect(() => authSettings({ ...NO_AUTH_INPUT, ...oauthInput(fake, 'google'), auth: '.*', authOperators: '(' })).toThrow(
      /^--auth-operators: /,
    );
  });

  it('--basic-auth takes an optional role; a password may hold colons; no role is admin', () => {
    expect(parseBasicAuthOption('v:pw:viewer,o:pw:operator,a:pw:admin,x:pw,y:p:w,z:p:admin:w')).toEqual([
      { user: 'v', password: 'pw', role: 'viewer' },
      { user: 'o', password: 'pw', role: 'operator' },
      { user: 'a', password: 'pw', role: 'admin' },
      { user: 'x', password: 'pw', role: 'admin' },
      { user: 'y', password: 'p:w', role: 'admin' },
      { user: 'z', password: 'p:admin:w', role: 'admin' },
    ]);
    // A role alone is not a password.
    expect(() => parseBasicAuthOption('v:viewer')).not.toThrow();
    expect(parseBasicAuthOption('v:viewer')).toEqual([{ user: 'v', password: 'viewer', role: 'admin' }]);
    expect(() => parseBasicAuthOption('v::viewer')).toThrow(/entry 1 of 1/);
    expect(splitRole('a:b:Admin')).toEqual({ rest: 'a:b:Admin', role: 'admin' });
  });

  it('pages show a viewer no action buttons, an operator task actions only, an admin everything', async () => {
    const app = testApp(database, { control: recordingControl(), auth: { basicAuth: USERS } });
    const page = async (role: Role, path: string) => {
      const [user, password] = PASSWORDS[role];
      const response = await request(app, 'GET', path, basicHeader(user, password));
      expect(response.status, `${role} ${path}`).toBe(200);
      return response.text();
    };
    const worker = concretePath('/worker/:name');
    const task = concretePath('/task/:id');
    expect(await page('viewer', worker)).not.toMatch(/pool\/restart|worker\/shutdown|add-consumer/);
    expect(await page('operator', worker)).not.toMatch(/pool\/restart|worker\/shutdown|add-consumer/);
    expect(await page('admin', worker)).toMatch(/pool\/restart/);
    expect(await page('viewer', task)).not.toMatch(/\/api\/task\/revoke/);
    expect(await page('operator', task)).toMatch(/\/api\/task\/revoke/);
    expect(await page('viewer', '/tasks')).not.toMatch(/\/tasks\/send/);
    expect(await page('operator', '/tasks')).toMatch(/\/tasks\/send/);
  });
});
