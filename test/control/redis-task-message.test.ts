// Protocol-2 task messages and pidbox replies, checked against Celery and kombu
// themselves (Debian's python3-celery 5.2.6): argsrepr/kwargsrepr must equal
// celery.utils.saferepr's output, priorities must land where kombu's Redis
// transport puts them, and the envelope must carry Celery's fields.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { decodePidboxReply } from '../../worker-collector/control/pidbox-redis';
import { pythonFloatRepr, pythonRepr } from '../../worker-collector/control/python-repr';
import { abortedMeta, parseResultBackendUrl, parseTaskMeta } from '../../worker-collector/control/result-backend';
import {
  buildTaskMessage,
  celeryIsoTime,
  redisPriorityStep,
  redisQueueKey,
  redisQueueKeys,
  redisTaskEnvelope,
  taskBodyBytes,
} from '../../worker-collector/control/task-message';
import { CELERY_DIR, PYTHON } from '../support/celery';

/** Run Python (Debian's, with Celery) on `input`; returns stdout. */
function python(code: string, input: string): string {
  const run = spawnSync(PYTHON, ['-c', code], { cwd: CELERY_DIR, input, encoding: 'utf8', timeout: 30_000 });
  if (run.status !== 0) throw new Error(`python failed (${run.status}): ${run.stderr}`);
  return run.stdout;
}

/** A small deterministic PRNG, so that a failure can be reproduced. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

const WORDS = [
  "it's",
  'a b',
  'x',
  '',
  'line\nbreak',
  'tab\there',
  'back\\slash',
  '"dq"',
  'ünï',
  '😀 emoji',
  'long '.repeat(12),
  "''",
  'None',
];

function randomValue(random: () => number, depth: number): unknown {
  const pick = random();
  if (depth < 5 && pick < 0.25) {
    const n = Math.floor(random() * 4);
    return Array.from({ length: n }, () => randomValue(random, depth + 1));
  }
  if (depth < 5 && pick < 0.45) {
    const n = Math.floor(random() * 4);
    const object: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) object[WORDS[Math.floor(random() * WORDS.length)]! + i] = randomValue(random, depth + 1);
    return object;
  }
  if (pick < 0.6) return WORDS[Math.floor(random() * WORDS.length)];
  if (pick < 0.7) return Math.floor(random() * 2_000_000) - 1_000_000;
  // Not integral: Python reads these as floats, as JavaScript prints them.
  if (pick < 0.8) return Math.round((random() - 0.5) * 1e6) / 8 + 0.0625;
  if (pick < 0.87) return random() < 0.5;
  if (pick < 0.93) return null;
  return [1e-7 + random() * 1e-9, 3.5e-5, 0.1, 1.5e300][Math.floor(random() * 4)];
}

describe('argsrepr and kwargsrepr (celery.utils.saferepr)', () => {
  it('matches saferepr for hand-picked values', () => {
    expect(pythonRepr([2, 3])).toBe('[2, 3]');
    expect(pythonRepr({ note: 'x' })).toBe("{'note': 'x'}");
    expect(pythonRepr(["it's\nx", true, false, null, 1.5])).toBe("['it\\'s\nx', True, False, None, 1.5]");
    expect(pythonRepr({ k: [[[[1]]]] })).toBe("{'k': [[[...]]]}");
    expect(pythonRepr(['x'.repeat(30), 'y y y y'], 20)).toBe("['xxxxxxxxxxxxxxxxxxx...', ...]");
    expect(pythonRepr([])).toBe('[]');
    expect(pythonRepr({})).toBe('{}');
  });

  it('prints floats as Python does', () => {
    const values = [0.1, 2.5, -0.0625, 1e-5, 1.5e-7, 1.5e300, 123456.789, 1e-4, 5e-324, 1.7976931348623157e308, 0.3333333333333333];
    const ours = values.map(pythonFloatRepr);
    const theirs = python('import json,sys\nfor v in json.load(sys.stdin): print(repr(float(v)))', JSON.stringify(values))
      .trim()
      .split('\n');
    expect(ours).toEqual(theirs);
  });

  it('matches saferepr on 300 random JSON values at many lengths, truncation included', () => {
    const random = prng(20261124);
    const maxlens = [1, 2, 5, 9, 17, 33, 64, 200, 1024];
    const cases = Array.from({ length: 300 }, (_, i) => ({ value: randomValue(random, 0), maxlen: maxlens[i % maxlens.length]! }));
    // Lists at the top, like args, and objects, like kwargs.
    cases.push({ value: Array.from({ length: 400 }, (_, i) => `item ${i}`), maxlen: 1024 });
    cases.push({
      value: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, [i, { v: 'x'.repeat(i % 7) }]])),
      maxlen: 1024,
    });
    const script = [
      'import json, sys',
      'from celery.utils.saferepr import saferepr',
      'for line in sys.stdin:',
      '    case = json.loads(line)',
      '    print(json.dumps(saferepr(case["value"], case["maxlen"])))',
    ].join('\n');
    const theirs = python(script, `${cases.map((c) => JSON.stringify(c)).join('\n')}\n`)
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as string);
    expect(theirs).toHaveLength(cases.length);
    const mismatches = cases
      .map((c, i) => ({ ...c, ours: pythonRepr(c.value, c.maxlen), theirs: theirs[i] }))
      .filter((c) => c.ours !== c.theirs);
    expect(mismatches).toEqual([]);
  });
});

describe('task messages', () => {
  it('builds the protocol-2 headers, properties and body Celery builds', () => {
    const message = buildTaskMessage(
      { name: 'billing.charge', id: 'e7c6901a-2f33-4711-97e8-0462979db598', args: ['c<b>1', 100], kwargs: { note: 'x' }, priority: 4 },
      { origin: 'stalk@test', replyTo: 'reply-oid' },
    );
    expect(message.headers).toEqual({
      lang: 'py',
      task: 'billing.charge',
      id: 'e7c6901a-2f33-4711-97e8-0462979db598',
      shadow: null,
      eta: null,
      expires: null,
      group: null,
      group_index: null,
      retries: 0,
      timelimit: [null, null],
      root_id: 'e7c6901a-2f33-4711-97e8-0462979db598',
      parent_id: null,
      argsrepr: "['c<b>1', 100]",
      kwargsrepr: "{'note': 'x'}",
      origin: 'stalk@test',
      ignore_result: false,
    });
    expect(message.properties).toEqual({ correlation_id: message.id, reply_to: 'reply-oid', delivery_mode: 2, priority: 4 });
    expect(message.queue).toBe('celery');
    expect(JSON.parse(taskBodyBytes(message).toString('utf8'))).toEqual([
      ['c<b>1', 100],
      { note: 'x' },
      { callbacks: null, errbacks: null, chain: null, chord: null },
    ]);

    const envelope = JSON.parse(redisTaskEnvelope(message, 'tag-1')) as Record<string, unknown>;
    expect(envelope).toEqual({
      body: taskBodyBytes(message).toString('base64'),
      'content-encoding': 'utf-8',
      'content-type': 'application/json',
      headers: message.headers,
      properties: {
        correlation_id: message.id,
        reply_to: 'reply-oid',
        delivery_mode: 2,
        delivery_info: { exchange: '', routing_key: 'celery' },
        priority: 4,
        body_encoding: 'base64',
        delivery_tag: 'tag-1',
      },
    });
  });

  it('writes eta and expires as Celery does, with an expiration in ms', () => {
    const now = Date.parse('2030-01-01T00:00:00Z') / 1000;
    const message = buildTaskMessage(
      { name: 't', args: [], kwargs: {}, eta: '2030-01-01T01:00:00+01:00', expires: '2030-01-01T00:00:30.5Z' },
      { now: () => now },
    );
    expect(message.headers.eta).toBe('2030-01-01T00:00:00.000000+00:00');
    expect(message.headers.expires).toBe('2030-01-01T00:00:30.500000+00:00');
    expect(message.properties.expiration).toBe('30500');
    expect(celeryIsoTime('2030-01-01T12:00:00', 'eta')).toBe('2030-01-01T12:00:00.000000+00:00');
    expect(() => buildTaskMessage({ name: 't', args: [], kwargs: {}, eta: 'tomorrow' })).toThrow("eta 'tomorrow' is not an ISO 8601 time");
    expect(() => buildTaskMessage({ name: '', args: [], kwargs: {} })).toThrow('task name is required');
    // The ids differ from one message to the next.
    expect(buildTaskMessage({ name: 't', args: [], kwargs: {} }).id).not.toBe(buildTaskMessage({ name: 't', args: [], kwargs: {} }).id);
  });

  it('puts priorities in the sub-queues kombu’s Redis transport uses', () => {
    const priorities = [-3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255];
    const script = [
      'import json, sys',
      'from kombu.transport.redis import Channel',
      'class C: priority_steps = [0, 3, 6, 9]',
      'c = C()',
      // kombu clamps to 0..9 (_get_message_priority), then picks the step.
      'print(json.dumps([Channel.priority(c, max(min(p, 9), 0)) for p in json.load(sys.stdin)]))',
    ].join('\n');
    const kombu = JSON.parse(python(script, JSON.stringify(priorities))) as number[];
    expect(priorities.map(redisPriorityStep)).toEqual(kombu);
    expect(redisQueueKey('q', 0)).toBe('q');
    expect(redisQueueKey('q', 5)).toBe('q\x06\x163');
    expect(redisQueueKey('q', 9)).toBe('q\x06\x169');
    expect(redisQueueKeys('q')).toEqual(['q', 'q\x06\x163', 'q\x06\x166', 'q\x06\x169']);
  });
});

describe('pidbox replies and result meta', () => {
  it('decodes a reply exactly as a Celery 5.2.6 worker LPUSHes it', () => {
    // Captured with MONITOR during `celery inspect ping -d explore-1@stalktest`.
    const raw =
      '{"body": "eyJleHBsb3JlLTFAc3RhbGt0ZXN0IjogeyJvayI6ICJwb25nIn19", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"ticket": "6d614d04-434e-415d-b4f8-610ed6f38526", "clock": 5}, "properties": {"delivery_mode": 1, "delivery_info": {"exchange": "reply.celery.pidbox", "routing_key": "577e1479-e8f8-3732-b4a8-f8f8ec2c3b37"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "8da97364-87ef-487d-bea5-742f1d55e6e6"}}';
    expect(decodePidboxReply(raw)).toEqual({
      ticket: '6d614d04-434e-415d-b4f8-610ed6f38526',
      clock: 5,
      expires: undefined,
      body: { 'explore-1@stalktest': { ok: 'pong' } },
    });
    expect(decodePidboxReply('nope')).toBe('envelope');
    expect(decodePidboxReply(raw.replace('"ticket": "6d614d04-434e-415d-b4f8-610ed6f38526", ', ''))).toBe('ticket');
    expect(decodePidboxReply(raw.replace('application/json', 'application/x-python-serialize'))).toBe('body');
    expect(decodePidboxReply(raw.replace('eyJleHBsb3JlLTFAc3RhbGt0ZXN0IjogeyJvayI6ICJwb25nIn19', 'W10='))).toBe('body');
  });

  it('reads result meta and refuses what is not JSON', () => {
    expect(parseTaskMeta('a', abortedMeta('a'))).toEqual({
      task_id: 'a',
      status: 'ABORTED',
      result: null,
      traceback: null,
      date_done: null,
    });
    expect(() => parseTaskMeta('a', '\x80\x04\x95')).toThrow("result_serializer='json'");
    expect(parseResultBackendUrl('rediss://:secret@cache:6380/2')).toEqual({
      url: 'rediss://:secret@cache:6380/2',
      tls: true,
      db: 2,
      display: 'result backend rediss://:****@cache:6380/2',
    });
    expect(() => parseResultBackendUrl('rpc://')).toThrow('only redis:// and rediss://');
  });
});
