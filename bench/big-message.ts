// npm run bench:big-message -- [--size 14MiB] [--burst 10] [--max-event-bytes 32MiB] [--broker redis://localhost:6379/15]
//                              [--settle 20] [--node-args "--expose-gc"]
//
// What one oversized broker message does to the collector's memory. Starts the
// built collector (dist/collector.js) against Redis db 15 and a temporary
// SQLite file, lets it settle, then publishes, in Celery's Redis wire format:
//   1. one envelope of --size bytes (a task.multi whose task-received carries
//      a huge args repr), followed by one small good event;
//   2. a burst of --burst such envelopes back to back, followed by one small
//      good event.
// It samples the collector's RSS (/proc/<pid>/status VmRSS) every 100 ms and
// prints, for each phase: the baseline before, the peak, and RSS 1, 2, 5, 10
// and --settle seconds after the last message; then whether the good events
// were stored and what the collector counted as dropped. The collector's
// status lines (--log-level debug) give the heap / external / array-buffer
// split at the end. The collector is stopped by its pid at the end.
// --node-args: the collector's node flags; by default `--expose-gc`, as
// `npm run collector` and the container run it (`--node-args ""`: without).

import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBytes } from '../src/options';
import { openDatabase } from '../worker-collector/store/db';
import { CLIENT, envelope, RespPublisher, taskSent, WORKER } from './celery-wire';

interface Args {
  size: number;
  burst: number;
  maxEventBytes: string | undefined;
  broker: string;
  settle: number;
  nodeArgs: string[];
}

/** A size as the options read it (src/options.ts: 1048576, 512KiB, 14MiB). */
function bytes(text: string): number {
  const n = parseBytes(text);
  if (n === undefined) throw new Error(`not a size: ${text}`);
  return n;
}

function readArgs(argv: string[]): Args {
  const args: Args = {
    size: 14 * 1024 * 1024,
    burst: 10,
    maxEventBytes: undefined,
    broker: 'redis://localhost:6379/15',
    settle: 20,
    nodeArgs: ['--expose-gc'],
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.replace(/^--/, '').split('=', 2) as [string, string | undefined];
    const value = inline ?? argv[++i] ?? '';
    if (flag === 'size') args.size = bytes(value);
    else if (flag === 'burst') args.burst = Number(value);
    else if (flag === 'max-event-bytes') args.maxEventBytes = value;
    else if (flag === 'broker') args.broker = value;
    else if (flag === 'settle') args.settle = Number(value);
    else if (flag === 'node-args') args.nodeArgs = value.split(' ').filter(Boolean);
    else throw new Error(`unknown option --${flag}`);
  }
  return args;
}

function rssMiB(pid: number): number {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    return kb / 1024;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A task.multi envelope of about `size` bytes: one task-received whose args repr fills it. */
function bigEnvelope(size: number): string {
  const uuid = randomUUID();
  // base64 grows the body by 4/3; leave room for the envelope's own fields.
  const argsLength = Math.max(0, Math.floor(((size - 600) * 3) / 4) - 400);
  const event = {
    hostname: WORKER,
    utcoffset: 0,
    pid: 4242,
    clock: 1,
    timestamp: Date.now() / 1000,
    type: 'task-received',
    uuid,
    name: 'bench.big',
    args: `('${'x'.repeat(argsLength)}',)`,
    kwargs: '{}',
    retries: 0,
  };
  return envelope(JSON.stringify([event]), 'task.multi', WORKER);
}

async function main(): Promise<void> {
  const args = readArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'stalk-big-'));
  const dbUrl = join(dir, 'bench.db');
  const db = Number(new URL(args.broker).pathname.slice(1) || 0);
  const flags = ['--broker', args.broker, '--db', dbUrl, '--no-enable-events', '--max-task-age', '0', '--log-level', 'debug'];
  if (args.maxEventBytes) flags.push('--max-event-bytes', args.maxEventBytes);
  const collector: ChildProcess = spawn(process.execPath, [...args.nodeArgs, '--enable-source-maps', 'dist/collector.js', ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const onData = (chunk: Buffer) => void (log += chunk.toString());
  collector.stdout?.on('data', onData);
  collector.stderr?.on('data', onData);
  const stop = async () => {
    if (collector.exitCode !== null || collector.signalCode !== null) return;
    collector.kill('SIGTERM');
    const exited = new Promise((resolve) => collector.once('exit', resolve));
    if ((await Promise.race([exited, sleep(10_000).then(() => 'timeout')])) === 'timeout') collector.kill('SIGKILL');
  };
  try {
    for (let waited = 0; !log.includes('subscribed to'); waited += 50) {
      if (waited > 30_000 || collector.exitCode !== null) throw new Error(`collector did not subscribe:\n${log}`);
      await sleep(50);
    }
    const pid = collector.pid!;
    const publisher = await RespPublisher.open(args.broker);
    const channel = (key: string) => `/${db}.celeryev/${key}`;
    const samples: { at: number; rss: number }[] = [];
    const sampler = setInterval(() => samples.push({ at: performance.now(), rss: rssMiB(pid) }), 100);

    console.log(
      `bench:big-message  size=${(args.size / 1048576).toFixed(1)} MiB  burst=${args.burst}  --max-event-bytes ${args.maxEventBytes ?? '(default)'}  node ${args.nodeArgs.join(' ') || '(no flags)'}`,
    );
    // Warm up: a few normal events, so the baseline includes a live pipeline.
    for (let i = 0; i < 200; i++) publisher.publish(channel('task.sent'), envelope(taskSent(randomUUID(), i), 'task.sent', CLIENT));
    await publisher.settled();
    await sleep(6_000);

    const good: string[] = [];
    const phase = async (label: string, count: number) => {
      const baseline = rssMiB(pid);
      const started = performance.now();
      const message = bigEnvelope(args.size);
      for (let i = 0; i < count; i++) {
        if (!publisher.publish(channel('task.multi'), message)) await publisher.drain();
      }
      const uuid = randomUUID();
      good.push(uuid);
      publisher.publish(channel('task.sent'), envelope(taskSent(uuid, 1), 'task.sent', CLIENT));
      await publisher.settled();
      const sent = performance.now();
      const after: string[] = [];
      for (const seconds of [1, 2, 5, 10, args.settle]) {
        const due = sent + seconds * 1000;
        if (due > performance.now()) await sleep(due - performance.now());
        after.push(`+${seconds}s ${rssMiB(pid).toFixed(0)}`);
      }
      const peak = Math.max(...samples.filter((s) => s.at >= started).map((s) => s.rss));
      console.log(`${label.padEnd(22)} baseline ${baseline.toFixed(0)} MiB  peak ${peak.toFixed(0)} MiB  after: ${after.join(', ')} MiB`);
      const status = log
        .split('\n')
        .filter((line) => line.includes('status:'))
        .pop();
      if (status) console.log(`${''.padEnd(22)} collector's last status: ${status.replace(/^.*status: /, '')}`);
    };
    await phase('one message', 1);
    await phase(`burst of ${args.burst}`, args.burst);
    clearInterval(sampler);

    const reader = await openDatabase(dbUrl);
    const stored = await reader.db.selectFrom('tasks').select('uuid').where('uuid', 'in', good).execute();
    const status = await reader.db.selectFrom('collector_status').select('dropped').executeTakeFirst();
    await reader.close();
    publisher.close();
    console.log(`good events stored     ${stored.length} of ${good.length}; collector dropped: ${status?.dropped ?? '{}'}`);
    const lastStatus = log
      .split('\n')
      .filter((line) => line.includes('status:'))
      .pop();
    if (lastStatus) console.log(`last status line       ${lastStatus.replace(/^.*status: /, '')}`);
    const problems = log.split('\n').filter((line) => / (WARN|ERROR) /.test(line));
    if (problems.length > 0) console.log(`collector warnings:\n  ${problems.slice(0, 10).join('\n  ')}`);
  } finally {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
