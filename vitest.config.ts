import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The unit tier (`npm run test:unit`, vitest's mode `unit`): the files that
 * need no service (Redis, RabbitMQ, MariaDB, Celery, Chromium, workerd), run
 * with STALK_TEST_TIER=unit, which narrows test/support/databases.ts's
 * DIALECTS to SQLite (the MariaDB half of the same files runs in the full
 * suite) and makes opening MariaDB an error. Left to the full suite for
 * their time although they need no service: test/security/exposure.test.ts
 * (starts the server twenty times), test/deploy (bundles the collector),
 * test/db/migrations.test.ts (runs the CLIs, and MariaDB alone in places)
 * and test/db/store-thread.test.ts (grows a thread's heap to its bound).
 */
const UNIT_FILES = [
  'test/unit/**/*.test.ts',
  'test/web/**/*.test.{ts,tsx}',
  'test/property/**/*.test.ts',
  'test/security/*.test.ts',
  'test/metrics/{buckets,exposition,dashboard,metrics,queue-wait}.test.ts',
  'test/db/{store,lease,retention-absurd,search-queue,search-states,lost}.test.ts',
];
const NOT_UNIT = ['test/security/exposure.test.ts'];

export default defineConfig(({ mode }) => {
  const unit = mode === 'unit';
  return {
    test: {
      include: unit ? UNIT_FILES : ['test/**/*.test.ts', 'test/**/*.test.tsx'],
      exclude: [...configDefaults.exclude, ...(unit ? NOT_UNIT : [])],
      env: unit ? { STALK_TEST_TIER: 'unit' } : {},
      // Two cores: integration files start Celery workers and servers.
      pool: 'forks',
      maxWorkers: 2,
      // The unit files share one module cache per worker (the app, Kysely and
      // the templates are imported once rather than once a file: half the
      // time); the full suite keeps each file apart.
      isolate: !unit,
      // htmx and idiomorph from node_modules into public/static/vendor/, as the build does.
      globalSetup: ['test/support/vendor-assets.ts'],
      testTimeout: 20_000,
      hookTimeout: 60_000,
    },
  };
});
