// The control contract's types (src/shared/control.ts): a ControlClient's
// outcome carries the result type of the command's kind, so routes read
// results without casts. Checked by the type checker (`npm test` runs tsc
// over the tests first): a wrong result type or a cast-free misuse fails it.

import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  type CommandOutcome,
  type CommandResult,
  type ControlClient,
  type ControlCommand,
  outcomeFor,
  type QueueLength,
  type SentTask,
  type TaskResultReply,
} from '../../src/shared/control';
import type { WorkerInspect } from '../../src/shared/inspect';

function answer(command: ControlCommand): CommandResult {
  switch (command.kind) {
    case 'queues':
      return [{ name: 'celery', messages: 1, ready: null, unacked: null, consumers: null }];
    case 'inspect':
      return { 'w1@host': { timestamp: 1 } };
    case 'send':
      return { 'task-id': 't1' };
    case 'result':
      return { 'task-id': command.task, status: 'SUCCESS', result: 3, traceback: null };
    default:
      return 'ok';
  }
}

const client: ControlClient = { run: async (command) => outcomeFor(command, { ok: true, result: answer(command) }) };

describe('a ControlClient', () => {
  it('answers each command with the result type of its kind', async () => {
    const queues = await client.run({ kind: 'queues' }, 'alice', 1);
    expectTypeOf(queues).toEqualTypeOf<CommandOutcome<'queues'>>();
    const inspect = await client.run({ kind: 'inspect', worker: 'w1@host' }, 'alice', 1);
    const shutdown = await client.run({ kind: 'worker', action: 'shutdown', worker: 'w1@host', args: {} }, 'alice', 1);
    const sent = await client.run({ kind: 'send', name: 'add', args: [1, 2], kwargs: {} }, 'alice', 1);
    const result = await client.run({ kind: 'result', task: 't1' }, 'alice', 1);
    if (!queues.ok || !inspect.ok || !shutdown.ok || !sent.ok || !result.ok) throw new Error('every command succeeds here');
    expectTypeOf(queues.result).toEqualTypeOf<QueueLength[]>();
    expectTypeOf(inspect.result).toEqualTypeOf<Record<string, WorkerInspect>>();
    expectTypeOf(shutdown.result).toEqualTypeOf<string>();
    expectTypeOf(sent.result).toEqualTypeOf<SentTask | TaskResultReply>();
    expectTypeOf(result.result).toEqualTypeOf<TaskResultReply>();
    // @ts-expect-error a worker action answers text, not a list
    expect(() => shutdown.result.map(String)).toThrow(TypeError);
    expect(queues.result[0]?.messages).toBe(1);
    expect(inspect.result['w1@host']?.timestamp).toBe(1);
    expect(result.result.status).toBe('SUCCESS');
  });

  it('passes a failure through whatever the kind', async () => {
    const failing: ControlClient = { run: async () => ({ ok: false, status: 504, error: 'the collector did not answer in time' }) };
    expect(await failing.run({ kind: 'queues' }, 'alice', 1)).toEqual({
      ok: false,
      status: 504,
      error: 'the collector did not answer in time',
    });
  });
});
