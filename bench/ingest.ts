// npm run bench:ingest -- [options]
//
// How many Celery task events per second the collector takes, on this
// machine, against a 60,000 events/s target. Starts the built collector
// (dist/collector.js; the npm script builds it) as a child process, waits
// until it consumes the broker, then spawns the load generator
// (bench/generator.ts) as a process of its own, which publishes task events
// in Celery's wire format (Redis: kombu envelopes on /{db}.celeryev/task.sent
// and task.multi; RabbitMQ: raw JSON on the durable `celeryev` topic
// exchange). Each task is 4 events: a client's task-sent, then the worker's
// task-received, task-started and task-succeeded (one in ten task-failed) in
// task.multi batches. It prints:
//   offered   events/s the broker took from the generator (what it reported)
//   taken     events/s stored, first publish to the last event stored
//   lost      published - stored, and the collector's own dropped counters
//   lag       publish -> row readable, p50/p95/p99/max, from probe tasks
//             (a task-sent every 200 ms while the generator runs)
//   RSS       the collector's peak (VmHWM) and at the end, and where it was at its
//             highest sampled RSS (/proc/<pid>/smaps: V8 heap pages, node binary, malloc)
//   rows      tasks by state, events and timeline rows stored
//   CPU       seconds and % of one core, first publish to last event stored:
//             the collector (all its threads), the broker (redis-server or
//             beam.smp), the MySQL server, the generator, this process,
//             and the rest of the machine
// then a line for a markdown table (the header is printed above it).
// A progress line every 5 s shows published, stored, RSS and CPU so far.
//
// Options (defaults: 1,000,000 tasks at 60,000 events/s, Redis db 15, SQLite):
//   --broker URL          redis://localhost:6379/15 (default), or amqp://guest:guest@localhost:5672/<vhost>
//   --db URL              a SQLite file (default: in a temporary directory, removed afterwards) or
//                         mysql://root@127.0.0.1:3306/<name>: created if missing, dropped afterwards;
//                         a database or file that already holds data is refused (its rows would be counted)
//   --rate N              events/s the generator aims at; 0: as fast as the broker takes them
//   --tasks N             tasks to publish (4 events each)
//   --duration S          publish for S seconds (with --tasks: whichever ends first)
//   --burst N             publish N events (N/4 tasks) as fast as possible, then stop (ignores --rate)
//   --batch N             worker events per task.multi message (10)
//   --flush-interval D    the collector's --flush-interval (500ms)
//   --collector-args "…"  more collector flags, e.g. "--event-queue stalk-bench --max-buffer-mb 64"
//                         (a named --event-queue is deleted before and after the run, so that it starts empty)
//   --node-args "…"       the collector's node flags (default "--expose-gc --max-old-space-size=192 --max-semi-space-size=4"
//                         and the malloc settings, as `npm run collector`);
//                         BENCH_NODE_ARGS adds more, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
//   BENCH_COLLECTOR_LOG=<file> (env) writes the collector's output there.
//   --without-search-index  drop the text index first, to measure what it costs
//   --keep                keep the database (and a named event queue) afterwards
//
// Examples:
//   npm run bench:ingest
//   npm run bench:ingest -- --tasks 50000 --rate 20000 --db mysql://root@127.0.0.1:3306/stalk_bench_x
//   npm run bench:ingest -- --broker amqp://guest:guest@localhost:5672/stalk-bench --collector-args "--event-queue stalk-bench"
//   npm run bench:ingest -- --burst 100000
//
// Everything runs on this machine: on 2 cores the generator and the broker
// take CPU the collector would otherwise have; the CPU lines say how much.
// Stored events are counted by countStoredEvents, the one function that
// knows how events are stored.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { type OpenDatabase, openDatabase } from '../worker-collector/store/db';
import { CLIENT, EVENTS_PER_TASK, type EventPublisher, openEventPublisher, taskSent } from './celery-wire';
import type { GeneratorDone, GeneratorLine } from './generator';
import { cpuSeconds, type MemorySplit, machineBusySeconds, memoryMiB, memorySplit, pidsNamed, processName } from './proc-stats';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const GENERATOR = join(ROOT, 'bench', 'generator.ts');
const COLLECTOR = join(ROOT, 'dist', 'collector.js');
const PROBE_NAME = 'bench.probe';
const PROBE_INTERVAL_MS = 200;
const STALL_MS = 20_000;
/** Aborted by Ctrl-C: the loops stop, and the SIGINT handler cleans up and exits. */
const interrupt = new AbortController();

interface BenchArgs {
  tasks: number | undefined;
  duration: number | undefined;
  burst: number | undefined;
  rate: number;
  batch: number;
  db: string | undefined;
  broker: string;
  flushInterval: string;
  collectorArgs: string[];
  nodeArgs: string[];
  keep: boolean;
  /** Diagnosis: drop the text index before the load (MySQL's FULLTEXT, SQLite's queue triggers). */
  withoutSearchIndex: boolean;
}

function readArgs(argv: string[]): BenchArgs {
  const args: BenchArgs = {
    tasks: undefined,
    duration: undefined,
    burst: undefined,
    rate: 60_000,
    batch: 10,
    db: undefined,
    broker: 'redis://localhost:6379/15',
    flushInterval: '500ms',
    collectorArgs: [],
    nodeArgs: ['--expose-gc', '--max-old-space-size=192', '--max-semi-space-size=4'],
    keep: false,
    withoutSearchIndex: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const [, flag = '', inline] = /^-*([^=]*)(?:=(.*))?$/s.exec(argv[i]!)!;
    if (flag === 'keep') {
      args.keep = true;
      continue;
    }
    if (flag === 'without-search-index') {
      args.withoutSearchIndex = true;
      continue;
    }
    if (flag === 'help') {
      console.log('usage: npm run bench:ingest -- [--broker URL] [--db URL] [--rate N] [--tasks N | --duration S | --burst N] [--batch N]');
      console.log('       [--flush-interval D] [--collector-args "..."] [--node-args "..."] [--keep]   (see bench/ingest.ts)');
      process.exit(0);
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`--${flag} needs a value`);
    const number = () => {
      const n = Number(value);
      if (value === '' || !Number.isFinite(n) || n < 0) throw new Error(`--${flag}: not a non-negative number: '${value}'`);
      return n;
    };
    const words = () => value.split(/\s+/).filter(Boolean);
    if (flag === 'tasks') args.tasks = Math.floor(number());
    else if (flag === 'duration') args.duration = number();
    else if (flag === 'burst') args.burst = Math.floor(number());
    else if (flag === 'rate') args.rate = number();
    else if (flag === 'batch') args.batch = Math.max(1, Math.floor(number()));
    else if (flag === 'db') args.db = value;
    else if (flag === 'broker') args.broker = value;
    else if (flag === 'flush-interval') args.flushInterval = value;
    else if (flag === 'collector-args') args.collectorArgs = words();
    else if (flag === 'node-args') args.nodeArgs = words();
    else throw new Error(`unknown option --${flag} (--help lists them)`);
  }
  if (args.tasks === undefined && args.duration === undefined && args.burst === undefined) args.tasks = 1_000_000;
  return args;
}

/** The generator's flags for these arguments. */
function generatorFlags(args: BenchArgs): string[] {
  const flags = ['--broker', args.broker, '--batch', String(args.batch)];
  if (args.burst !== undefined) return [...flags, '--burst', String(args.burst)];
  flags.push('--rate', String(args.rate));
  if (args.tasks !== undefined) flags.push('--tasks', String(args.tasks));
  if (args.duration !== undefined) flags.push('--duration', String(args.duration));
  return flags;
}

function describeLoad(args: BenchArgs): string {
  if (args.burst !== undefined) {
    const tasks = Math.ceil(args.burst / EVENTS_PER_TASK);
    return `burst of ${tasks * EVENTS_PER_TASK} events (${tasks} tasks) at full speed`;
  }
  const size = [
    args.tasks !== undefined ? `${args.tasks} tasks (${args.tasks * EVENTS_PER_TASK} events)` : '',
    args.duration !== undefined ? `${args.duration} s` : '',
  ].filter(Boolean);
  return `${size.join(' or ')} at ${args.rate > 0 ? `${args.rate} events/s` : 'full speed'}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const brokerKind = (url: string) => (/^amqps?:/i.test(url) ? 'rabbitmq' : 'redis');
const isLocalHost = (url: string) => ['localhost', '127.0.0.1', '[::1]', '::1'].includes(new URL(url).hostname);
const mask = (url: string) => url.replace(/\/\/([^:/@]*):([^@/]*)@/, '//$1:****@');

/**
 * Task events stored so far, probes left out. The one place that knows the
 * storage layout: task_events holds one row per flush per task, `events`
 * a JSON array of that flush's events. With `afterId`, only rows with a
 * larger id are counted, so that progress checks stay cheap on a large
 * table; ids grow with each flush, and the collector writes one flush at a
 * time, so a cursor misses nothing. The final figure comes from a full
 * count (afterId 0) anyway.
 */
async function countStoredEvents(reader: OpenDatabase, afterId = 0): Promise<{ events: number; lastId: number }> {
  const length = reader.dialect === 'mysql' ? sql`JSON_LENGTH(events)` : sql`json_array_length(events)`;
  const row = await reader.db
    .selectFrom('task_events')
    .select([sql<number>`COALESCE(SUM(${length}), 0)`.as('events'), sql<number>`COALESCE(MAX(id), ${afterId})`.as('last')])
    .where('id', '>', afterId)
    .where('task_id', 'not like', 'probe-%')
    .executeTakeFirstOrThrow();
  return { events: Number(row.events), lastId: Number(row.last) };
}

/** Things to undo at the end (or on Ctrl-C), last first. */
class Cleanup {
  private readonly steps: (() => Promise<void> | void)[] = [];
  add(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step();
      } catch (error) {
        console.error(`cleanup: ${(error as Error).message}`);
      }
    }
  }
}

/** Stop a child we started, by its pid: SIGTERM, then SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid!, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
  const outcome = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    console.error(`pid ${child.pid} did not stop within ${graceMs / 1000} s of SIGTERM; killing it`);
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  }
}

/** The database to give the collector: made for the run, and refused when it already holds data. */
async function prepareDatabase(args: BenchArgs, cleanup: Cleanup): Promise<string> {
  if (args.db === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'stalk-bench-'));
    cleanup.add(() => (args.keep ? console.log(`kept ${dir}`) : rmSync(dir, { recursive: true, force: true })));
    return join(dir, 'bench.db');
  }
  if (!/^mysql2?:\/\//i.test(args.db)) {
    const path = args.db.replace(/^sqlite:(\/\/)?/i, '');
    if (existsSync(path) && statSync(path).size > 0)
      throw new Error(`--db ${path} already exists: its rows would be counted; remove it or name another file`);
    return args.db;
  }
  const url = new URL(args.db.replace(/^mysql2:/i, 'mysql:'));
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!/^\w+$/.test(name)) throw new Error(`--db: name a database of letters, digits and _ (got '${name}')`);
  const server = new URL(url);
  server.pathname = '/';
  const { createConnection } = await import('mysql2/promise');
  const admin = await createConnection(server.toString());
  try {
    const [schemas] = await admin.query('SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = ?', [name]);
    const exists = Number((schemas as { n: number }[])[0]?.n) > 0;
    if (exists) {
      const [tables] = await admin.query('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ?', [name]);
      if (Number((tables as { n: number }[])[0]?.n) > 0) {
        throw new Error(`database ${name} already has tables: its rows would be counted; drop it (DROP DATABASE ${name}) or name another`);
      }
      console.log(`using the existing empty database ${name} (left in place afterwards)`);
    } else {
      await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
      cleanup.add(async () => {
        if (args.keep) return console.log(`kept database ${name}`);
        const conn = await createConnection(server.toString());
        await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
        await conn.end();
      });
    }
  } finally {
    await admin.end();
  }
  return args.db;
}

/** A named --event-queue from the collector's flags: deleted before the run (so it starts empty, with our arguments) and after it. */
async function resetNamedEventQueue(args: BenchArgs, cleanup: Cleanup): Promise<void> {
  if (brokerKind(args.broker) !== 'rabbitmq') return;
  let queue: string | undefined;
  args.collectorArgs.forEach((arg, i) => {
    if (arg === '--event-queue') queue = args.collectorArgs[i + 1];
    else if (arg.startsWith('--event-queue=')) queue = arg.slice('--event-queue='.length);
  });
  if (!queue) return;
  const name = queue;
  const remove = async () => {
    const { connect } = await import('amqplib');
    const connection = await connect(args.broker);
    try {
      const channel = await connection.createChannel();
      const { messageCount } = await channel.deleteQueue(name);
      if (messageCount > 0) console.log(`deleted event queue ${name} with ${messageCount} messages in it`);
    } finally {
      await connection.close().catch(() => undefined);
    }
  };
  await remove();
  cleanup.add(() => (args.keep ? console.log(`kept event queue ${name}`) : remove()));
}

interface CpuSource {
  label: string;
  read(): Promise<number | undefined>;
}

/** The broker server's CPU seconds: /proc/<pid>/stat when readable, else what Redis says in INFO cpu. */
async function brokerCpu(args: BenchArgs, cleanup: Cleanup): Promise<CpuSource> {
  if (brokerKind(args.broker) === 'rabbitmq') {
    const pids = isLocalHost(args.broker) ? pidsNamed('beam.smp') : [];
    const readable = pids.filter((pid) => cpuSeconds(pid) !== undefined);
    if (readable.length === 0) return { label: 'rabbitmq (no readable beam.smp process)', read: async () => undefined };
    return {
      label: readable.length === 1 ? `rabbitmq (beam.smp ${readable[0]})` : `rabbitmq (beam.smp ${readable.join('+')})`,
      read: async () => {
        const seconds = readable.map(cpuSeconds);
        return seconds.includes(undefined) ? undefined : seconds.reduce<number>((sum, s) => sum + s!, 0);
      },
    };
  }
  const { Redis } = await import('ioredis');
  const redis = new Redis(args.broker, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  cleanup.add(() => void redis.disconnect());
  const field = (info: string, name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
  const pid = field(await redis.info('server'), 'process_id');
  if (isLocalHost(args.broker) && processName(pid)?.startsWith('redis') && cpuSeconds(pid) !== undefined) {
    return { label: `redis-server (pid ${pid})`, read: async () => cpuSeconds(pid) };
  }
  return {
    label: `redis-server (/proc/${pid}/stat not readable here: INFO cpu)`,
    read: async () => {
      const info = await redis.info('cpu');
      return field(info, 'used_cpu_user') + field(info, 'used_cpu_sys');
    },
  };
}

/** The MySQL server's CPU, when it runs here. */
function databaseServerCpu(dbUrl: string): CpuSource | undefined {
  if (!/^mysql2?:\/\//i.test(dbUrl)) return undefined;
  const pids = isLocalHost(dbUrl.replace(/^mysql2:/i, 'mysql:')) ? [...pidsNamed('mariadbd'), ...pidsNamed('mysqld')] : [];
  const pid = pids.find((p) => cpuSeconds(p) !== undefined);
  if (pid === undefined) return { label: 'mysql server (no readable mariadbd/mysqld process)', read: async () => undefined };
  return { label: `${processName(pid)} (pid ${pid})`, read: async () => cpuSeconds(pid) };
}

interface CpuSnapshot {
  at: number;
  collector: number | undefined;
  broker: number | undefined;
  dbServer: number | undefined;
  generator: number | undefined;
  bench: number;
  machine: number | undefined;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** A loop left running while the run goes on: its error waits for join() (none after Ctrl-C, which closes what it uses). */
function background(loop: () => Promise<void>): { join(): Promise<void> } {
  let failure: { error: unknown } | undefined;
  const running = loop().catch((error: unknown) => {
    if (!interrupt.signal.aborted) failure = { error };
  });
  return {
    async join() {
      await running;
      if (failure) throw failure.error;
    },
  };
}

/** Seconds and % of one core over `seconds`, or n/a. */
function cpuText(used: number | undefined, seconds: number): string {
  if (used === undefined || !Number.isFinite(used)) return 'n/a';
  return `${used.toFixed(1)} s (${((used / seconds) * 100).toFixed(0)} %)`;
}

function pct(used: number | undefined, seconds: number): string {
  return used === undefined || !Number.isFinite(used) ? 'n/a' : ((used / seconds) * 100).toFixed(0);
}

const minus = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a - b);

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${commit}+dirty` : commit;
  } catch {
    return '?';
  }
}

async function bench(args: BenchArgs, cleanup: Cleanup): Promise<void> {
  const dbUrl = await prepareDatabase(args, cleanup);
  await resetNamedEventQueue(args, cleanup);
  const dbLabel = /^mysql2?:/i.test(dbUrl) ? 'mysql' : 'sqlite';
  console.log(`bench:ingest  ${mask(args.broker)} -> ${dbLabel} ${mask(dbUrl)}`);
  console.log(`load          ${describeLoad(args)}, task.multi of ${args.batch} events, collector --flush-interval ${args.flushInterval}`);

  // The collector.
  const nodeFlags = [...args.nodeArgs, ...(process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean), '--enable-source-maps'];
  const collectorFlags = [
    '--broker',
    args.broker,
    '--db',
    dbUrl,
    '--no-enable-events',
    '--max-task-age',
    '0',
    '--flush-interval',
    args.flushInterval,
    ...args.collectorArgs,
  ];
  // The malloc settings of `npm run collector` and the image (README, Memory), unless the caller set its own.
  const env = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '65536', ...process.env };
  const collector = spawn(process.execPath, [...nodeFlags, COLLECTOR, ...collectorFlags], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanup.add(() => stopChild(collector, 30_000));
  let collectorLog = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      collectorLog += chunk.toString();
      if (collectorLog.includes('subscribed to') || collectorLog.includes('consuming celeryev via queue')) resolve();
    };
    collector.stdout.on('data', onData);
    collector.stderr.on('data', onData);
    collector.on('exit', (code, signal) => reject(new Error(`collector exited (${signal ?? code}):\n${collectorLog}`)));
    setTimeout(() => reject(new Error(`collector not consuming after 60 s:\n${collectorLog}`)), 60_000).unref();
  });
  await ready;
  const collectorPid = collector.pid!;
  console.log(`collector     pid ${collectorPid}: node ${nodeFlags.join(' ')} dist/collector.js ${collectorFlags.map(mask).join(' ')}`);

  const reader = await openDatabase(dbUrl);
  cleanup.add(() => reader.close());
  if (args.withoutSearchIndex) {
    // What the text index costs: the collector has migrated; no event has arrived yet.
    const statements =
      reader.dialect === 'mysql'
        ? ['ALTER TABLE tasks DROP INDEX tasks_search']
        : ['DROP TRIGGER tasks_search_queue_insert', 'DROP TRIGGER tasks_search_queue_update'];
    for (const statement of statements) await sql.raw(statement).execute(reader.db);
    console.log('search index  dropped (--without-search-index)');
  }
  const probes: EventPublisher = await openEventPublisher(args.broker, 'stalk-bench-probes');
  cleanup.add(() => probes.close());
  const brokerSource = await brokerCpu(args, cleanup);
  const dbServerSource = databaseServerCpu(dbUrl);

  // The generator, in a process of its own.
  const generator = spawn(process.execPath, ['--import', 'tsx', GENERATOR, ...generatorFlags(args)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanup.add(() => stopChild(generator, 30_000));
  let publishedSoFar = 0;
  let generatorStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (generatorStarted = resolve));
  const finished = new Promise<GeneratorDone>((resolve, reject) => {
    createInterface({ input: generator.stdout }).on('line', (text) => {
      let line: GeneratorLine;
      try {
        line = JSON.parse(text) as GeneratorLine;
      } catch {
        return console.log(`generator: ${text}`);
      }
      if (line.type === 'started') generatorStarted();
      else if (line.type === 'progress') publishedSoFar = line.events;
      else resolve(line);
    });
    generator.on('exit', (code, signal) => reject(new Error(`generator exited (${signal ?? code}) before reporting`)));
  });
  await Promise.race([started, finished]);
  const generatorPid = generator.pid!;

  const snapshot = async (): Promise<CpuSnapshot> => {
    const own = process.cpuUsage();
    return {
      at: performance.now(),
      collector: cpuSeconds(collectorPid),
      broker: await brokerSource.read(),
      dbServer: await dbServerSource?.read(),
      generator: cpuSeconds(generatorPid),
      bench: (own.user + own.system) / 1e6,
      machine: machineBusySeconds(),
    };
  };
  const first = await snapshot();
  const t0 = first.at;

  // Probes: a task-sent with a known id every 200 ms while the generator
  // runs; lag = publish -> its row readable.
  const lags: number[] = [];
  const pending = new Map<string, number>();
  let generating = true;
  let done: GeneratorDone | undefined;
  const probeLoop = background(async () => {
    for (let n = 0; generating && !interrupt.signal.aborted; n++) {
      const uuid = `probe-${n}-${randomUUID()}`;
      pending.set(uuid, performance.now());
      probes.publish('task.sent', taskSent(uuid, 0, PROBE_NAME), CLIENT);
      await sleep(PROBE_INTERVAL_MS);
    }
  });
  const poll = async () => {
    if (pending.size === 0) return;
    const found = await reader.db
      .selectFrom('tasks')
      .select('uuid')
      .where('uuid', 'in', [...pending.keys()])
      .execute();
    const now = performance.now();
    for (const { uuid } of found) {
      lags.push(now - pending.get(uuid)!);
      pending.delete(uuid);
    }
  };
  let polling = true;
  const pollLoop = background(async () => {
    while (polling && !interrupt.signal.aborted) {
      await poll();
      await sleep(10);
    }
    await poll();
  });

  // Count what is stored: every second while publishing, every 250 ms after.
  let stored = 0;
  let cursor = 0;
  let lastGain = first;
  const count = async () => {
    const { events, lastId } = await countStoredEvents(reader, cursor);
    cursor = lastId;
    if (events > 0) {
      stored += events;
      lastGain = await snapshot();
    }
  };
  let shown = first;
  let shownStored = 0;
  const showProgress = async () => {
    const now = await snapshot();
    const seconds = (now.at - shown.at) / 1000;
    const memory = memoryMiB(collectorPid);
    console.log(
      `  ${((now.at - t0) / 1000).toFixed(0).padStart(4)} s  published ${String(done?.events ?? publishedSoFar).padStart(8)}  stored ${String(stored).padStart(8)} (+${Math.round((stored - shownStored) / seconds)}/s)` +
        `  RSS ${memory ? memory.rss.toFixed(0) : '?'} MiB  CPU % collector ${pct(minus(now.collector, shown.collector), seconds)}` +
        ` broker ${pct(minus(now.broker, shown.broker), seconds)} generator ${pct(minus(now.generator, shown.generator), seconds)}`,
    );
    shown = now;
    shownStored = stored;
  };
  void finished.then(
    (report) => {
      done = report;
      generating = false;
    },
    () => (generating = false),
  );
  // Where the collector's memory is at its highest RSS, sampled twice a second.
  let peakSplit: MemorySplit | undefined;
  const splitSampler = setInterval(() => {
    const split = memorySplit(collectorPid);
    if (split && split.rss > (peakSplit?.rss ?? 0)) peakSplit = split;
  }, 500);
  let ticks = 0;
  while (generating && !interrupt.signal.aborted) {
    await sleep(1000);
    await count();
    if (++ticks % 5 === 0) await showProgress();
  }
  done = await finished;
  const published = await snapshot();
  await probeLoop.join();

  // Wait until every event is stored, or until progress stops for 20 s.
  while (stored < done.events && !interrupt.signal.aborted && performance.now() - Math.max(lastGain.at, published.at) < STALL_MS) {
    await sleep(250);
    await count();
    if (performance.now() - shown.at >= 5000) await showProgress();
  }
  // The run ends with the last event stored, or with the last publish if that came later.
  const end = lastGain.at > published.at ? lastGain : published;
  polling = false;
  await pollLoop.join();

  // The final figures, from full counts.
  stored = (await countStoredEvents(reader)).events;
  clearInterval(splitSampler);
  const memory = memoryMiB(collectorPid);
  await stopChild(collector, 30_000);
  const timelineRows = Number(
    (
      await reader.db
        .selectFrom('task_events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('task_id', 'not like', 'probe-%')
        .executeTakeFirstOrThrow()
    ).n,
  );
  const states = await reader.db
    .selectFrom('tasks')
    .select(['state'])
    .select((eb) => eb.fn.countAll().as('n'))
    .where('name', '<>', PROBE_NAME)
    .groupBy('state')
    .orderBy('state')
    .execute();
  const tasks = states.reduce((sum, s) => sum + Number(s.n), 0);
  const status = await reader.db.selectFrom('collector_status').select('dropped').orderBy('updated_at', 'desc').executeTakeFirst();

  // The report.
  const runSeconds = (end.at - t0) / 1000;
  const offered = done.events / done.seconds;
  const taken = stored / runSeconds;
  const lost = done.events - stored;
  const lostPct = done.events > 0 ? (lost / done.events) * 100 : 0;
  const sorted = [...lags].sort((a, b) => a - b);
  const [p50, p95, p99, max] = [50, 95, 99, 100].map((p) => percentile(sorted, p).toFixed(0));
  const cpu = {
    collector: minus(end.collector, first.collector),
    broker: minus(end.broker, first.broker),
    dbServer: minus(end.dbServer, first.dbServer),
    generator: done.cpu.user + done.cpu.system,
    bench: end.bench - first.bench,
    machine: minus(end.machine, first.machine),
  };
  const known = [cpu.collector, cpu.broker, cpu.dbServer, cpu.generator, cpu.bench].reduce<number>((sum, v) => sum + (v ?? 0), 0);
  const other = cpu.machine === undefined ? undefined : Math.max(0, cpu.machine - known);
  const undelivered =
    done.undelivered > 0
      ? `, ${done.undelivered} of them delivered to no one (${brokerKind(args.broker) === 'redis' ? 'PUBLISH answered 0' : 'returned unroutable'})`
      : '';
  const messages = done.messages.sent + done.messages.multi;

  console.log('');
  console.log(
    `offered            ${done.events} events in ${done.seconds.toFixed(1)} s = ${Math.round(offered)} events/s` +
      `${args.burst === undefined && args.rate > 0 ? ` (target ${args.rate})` : ''}; ${messages} messages (${done.messages.sent} task.sent, ${done.messages.multi} task.multi)${undelivered}`,
  );
  console.log(
    `                   generator waited ${done.backpressure.seconds.toFixed(1)} s on socket back-pressure (${done.backpressure.waits} times)` +
      `${args.rate > 0 && args.burst === undefined ? `, at worst ${done.behindSeconds.toFixed(1)} s behind schedule` : ''}${done.stopped ? '; stopped early' : ''}`,
  );
  console.log(
    `taken              ${stored} events in ${runSeconds.toFixed(1)} s = ${Math.round(taken)} events/s (first publish to last event stored)`,
  );
  console.log(`lost               ${lost} events (${lostPct.toFixed(3)} %)`);
  const disconnects = collectorLog.split('\n').filter((line) => line.includes('lost connection to')).length;
  // BENCH_COLLECTOR_LOG=<file>: the collector's whole output (with --collector-args "--log-level debug": its memory and flush lines).
  if (process.env.BENCH_COLLECTOR_LOG) (await import('node:fs')).writeFileSync(process.env.BENCH_COLLECTOR_LOG, collectorLog);
  console.log(`collector dropped  ${status?.dropped ?? '(no status row)'}; it lost the broker connection ${disconnects} times`);
  if (disconnects > 0 && brokerKind(args.broker) === 'redis') {
    console.log(
      '                   (Redis closes a subscriber whose output buffer passes client-output-buffer-limit pubsub: what it held is lost)',
    );
  }
  console.log(
    `lag publish->row   p50 ${p50} ms, p95 ${p95} ms, p99 ${p99} ms, max ${max} ms (${sorted.length} probes${pending.size > 0 ? `, ${pending.size} never stored` : ''})`,
  );
  console.log(`collector RSS      peak ${memory ? memory.peak.toFixed(0) : '?'} MiB, at end ${memory ? memory.rss.toFixed(0) : '?'} MiB`);
  if (peakSplit) {
    const mib = (n: number) => `${n.toFixed(0)} MiB`;
    console.log(
      `  at its highest    ${mib(peakSplit.rss)}: V8 heaps ${mib(peakSplit.v8)} (256 KiB pages, all threads), node binary ${mib(peakSplit.binary)}, malloc ${mib(peakSplit.malloc)} (SQLite caches, buffers), other ${mib(peakSplit.other)}`,
    );
  }
  console.log(
    `rows stored        ${tasks} tasks (${states.map((s) => `${s.state} ${s.n}`).join(', ')}), ${stored} task events in ${timelineRows} timeline rows`,
  );
  console.log(`CPU over ${runSeconds.toFixed(1)} s    seconds (% of one core), first publish to last event stored:`);
  console.log(`  collector        ${cpuText(cpu.collector, runSeconds)}  node, all threads`);
  console.log(`  broker           ${cpuText(cpu.broker, runSeconds)}  ${brokerSource.label}, all its clients`);
  if (dbServerSource) console.log(`  database server  ${cpuText(cpu.dbServer, runSeconds)}  ${dbServerSource.label}, all its clients`);
  console.log(
    `  generator        ${cpuText(cpu.generator, runSeconds)}  its own count over its ${done.seconds.toFixed(1)} s of publishing`,
  );
  console.log(`  bench            ${cpuText(cpu.bench, runSeconds)}  this process: probes and counting`);
  console.log(
    `  rest of machine  ${cpuText(other, runSeconds)}  other processes; the machine was busy ${cpuText(cpu.machine, runSeconds)} in all`,
  );
  if (other !== undefined && other / runSeconds > 0.2)
    console.log(
      `                   (other processes took ${pct(other, runSeconds)} % of a core: the figures above are not those of an idle machine)`,
    );
  const problems = collectorLog.split('\n').filter((line) => / (WARN|ERROR) /.test(line));
  if (problems.length > 0) console.log(`collector warnings (${problems.length}):\n  ${problems.slice(0, 10).join('\n  ')}`);

  const load = args.burst !== undefined ? `burst ${done.events}` : `${args.rate > 0 ? args.rate : 'max'}`;
  console.log('');
  console.log(
    '| commit | broker | db | load ev/s | events | offered ev/s | taken ev/s | lost | lag p50/p95/p99 ms | RSS peak MiB | CPU % collector/broker/generator |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  console.log(
    `| ${gitCommit()} | ${brokerKind(args.broker)} | ${dbLabel} | ${load} | ${done.events} | ${Math.round(offered)} | ${Math.round(taken)} | ${lost} (${lostPct.toFixed(2)} %) | ${p50}/${p95}/${p99} | ${memory ? memory.peak.toFixed(0) : '?'} | ${pct(cpu.collector, runSeconds)}/${pct(cpu.broker, runSeconds)}/${pct(cpu.generator, runSeconds)} |`,
  );
}

async function main(): Promise<void> {
  const args = readArgs(process.argv.slice(2));
  const cleanup = new Cleanup();
  process.on('SIGINT', () => {
    if (interrupt.signal.aborted) return;
    interrupt.abort();
    console.error('interrupted: stopping the generator and the collector');
    void cleanup.run().finally(() => process.exit(130));
  });
  try {
    await bench(args, cleanup);
  } catch (error) {
    // After Ctrl-C the run fails as its connections close; the handler exits.
    if (interrupt.signal.aborted) return;
    throw error;
  } finally {
    if (!interrupt.signal.aborted) await cleanup.run();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
