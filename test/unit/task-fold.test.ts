import { describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/shared/celery-events';
import type { NewTaskRow } from '../../src/shared/schema';
import { foldTaskEvent, mergeTaskRows } from '../support/fold';
import { stateKey } from '../../src/shared/task-states';
import { exceptionClass, taskRowFromEvent } from '../../worker-collector/fold/task';
import {
  failed,
  received,
  retryingTask,
  revoked,
  seededRandom,
  sent,
  shuffled,
  started,
  succeeded,
  succeedingTask,
} from '../fixtures/events';

function fold(events: TaskEvent[]): NewTaskRow {
  let row: NewTaskRow | undefined;
  for (const event of events) row = foldTaskEvent(row, event);
  if (!row) throw new Error('no events');
  return row;
}

/** Fold events in random groups (as flushes would), then merge the groups in random order. */
function foldInGroups(events: TaskEvent[], random: () => number): NewTaskRow {
  const groups: TaskEvent[][] = [];
  for (const event of events) {
    if (groups.length === 0 || random() < 0.4) groups.push([]);
    groups[groups.length - 1]!.push(event);
  }
  const rows = shuffled(groups.map(fold), random);
  return rows.reduce((a, b) => mergeTaskRows(a, b));
}

const story = { uuid: 't-1', name: 'billing.charge', args: "('c1', 100)", kwargs: "{'note': 'x'}" };

describe('folding task events', () => {
  it('records a successful task as Flower shows it', () => {
    const row = fold(succeedingTask(story, 1000));
    expect(row).toMatchObject({
      uuid: 't-1',
      name: 'billing.charge',
      state: 'SUCCESS',
      sent: 1000,
      received: 1000.01,
      started: 1000.02,
      succeeded: 1000.05,
      timestamp: 1000.05,
      args: "('c1', 100)",
      kwargs: "{'note': 'x'}",
      result: '5',
      runtime: 0.01,
      worker: 'w1@host',
      client: 'client@app',
      queue: 'celery',
      routing_key: 'celery',
      retries: 0,
    });
  });

  it('keeps the exception and traceback of a failure', () => {
    const row = fold([received(story, 1), started(story, 2), failed(story, 3, "KeyError('k')")]);
    expect(row.state).toBe('FAILURE');
    expect(row.exception).toBe("KeyError('k')");
    expect(row.traceback).toContain('Traceback');
    expect(row.failed).toBe(3);
  });

  it('follows a retry to success, counting the retry', () => {
    const row = fold(retryingTask(story, 1000));
    expect(row.state).toBe('SUCCESS');
    expect(row.retries).toBe(1);
    expect(row.retried).toBe(1000.03);
    expect(row.received).toBe(1000.5);
    expect(row.exception).toBe("RuntimeError('later')");
    expect(row.result).toBe("'ok'");
  });

  it('shows RETRY between the attempts', () => {
    const events = retryingTask(story, 1000).slice(0, 4);
    expect(fold(events).state).toBe('RETRY');
  });

  it('does not let a late RECEIVED undo SUCCESS, but takes its fields', () => {
    const late = fold([started(story, 2), succeeded(story, 3), received(story, 1)]);
    expect(late.state).toBe('SUCCESS');
    expect(late.timestamp).toBe(3);
    expect(late.name).toBe('billing.charge');
    expect(late.args).toBe("('c1', 100)");
    expect(late.received).toBe(1);
  });

  it('does not let a late task-retried undo a success (where Celery would)', () => {
    const events = retryingTask(story, 1000);
    const retriedEvent = events.splice(3, 1)[0]!;
    expect(fold([...events, retriedEvent]).state).toBe('SUCCESS');
  });

  it('marks revocations, terminated or not', () => {
    expect(fold([sent(story, 1), revoked(story, 2)]).state).toBe('REVOKED');
    const killed = fold([received(story, 1), started(story, 2), revoked(story, 3, true)]);
    expect(killed.state).toBe('REVOKED');
    expect(killed.revoked).toBe(3);
    expect(killed.started).toBe(2);
  });

  it('gives SUCCESS precedence over FAILURE whatever the times (Celery precedence)', () => {
    expect(fold([succeeded(story, 1), failed(story, 2)]).state).toBe('SUCCESS');
    expect(fold([failed(story, 2), succeeded(story, 1)]).state).toBe('SUCCESS');
  });

  it('turns unknown task-<x> events into the custom state X', () => {
    const custom = { ...started(story, 5), type: 'task-progress' };
    expect(fold([received(story, 1), custom]).state).toBe('PROGRESS');
  });

  it('never lets PENDING (task-sent) overtake a worker state, even with a skewed client clock', () => {
    expect(fold([received(story, 10), sent(story, 50)]).state).toBe('RECEIVED');
  });

  it('converges whatever the order, duplication and flush boundaries', () => {
    const random = seededRandom(7);
    const lifecycles = [
      succeedingTask(story, 1000),
      retryingTask(story, 1000),
      [sent(story, 1), received(story, 2), started(story, 3), revoked(story, 4, true)],
      [received(story, 1), started(story, 2), failed(story, 3)],
    ];
    for (const events of lifecycles) {
      const expected = fold(events);
      for (let round = 0; round < 200; round++) {
        const duplicated = events.flatMap((e) => (random() < 0.3 ? [e, e] : [e]));
        expect(fold(shuffled(duplicated, random))).toEqual(expected);
        expect(foldInGroups(shuffled(duplicated, random), random)).toEqual(expected);
      }
    }
  });
});

describe('state keys', () => {
  it('order final states by precedence, in-flight states by time', () => {
    expect(stateKey('SUCCESS', 1) > stateKey('FAILURE', 99)).toBe(true);
    expect(stateKey('FAILURE', 1) > stateKey('REVOKED', 99)).toBe(true);
    expect(stateKey('REVOKED', 1) > stateKey('STARTED', 99)).toBe(true);
    expect(stateKey('RETRY', 3) > stateKey('STARTED', 2)).toBe(true);
    expect(stateKey('RECEIVED', 4) > stateKey('RETRY', 3)).toBe(true);
    expect(stateKey('STARTED', 5) > stateKey('RECEIVED', 5)).toBe(true);
    expect(stateKey('RECEIVED', 0) > stateKey('PENDING', 1e9)).toBe(true);
    expect(stateKey('SUCCESS', 1.5)).toHaveLength(19);
  });
});

describe('single events', () => {
  it('sets the client from task-sent and the worker from the rest', () => {
    expect(taskRowFromEvent(sent(story, 1))).toMatchObject({ client: 'client@app', worker: null, state: 'PENDING' });
    expect(taskRowFromEvent(started(story, 1))).toMatchObject({ client: null, worker: 'w1@host', state: 'STARTED' });
  });

  it('names exception classes for metric labels', () => {
    expect(exceptionClass("ValueError('x')")).toBe('ValueError');
    expect(exceptionClass('celery.exceptions.Retry(...)')).toBe('celery.exceptions.Retry');
    expect(exceptionClass(null)).toBe('');
    expect(exceptionClass("('tuple',)")).toBe('');
  });
});
