// Rows holding any value their column types can hold, for writing straight
// into the tables (bypassing decode): what an older version, another writer
// or a damaged database may have left. Strings within their column's width
// (lone surrogates included, up to 64 Ki for text columns), doubles of any
// size (and infinities where the database keeps them: SQLite does, MariaDB
// has none), integers across their column's range, nulls where allowed, and
// JSON columns holding JSON of any shape or no JSON at all.

import fc from 'fast-check';
import { KEY } from '../../src/shared/schema';
import { bigText, text, textAtLimit, unit } from './arbitraries';

export type Dialect = 'sqlite' | 'mariadb';

const INT = 2_147_483_647;

/** A string of at most `width` UTF-16 units (each is at most one character in MariaDB's utf8mb4). */
function key(width: number) {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit, maxLength: Math.min(width, 30) }) },
    { weight: 1, arbitrary: textAtLimit.map((t) => t.slice(0, width)) },
    { weight: 1, arbitrary: fc.constantFrom('constructor', '__proto__', 'toString', 'SUCCESS', 'online', '') },
  );
}

const longText = fc.oneof({ weight: 5, arbitrary: text(60) }, { weight: 1, arbitrary: bigText }, { weight: 1, arbitrary: textAtLimit });
const nullable = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null, freq: 4 });

export function columnValues(dialect: Dialect) {
  const double = fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: dialect === 'mariadb' }),
    fc.constantFrom(0, -1, 1e20, -1e20, 8.64e12, 8.64e12 + 1, 1.7976931348623157e308, -1.7976931348623157e308, 1_800_000_000.5),
  );
  const bigint = fc.oneof(fc.integer({ min: -INT - 1, max: INT }), fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 0));
  const int = fc.integer({ min: -INT - 1, max: INT });
  /** JSON text of any value, or text that is no JSON, within `width`. */
  const jsonText = (width: number) =>
    fc
      .oneof(
        fc.jsonValue({ maxDepth: 3, stringUnit: unit }).map((v) => JSON.stringify(v)),
        fc.array(fc.oneof(double, fc.constantFrom('1e999', '-1e999', 'null', '"x"')), { maxLength: 4 }).map((xs) => `[${xs.join(',')}]`),
        key(width),
      )
      .filter((t) => t.length <= width);
  return { double, bigint, int, key, jsonText, longText, nullable };
}

/** MariaDB's utf8mb4_bin keys compare encoded text with trailing spaces ignored: two keys that differ only there collide. */
const keyOf = (text: string) => text.toWellFormed().replace(/ +$/, '');

export function tableRows(dialect: Dialect) {
  const { double, bigint, int, jsonText, nullable } = columnValues(dialect);
  const taskTimes = {
    sent: nullable(double),
    received: nullable(double),
    started: nullable(double),
    succeeded: nullable(double),
    failed: nullable(double),
    retried: nullable(double),
    revoked: nullable(double),
    rejected: nullable(double),
  };
  const task = fc.record({
    uuid: key(KEY.id),
    name: nullable(key(KEY.id)),
    state: key(32),
    state_key: key(24),
    timestamp: double,
    clock: nullable(bigint),
    ...taskTimes,
    args: nullable(longText),
    kwargs: nullable(longText),
    result: nullable(longText),
    exception: nullable(longText),
    traceback: nullable(longText),
    worker: nullable(key(KEY.id)),
    client: nullable(key(KEY.id)),
    runtime: nullable(double),
    retries: nullable(int),
    eta: nullable(key(64)),
    expires: nullable(key(64)),
    root_id: nullable(key(KEY.id)),
    parent_id: nullable(key(KEY.id)),
    queue: nullable(key(KEY.id)),
    exchange: nullable(key(KEY.id)),
    routing_key: nullable(key(KEY.id)),
    retried_from: nullable(key(KEY.id)),
  });
  const timelineEntry = fc.record(
    {
      type: fc.oneof(key(20), fc.jsonValue()),
      timestamp: fc.oneof(double, fc.jsonValue()),
      hostname: fc.oneof(key(20), fc.jsonValue()),
      clock: fc.oneof(bigint, fc.jsonValue()),
      data: fc.oneof(fc.dictionary(key(10), fc.jsonValue({ stringUnit: unit, maxDepth: 1 })), fc.jsonValue()),
    },
    { requiredKeys: [] },
  );
  const timeline = fc.record({
    task_id: key(KEY.id),
    events: fc.oneof(
      fc.array(fc.oneof(timelineEntry, fc.jsonValue()), { maxLength: 4 }).map((v) => JSON.stringify(v)),
      longText,
    ),
  });
  const worker = fc.record({
    hostname: key(KEY.id),
    status: fc.oneof(fc.constantFrom('online', 'offline'), key(16)),
    pid: nullable(bigint),
    freq: nullable(double),
    clock: nullable(bigint),
    active: nullable(int),
    processed: nullable(bigint),
    loadavg: nullable(jsonText(128)),
    sw_ident: nullable(key(64)),
    sw_ver: nullable(key(64)),
    sw_sys: nullable(key(64)),
    utcoffset: nullable(double),
    heartbeats: jsonText(255),
    last_heartbeat: nullable(double),
    first_seen: double,
    offline_at: nullable(double),
  });
  const labels = { hostname: key(KEY.host), task_name: key(KEY.name), queue: key(KEY.queue) };
  const counter = fc.record({
    ...labels,
    type: fc.oneof(fc.constantFrom('task-received', 'task-succeeded', 'task-failed', 'task-sent', 'worker-heartbeat'), key(KEY.type)),
    exception: key(KEY.exception),
    count: bigint,
  });
  const metric = fc.oneof(fc.constantFrom('runtime', 'queue_wait'), key(KEY.metric));
  const bucket = fc.record({
    metric,
    ...labels,
    le: fc.oneof(fc.constantFrom('0.005', '1', '10', '+Inf', 'NaN', '-1'), key(KEY.le)),
    count: bigint,
  });
  const total = fc.record({ metric, ...labels, sum: double, count: bigint });
  const status = fc.record({
    id: key(64),
    started_at: double,
    updated_at: double,
    broker_url: key(255),
    broker_connected: int,
    last_event_at: nullable(double),
    events_total: bigint,
    dropped: fc.oneof(
      fc.dictionary(key(20), fc.oneof(bigint, double, fc.jsonValue())).map((d) => JSON.stringify(d)),
      longText,
    ),
    lag_seconds: nullable(double),
    flush_seconds: nullable(double),
  });
  const queue = fc.record({
    name: key(KEY.name),
    messages: bigint,
    ready: nullable(bigint),
    unacked: nullable(bigint),
    consumers: nullable(int),
    measured_at: double,
  });
  const inspectParts = fc.record(
    {
      timestamp: fc.oneof(double, fc.jsonValue()),
      stats: fc.jsonValue({ stringUnit: unit, maxDepth: 3 }),
      active_queues: fc.jsonValue({ stringUnit: unit, maxDepth: 3 }),
      registered: fc.oneof(fc.array(fc.oneof(key(40), fc.jsonValue())), fc.jsonValue()),
      scheduled: fc.jsonValue({ stringUnit: unit, maxDepth: 3 }),
      active: fc.jsonValue({ stringUnit: unit, maxDepth: 3 }),
      reserved: fc.jsonValue({ stringUnit: unit, maxDepth: 3 }),
      revoked: fc.jsonValue({ stringUnit: unit, maxDepth: 2 }),
      conf: fc.jsonValue({ stringUnit: unit, maxDepth: 2 }),
    },
    { requiredKeys: [] },
  );
  const inspect = fc.record({
    hostname: key(KEY.id),
    replies: fc.oneof(
      inspectParts.map((p) => JSON.stringify(p)),
      longText,
    ),
    inspected_at: double,
  });
  const audit = fc.record({
    at: double,
    user: key(KEY.id),
    action: key(KEY.type),
    target: nullable(key(KEY.id)),
    arguments: nullable(longText),
    ok: int,
    result: nullable(longText),
  });

  const some = <T>(arb: fc.Arbitrary<T>, by?: (row: T) => string) =>
    by ? fc.uniqueArray(arb, { maxLength: 3, selector: by }) : fc.array(arb, { maxLength: 3 });
  return fc
    .record({
      tasks: some(task, (t) => keyOf(t.uuid)),
      task_events: some(timeline),
      workers: some(worker, (w) => keyOf(w.hostname)),
      event_counters: some(counter, (c) => [c.hostname, c.task_name, c.queue, c.type, c.exception].map(keyOf).join('\0')),
      histogram_buckets: some(bucket, (b) => [b.metric, b.hostname, b.task_name, b.queue, b.le].map(keyOf).join('\0')),
      histogram_totals: some(total, (t) => [t.metric, t.hostname, t.task_name, t.queue].map(keyOf).join('\0')),
      collector_status: some(status, (s) => keyOf(s.id)),
      queues: some(queue, (q) => keyOf(q.name)),
      worker_inspect: some(inspect, (i) => keyOf(i.hostname)),
      audit_log: some(audit),
    })
    .map((rows) => {
      // Timelines and inspect replies mostly belong to stored tasks and workers, so their pages show them.
      const task_events = rows.task_events.map((e, i) =>
        rows.tasks.length > 0 && i % 2 === 0 ? { ...e, task_id: rows.tasks[i % rows.tasks.length]!.uuid } : e,
      );
      const seen = new Set<string>();
      const worker_inspect = rows.worker_inspect
        .map((r, i) => (i < rows.workers.length ? { ...r, hostname: rows.workers[i]!.hostname } : r))
        .filter((r) => {
          if (seen.has(keyOf(r.hostname))) return false;
          seen.add(keyOf(r.hostname));
          return true;
        });
      return { ...rows, task_events, worker_inspect };
    });
}

export type TableRows = ReturnType<typeof tableRows> extends fc.Arbitrary<infer T> ? T : never;
