// npm run bench:ingest -- [--tasks 1000000] [--rate 60000] [--batch 10] [--db <url>] [--broker redis://localhost:6379/15]
//
// Starts the real collector (dist/collector.js, built by `npm run build`) as a child process,
// publishes task events in Celery's Redis wire format (the kombu envelope,
// base64 JSON bodies; `task.sent` from a client one per message, worker
// events in `task.multi` batches as a busy worker sends them), and prints:
// events/s taken, events lost, end-to-end lag p50/p95 (publish -> row
// visible in the database, measured with probe tasks), collector RSS, and
// rows stored. The generator runs in this process, on the same machine.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openDatabase } from '../worker-collector/store/db';
import { CLIENT, envelope, RespPublisher, taskFinished, taskReceived, taskSent, taskStarted, WORKER } from './celery-wire';

interface BenchArgs {
  tasks: number;
  rate: number;
  batch: number;
  db: string | undefined;
  broker: string;
  flushInterval: string;
  keep: boolean;
}

function readArgs(argv: string[]): BenchArgs {
  const args: BenchArgs = {
    tasks: 1_000_000,
    rate: 60_000,
    batch: 10,
    db: undefined,
    broker: 'redis://localhost:6379/15',
    flushInterval: '500ms',
    keep: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.replace(/^--/, '').split('=', 2) as [string, string | undefined];
    const value = inline ?? argv[++i] ?? '';
    switch (flag) {
      case 'tasks':
        args.tasks = Number(value);
        break;
      case 'rate':
        args.rate = Number(value);
        break;
      case 'batch':
        args.batch = Math.max(1, Number(value));
        break;
      case 'db':
        args.db = value;
        break;
      case 'broker':
        args.broker = value;
        break;
      case 'flush-interval':
        args.flushInterval = value;
        break;
      case 'keep':
        args.keep = true;
        if (inline === undefined) i--;
        break;
      default:
        throw new Error(`unknown option --${flag}`);
    }
  }
  return args;
}

const EVENTS_PER_TASK = 4;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return kb / 1024;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const args = readArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'stalk-bench-'));
  const dbUrl = args.db ?? join(dir, 'bench.db');
  const db = Number(new URL(args.broker).pathname.slice(1) || 0);
  console.log(`bench:ingest  tasks=${args.tasks}  events=${args.tasks * EVENTS_PER_TASK}  rate=${args.rate || 'full speed'} ev/s  batch=${args.batch}  db=${dbUrl}`);

  const collector: ChildProcess = spawn(
    process.execPath,
    // BENCH_NODE_ARGS: extra node flags for the collector, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), '--enable-source-maps', 'dist/collector.js', '--broker', args.broker, '--db', dbUrl, '--no-enable-events', '--max-task-age', '0', '--flush-interval', args.flushInterval],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let collectorLog = '';
  const subscribed = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      collectorLog += chunk.toString();
      if (collectorLog.includes('subscribed to')) resolve();
    };
    collector.stdout?.on('data', onData);
    collector.stderr?.on('data', onData);
    collector.on('exit', (code) => reject(new Error(`collector exited (${code}):\n${collectorLog}`)));
  });
  await subscribed;
  const pid = collector.pid!;

  const reader = await openDatabase(dbUrl);
  const publisher = await RespPublisher.open(args.broker);
  const channel = (key: string) => `/${db}.celeryev/${key}`;
  const sentChannel = channel('task.sent');
  const multiChannel = channel('task.multi');

  let peakRss = 0;
  const rssTimer = setInterval(() => {
    peakRss = Math.max(peakRss, rssMiB(pid));
  }, 250);

  // Probes: a task-sent with a known id every 200 ms; lag = publish -> row readable.
  const lags: number[] = [];
  const pending = new Map<string, number>();
  let probing = true;
  const probeLoop = (async () => {
    let n = 0;
    while (probing) {
      const uuid = `probe-${n++}-${randomUUID()}`;
      pending.set(uuid, performance.now());
      publisher.publish(sentChannel, envelope(taskSent(uuid, 0, 'bench.probe'), 'task.sent', CLIENT));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  let probingStoppedAt = 0;
  const pollLoop = (async () => {
    while (probing || pending.size > 0) {
      if (!probing && probingStoppedAt === 0) probingStoppedAt = performance.now();
      // Probes not stored 30 s after the end count as lost, not as lag.
      if (probingStoppedAt > 0 && performance.now() - probingStoppedAt > 30_000) break;
      if (pending.size > 0) {
        const ids = [...pending.keys()];
        const found = await reader.db.selectFrom('tasks').select('uuid').where('uuid', 'in', ids).execute();
        const now = performance.now();
        for (const { uuid } of found) {
          lags.push(now - pending.get(uuid)!);
          pending.delete(uuid);
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  // The generator: each 10 ms tick starts the tasks due (a client's
  // task.sent each) and sends the worker events of the previous tick's tasks
  // in task.multi batches, as a busy worker buffers them.
  const started = performance.now();
  let published = 0;
  let next = 0;
  let inFlight: { uuid: string; n: number }[] = [];
  const tickMs = 10;
  let multi: string[] = [];
  let full = false;
  const flushMulti = () => {
    if (multi.length === 0) return;
    full = !publisher.publish(multiChannel, envelope(`[${multi.join(', ')}]`, 'task.multi', WORKER)) || full;
    multi = [];
  };
  while (next < args.tasks || inFlight.length > 0) {
    const tickStart = performance.now();
    const elapsed = (tickStart - started) / 1000;
    const due = args.rate > 0 ? Math.min(args.tasks, Math.floor((elapsed * args.rate) / EVENTS_PER_TASK)) : Math.min(args.tasks, next + 2_000);
    const starting: { uuid: string; n: number }[] = [];
    while (next < due) {
      const uuid = randomUUID();
      full = !publisher.publish(sentChannel, envelope(taskSent(uuid, next), 'task.sent', CLIENT)) || full;
      starting.push({ uuid, n: next });
      next += 1;
    }
    for (const task of inFlight) {
      for (const event of [taskReceived(task.uuid, task.n), taskStarted(task.uuid), taskFinished(task.uuid, task.n)]) {
        multi.push(event);
        if (multi.length >= args.batch) flushMulti();
      }
    }
    flushMulti();
    published += starting.length + inFlight.length * 3;
    inFlight = starting;
    if (full) {
      await publisher.drain();
      full = false;
    }
    // Always yield, so the socket gets written and the probes get polled.
    const spent = performance.now() - tickStart;
    await new Promise((r) => (args.rate > 0 && spent < tickMs ? setTimeout(r, tickMs - spent) : setImmediate(r)));
  }
  await publisher.settled();
  const publishSeconds = (performance.now() - started) / 1000;

  // Wait until every event is stored, or until progress stops for 20 s.
  const expectedEvents = args.tasks * EVENTS_PER_TASK;
  // Each task_events row holds a JSON array: one flush's events of one task.
  const length = reader.dialect === 'mysql' ? sql`JSON_LENGTH(events)` : sql`json_array_length(events)`;
  const countEvents = async () =>
    Number(
      (
        await reader.db
          .selectFrom('task_events')
          .select(sql<number>`COALESCE(SUM(${length}), 0)`.as('n'))
          .where('task_id', 'not like', 'probe-%')
          .executeTakeFirstOrThrow()
      ).n,
    );
  let stored = await countEvents();
  let lastProgress = performance.now();
  while (stored < expectedEvents && performance.now() - lastProgress < 20_000) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await countEvents();
    if (now > stored) lastProgress = performance.now();
    stored = now;
  }
  const doneSeconds = (performance.now() - started) / 1000;
  probing = false;
  await probeLoop;
  await pollLoop;
  clearInterval(rssTimer);

  const timelineRows = Number((await reader.db.selectFrom('task_events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const tasks = Number(
    (await reader.db.selectFrom('tasks').select((eb) => eb.fn.countAll().as('n')).where('name', '<>', 'bench.probe').executeTakeFirstOrThrow()).n,
  );
  const finalStates = await reader.db
    .selectFrom('tasks')
    .select(['state'])
    .select((eb) => eb.fn.countAll().as('n'))
    .where('name', '<>', 'bench.probe')
    .groupBy('state')
    .execute();
  const status = await reader.db.selectFrom('collector_status').selectAll().executeTakeFirst();
  const finalRss = rssMiB(pid);
  collector.kill('SIGTERM');
  await new Promise((r) => collector.once('exit', r));
  await sql`select 1`.execute(reader.db);
  await reader.close();
  publisher.close();

  const sorted = [...lags].sort((a, b) => a - b);
  const lost = expectedEvents - stored;
  console.log('');
  console.log(`published          ${published} events in ${publishSeconds.toFixed(1)} s = ${Math.round(published / publishSeconds)} events/s offered`);
  console.log(`stored             ${stored} events in ${doneSeconds.toFixed(1)} s = ${Math.round(stored / doneSeconds)} events/s taken`);
  console.log(`lost               ${lost} events (${((lost / expectedEvents) * 100).toFixed(3)} %); collector dropped: ${status?.dropped ?? '{}'}`);
  console.log(`lag publish->row   p50 ${percentile(sorted, 50).toFixed(0)} ms, p95 ${percentile(sorted, 95).toFixed(0)} ms, max ${percentile(sorted, 100).toFixed(0)} ms (${sorted.length} probes)`);
  console.log(`collector RSS      peak ${peakRss.toFixed(0)} MiB, at end ${finalRss.toFixed(0)} MiB`);
  const problems = collectorLog.split('\n').filter((line) => / (WARN|ERROR) /.test(line));
  if (problems.length > 0) console.log(`collector warnings:\n  ${problems.slice(0, 10).join('\n  ')}`);
  console.log(`rows stored        ${tasks} tasks (${finalStates.map((s) => `${s.state} ${s.n}`).join(', ')}), ${stored} task events in ${timelineRows} timeline rows`);
  if (!args.keep && !args.db) rmSync(dir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
