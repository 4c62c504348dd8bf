// The ingest benchmark's load, in a process of its own (bench/ingest.ts
// spawns it; it also runs alone):
//
//   node --import tsx bench/generator.ts --broker redis://localhost:6379/15 [--rate 60000] [--batch 10]
//                                        [--tasks N] [--duration S] [--burst N]
//
// Celery task events in the real wire format (celery-wire.ts): per task, a
// client's task-sent (one message each), then a busy worker's task-received,
// task-started and task-succeeded (one in ten task-failed) in task.multi
// batches of --batch events. --rate paces in events/s (0: as fast as the
// broker takes them); it stops after --tasks tasks or --duration seconds,
// whichever comes first; --burst N publishes N events (N/4 tasks) at full
// speed. SIGTERM stops it early, still finishing the tasks already sent.
//
// Writes JSON lines on stdout: {"type":"started"} once connected, a
// "progress" line every second, and a "done" line with what the broker took:
// events and messages published (counted once the broker acknowledged them:
// Redis answered every PUBLISH, RabbitMQ answered a round trip after the
// last one), the seconds from first publish to that acknowledgement, the
// messages delivered to no one, the time spent waiting on socket back-pressure,
// and this process's CPU seconds over the same span.

import { randomUUID } from 'node:crypto';
import { CLIENT, EVENTS_PER_TASK, openEventPublisher, taskFinished, taskReceived, taskSent, taskStarted, WORKER } from './celery-wire';

interface GeneratorArgs {
  broker: string;
  /** Events per second; 0: full speed. */
  rate: number;
  tasks: number;
  /** Seconds; 0: no limit. */
  duration: number;
  batch: number;
}

export interface GeneratorProgress {
  type: 'progress';
  seconds: number;
  events: number;
}

export interface GeneratorDone {
  type: 'done';
  tasks: number;
  events: number;
  messages: { sent: number; multi: number };
  /** First publish to the broker's acknowledgement of the last. */
  seconds: number;
  /** Messages the broker took but delivered to no subscriber or queue. */
  undelivered: number;
  backpressure: { waits: number; seconds: number };
  /** Seconds behind the --rate schedule, at worst. */
  behindSeconds: number;
  cpu: { user: number; system: number };
  stopped: boolean;
}

export type GeneratorLine = { type: 'started'; pid: number } | GeneratorProgress | GeneratorDone;

function readGeneratorArgs(argv: string[]): GeneratorArgs {
  const args: GeneratorArgs = {
    broker: 'redis://localhost:6379/15',
    rate: 60_000,
    tasks: Number.POSITIVE_INFINITY,
    duration: 0,
    batch: 10,
  };
  let tasks: number | undefined;
  let burst: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const [, flag = '', inline] = /^-*([^=]*)(?:=(.*))?$/s.exec(argv[i]!)!;
    const value = inline ?? argv[++i] ?? '';
    const number = () => {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag}: not a non-negative number: '${value}'`);
      return n;
    };
    if (flag === 'broker') args.broker = value;
    else if (flag === 'rate') args.rate = number();
    else if (flag === 'tasks') tasks = Math.floor(number());
    else if (flag === 'duration') args.duration = number();
    else if (flag === 'burst') burst = Math.floor(number());
    else if (flag === 'batch') args.batch = Math.max(1, Math.floor(number()));
    else throw new Error(`unknown option --${flag}`);
  }
  if (burst !== undefined) {
    args.rate = 0;
    args.tasks = Math.ceil(burst / EVENTS_PER_TASK);
  } else if (tasks !== undefined) args.tasks = tasks;
  else if (args.duration === 0) args.tasks = 1_000_000;
  return args;
}

const TICK_MS = 10;
/** Tasks started in one tick at most (full speed, or catching up after a stall): about 2 MB of messages. */
const MAX_TASKS_PER_TICK = 2_000;

function emit(line: GeneratorLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function main(): Promise<void> {
  const args = readGeneratorArgs(process.argv.slice(2));
  const publisher = await openEventPublisher(args.broker, 'stalk-bench-generator');
  let stopping = false;
  process.on('SIGTERM', () => (stopping = true));
  process.on('SIGINT', () => (stopping = true));

  emit({ type: 'started', pid: process.pid });
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  let events = 0;
  let next = 0;
  const messages = { sent: 0, multi: 0 };
  const backpressure = { waits: 0, seconds: 0 };
  let behindSeconds = 0;
  let full = false;
  const publish = (routingKey: 'task.sent' | 'task.multi', body: string, hostname: string) => {
    if (!publisher.publish(routingKey, body, hostname)) full = true;
  };
  let multi: string[] = [];
  const flushMulti = () => {
    if (multi.length === 0) return;
    publish('task.multi', `[${multi.join(', ')}]`, WORKER);
    messages.multi += 1;
    multi = [];
  };
  let lastProgress = started;

  // Each tick starts the tasks due (a client's task.sent each) and sends the
  // worker events of the previous tick's tasks in task.multi batches, as a
  // busy worker buffers them.
  const starts = (elapsed: number) => !stopping && next < args.tasks && (args.duration === 0 || elapsed < args.duration);
  let inFlight: { uuid: string; n: number }[] = [];
  while (inFlight.length > 0 || starts((performance.now() - started) / 1000)) {
    const tickStart = performance.now();
    const elapsed = (tickStart - started) / 1000;
    const open = starts(elapsed);
    const scheduled = args.rate > 0 ? Math.floor((elapsed * args.rate) / EVENTS_PER_TASK) : Number.POSITIVE_INFINITY;
    const due = open ? Math.min(args.tasks, scheduled, next + MAX_TASKS_PER_TICK) : next;
    if (args.rate > 0 && open && scheduled > due)
      behindSeconds = Math.max(behindSeconds, ((Math.min(scheduled, args.tasks) - due) * EVENTS_PER_TASK) / args.rate);
    const starting: { uuid: string; n: number }[] = [];
    while (next < due) {
      const uuid = randomUUID();
      publish('task.sent', taskSent(uuid, next), CLIENT);
      messages.sent += 1;
      starting.push({ uuid, n: next });
      next += 1;
    }
    for (const task of inFlight) {
      multi.push(taskReceived(task.uuid, task.n), taskStarted(task.uuid), taskFinished(task.uuid, task.n));
      if (multi.length >= args.batch) flushMulti();
    }
    flushMulti();
    events += starting.length + inFlight.length * 3;
    inFlight = starting;
    if (full) {
      const waitStart = performance.now();
      await publisher.drain();
      backpressure.waits += 1;
      backpressure.seconds += (performance.now() - waitStart) / 1000;
      full = false;
    }
    const now = performance.now();
    if (now - lastProgress >= 1000) {
      lastProgress = now;
      emit({ type: 'progress', seconds: (now - started) / 1000, events });
    }
    // Always yield, so the socket gets written and replies read.
    const spent = now - tickStart;
    await new Promise((r) => (args.rate > 0 && spent < TICK_MS ? setTimeout(r, TICK_MS - spent) : setImmediate(r)));
  }
  await publisher.settled();
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  emit({
    type: 'done',
    tasks: next,
    events,
    messages,
    seconds,
    undelivered: publisher.undelivered(),
    backpressure,
    behindSeconds,
    cpu: { user: cpu.user / 1e6, system: cpu.system / 1e6 },
    stopped: stopping,
  });
  await publisher.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
