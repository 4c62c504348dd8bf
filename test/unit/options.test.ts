import { describe, expect, it } from 'vitest';
import { parseDuration, parseOptions } from '../../src/options';
import { parseBrokerUrl } from '../../worker-collector/transport/broker-url';
import { parseDatabaseTarget } from '../../worker-collector/store/db';

describe('options', () => {
  it('has defaults a newcomer can run with', () => {
    const o = parseOptions([], {});
    expect(o).toMatchObject({
      broker: 'redis://localhost:6379/0',
      port: 5555,
      db: './data/stalk.db',
      maxTasks: 0,
      maxTaskAge: 7 * 86400,
      enableEvents: true,
    });
  });

  it('reads flags in Flower spellings, env, and Celery’s broker variable, flags first', () => {
    const env = { STALK_PORT: '6000', CELERY_BROKER_URL: 'amqp://guest:guest@localhost//', STALK_MAX_TASKS: '10' };
    const o = parseOptions(['--max_tasks=500', '--flush-interval', '250ms', '--no-enable-events'], env);
    expect(o).toMatchObject({
      port: 6000,
      broker: 'amqp://guest:guest@localhost//',
      maxTasks: 500,
      flushInterval: 0.25,
      enableEvents: false,
    });
    expect(parseOptions(['--broker', 'redis://x/1'], env).broker).toBe('redis://x/1');
  });

  it.each([
    [['--port', 'http'], "--port: 'http' is not a whole number"],
    [['--port', '70000'], '--port: 70000 is not a port number'],
    [['--max-task-age', 'soon'], "--max-task-age: 'soon' is not a duration (e.g. 500ms, 30s, 5m, 7d)"],
    [['--colour'], 'unknown option --colour (see --help)'],
    [['--db'], '--db needs a value'],
    [['stray'], "unexpected argument 'stray' (options look like --name value)"],
    [['--task-runtime-metric-buckets', '1,fast'], "--task-runtime-metric-buckets: 'fast' is not a positive number of seconds (or inf)"],
    [['--task-runtime-metric-buckets', '3'], '--task-runtime-metric-buckets: 3 is not a stored bucket bound'],
    // RabbitMQ's basic.qos prefetch-count is 16 bits.
    [['--event-prefetch', '70000'], '--event-prefetch: must be at most 65535'],
    [['--event-prefetch', '5'], '--event-prefetch: must be at least 10'],
  ])('refuses %j with one clear line', (argv, message) => {
    expect(() => parseOptions(argv, {})).toThrow(message);
  });

  it("reads the runtime buckets as Flower spells them, defaulting to Flower's", () => {
    expect(parseOptions([], {}).taskRuntimeMetricBuckets).toEqual([
      0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
    ]);
    expect(parseOptions(['--task_runtime_metric_buckets=60,1,inf,10'], {}).taskRuntimeMetricBuckets).toEqual([1, 10, 60]);
    expect(parseOptions([], { FLOWER_TASK_RUNTIME_METRIC_BUCKETS: '0.5,5' }).taskRuntimeMetricBuckets).toEqual([0.5, 5]);
  });

  it('reads sizes in binary units and closed choices', () => {
    expect(parseOptions([], {}).maxEventBytes).toBe(1048576);
    expect(parseOptions(['--max-event-bytes', '512KiB'], {}).maxEventBytes).toBe(524288);
    expect(parseOptions(['--max-event-bytes=4m'], {}).maxEventBytes).toBe(4 * 1048576);
    expect(parseOptions([], { STALK_MAX_EVENT_BYTES: '2048' }).maxEventBytes).toBe(2048);
    expect(() => parseOptions(['--max-event-bytes', 'huge'], {})).toThrow(
      "--max-event-bytes: 'huge' is not a size (e.g. 1048576, 512KiB, 4MiB)",
    );
    expect(() => parseOptions(['--max-event-bytes', '10'], {})).toThrow('--max-event-bytes: must be at least 1024 bytes');
    expect(() => parseOptions(['--max-event-bytes', '1e400'], {})).toThrow('is not a size');
    expect(parseOptions([], {}).migrate).toBe('auto');
    expect(parseOptions(['--migrate', 'CHECK'], {}).migrate).toBe('check');
    expect(() => parseOptions(['--migrate', 'sometimes'], {})).toThrow("--migrate: 'sometimes' is not one of auto, check, off");
    expect(parseOptions([], { FLOWER_XHEADERS: 'true' }).trustProxy).toBe(true);
    expect(parseOptions([], {}).trustProxy).toBe(false);
    expect(parseOptions(['--allow-anonymous-control'], {}).allowAnonymousControl).toBe(true);
    expect(parseOptions([], {}).eventPrefetch).toBe(20000);
    expect(parseOptions(['--event_prefetch=65535'], {}).eventPrefetch).toBe(65535);
  });

  it('reads the lease options: auto, shared name, a ttl of at least 3 s', () => {
    expect(parseOptions([], {})).toMatchObject({ lease: 'auto', leaseName: 'collector', leaseTtl: 8 });
    expect(parseOptions(['--lease', 'off', '--lease-name', 'eu-1', '--lease-ttl', '15s'], {})).toMatchObject({
      lease: 'off',
      leaseName: 'eu-1',
      leaseTtl: 15,
    });
    expect(parseOptions([], { STALK_LEASE: 'on', STALK_LEASE_TTL: '5' })).toMatchObject({ lease: 'on', leaseTtl: 5 });
    expect(() => parseOptions(['--lease', 'maybe'], {})).toThrow("--lease: 'maybe' is not one of auto, on, off");
    expect(() => parseOptions(['--lease-ttl', '2s'], {})).toThrow('--lease-ttl: must be at least 3 s');
    expect(() => parseOptions(['--lease-name', ' '], {})).toThrow('--lease-name: must be 1 to 191 characters');
    expect(() => parseOptions(['--lease-name', 'x'.repeat(192)], {})).toThrow('--lease-name: must be 1 to 191 characters');
  });

  it('parses durations', () => {
    expect(parseDuration('500ms')).toBe(0.5);
    expect(parseDuration('7d')).toBe(604800);
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('-1s')).toBeUndefined();
  });
});

describe('broker and database URLs', () => {
  it('reads Redis database numbers and TLS', () => {
    expect(parseBrokerUrl('redis://:secret@cache:6380/3')).toMatchObject({
      kind: 'redis',
      db: 3,
      tls: false,
      display: 'redis://:****@cache:6380/3',
    });
    expect(parseBrokerUrl('rediss://cache:6380')).toMatchObject({ kind: 'redis', db: 0, tls: true });
  });

  it("reads Celery's AMQP spellings, including the '//' default vhost", () => {
    expect(parseBrokerUrl('amqp://guest:guest@localhost:5672//').url).toBe('amqp://guest:guest@localhost:5672/%2F');
    expect(parseBrokerUrl('pyamqp://guest@rabbit/prod')).toMatchObject({ kind: 'amqp', url: 'amqp://guest@rabbit/prod' });
    expect(parseBrokerUrl('amqps://u:p@rabbit:5671')).toMatchObject({ tls: true, display: 'amqps://u:****@rabbit:5671' });
  });

  it('refuses other brokers clearly', () => {
    expect(() => parseBrokerUrl('sqs://key@region')).toThrow("--broker: unsupported scheme 'sqs://'");
    expect(() => parseBrokerUrl('redis://h/abc')).toThrow("Redis database 'abc' is not a number");
    expect(() => parseBrokerUrl('not a url')).toThrow('is not a URL');
  });

  it('tells SQLite paths from MySQL URLs', () => {
    expect(parseDatabaseTarget('./data/stalk.db')).toEqual({ dialect: 'sqlite', location: './data/stalk.db' });
    expect(parseDatabaseTarget('sqlite:///var/lib/stalk.db')).toEqual({ dialect: 'sqlite', location: '/var/lib/stalk.db' });
    expect(parseDatabaseTarget('mysql://root@db/stalk')).toEqual({ dialect: 'mysql', location: 'mysql://root@db/stalk' });
    expect(() => parseDatabaseTarget('postgres://x/y')).toThrow('unsupported database URL scheme');
  });
});
