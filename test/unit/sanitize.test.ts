// Decode sanitizes broker input once, at the edge: every string well formed
// and within its length (a cut never splits a surrogate pair), every number
// finite and within its field's bounds, event times within the sane window,
// and oversized messages refused before anything reads them.

import { describe, expect, it } from 'vitest';
import {
  EARLIEST_EVENT_TIME,
  FUTURE_EVENT_WINDOW,
  MAX_KEY_LENGTH,
  MAX_TEXT_LENGTH,
  parseEvent,
  type TaskEvent,
  type WorkerEvent,
} from '../../src/shared/celery-events';
import { stateForEvent } from '../../src/shared/task-states';
import { cutText, pathSegment, wellFormed } from '../../src/shared/text';
import { redisEnvelope } from '../../worker-collector/kombu-wire';
import { decodeAmqpMessage, decodeRedisMessage, DEFAULT_MAX_EVENT_BYTES } from '../../worker-collector/decode';
import { timelineEntry } from '../../worker-collector/fold/task';
import { MetricTally } from '../../worker-collector/store/counters';

const NOW = 1_800_000_000;
const PAIR = '\ud83d\ude00';

/** A kombu envelope around this exact body text (base64, as kombu sends it). */
function redisText(bodyText: string): Buffer {
  const envelope = JSON.parse(redisEnvelope({}, { hostname: 'w1@h' }, 'celeryev', 'task.multi', 1)) as Record<string, unknown>;
  return Buffer.from(JSON.stringify({ ...envelope, body: Buffer.from(bodyText).toString('base64') }));
}

function redis(body: unknown): Buffer {
  return redisText(JSON.stringify(body));
}

/** A body as JSON text, with `1e999` (which JSON.parse reads as Infinity) where the marker was. */
function rawJson(body: unknown): string {
  return JSON.stringify(body).replaceAll('"INFINITY"', '1e999').replaceAll('"-INFINITY"', '-1e999');
}

function task(fields: Record<string, unknown> = {}): TaskEvent {
  const event = parseEvent({ type: 'task-received', uuid: 'u1', hostname: 'w1@h', timestamp: NOW - 1, clock: 3, ...fields }, NOW);
  if (event.kind !== 'task') throw new Error(`expected a task event, got ${JSON.stringify(event)}`);
  return event;
}

function worker(fields: Record<string, unknown> = {}): WorkerEvent {
  const event = parseEvent({ type: 'worker-heartbeat', hostname: 'w1@h', timestamp: NOW - 1, clock: 3, freq: 2, ...fields }, NOW);
  if (event.kind !== 'worker') throw new Error(`expected a worker event, got ${JSON.stringify(event)}`);
  return event;
}

describe('text', () => {
  it('replaces each lone surrogate with one U+FFFD and keeps pairs', () => {
    expect(wellFormed('a\ud800b')).toBe('a\ufffdb');
    expect(wellFormed('\udc00\ud800')).toBe('\ufffd\ufffd');
    expect(wellFormed(`x${PAIR}y`)).toBe(`x${PAIR}y`);
    expect(wellFormed(`\ud83d${PAIR}\ude00`)).toBe(`\ufffd${PAIR}\ufffd`);
  });

  it('cuts without splitting a pair: the pair goes whole when it straddles the limit', () => {
    expect(cutText(`abc${PAIR}`, 4)).toBe('abc');
    expect(cutText(`abc${PAIR}`, 5)).toBe(`abc${PAIR}`);
    expect(cutText(`ab${PAIR}c`, 4)).toBe(`ab${PAIR}`);
    expect(cutText('abcdef', 3)).toBe('abc');
    expect(cutText('ab\ud800cd', 4)).toBe('ab\ufffdc');
    // A lone high surrogate right at the cut goes with the rest.
    expect(cutText('abc\ud800d', 4)).toBe('abc');
    for (let limit = 1; limit < 12; limit++) expect(cutText(PAIR.repeat(6), limit).isWellFormed(), `limit ${limit}`).toBe(true);
  });

  it('encodes any string as a path segment, lone surrogates as U+FFFD', () => {
    expect(() => encodeURIComponent('a\ud800@x')).toThrow(URIError);
    expect(pathSegment('a\ud800@x')).toBe('a%EF%BF%BD%40x');
    expect(pathSegment(`w/1@h${PAIR}`)).toBe(`w%2F1%40h${encodeURIComponent(PAIR)}`);
  });
});

describe('strings from the broker', () => {
  it('are well formed in every field, one U+FFFD per lone surrogate, pairs kept', () => {
    const lone = 'a\ud800b\udfffc';
    const clean = 'a\ufffdb\ufffdc';
    const e = task({
      type: `task-received`,
      uuid: lone,
      hostname: lone,
      name: lone,
      args: lone,
      kwargs: { k: lone },
      result: lone,
      exception: lone,
      traceback: lone,
      eta: lone,
      expires: lone,
      queue: lone,
      exchange: lone,
      routing_key: lone,
      root_id: lone,
      parent_id: lone,
      signum: lone,
    });
    for (const field of [
      'uuid',
      'hostname',
      'name',
      'args',
      'result',
      'exception',
      'traceback',
      'eta',
      'expires',
      'queue',
      'exchange',
      'routing_key',
      'root_id',
      'parent_id',
      'signum',
    ] as const) {
      expect(e[field], field).toBe(clean);
    }
    // A JSON value is kept as JSON text, which spells a lone surrogate as an escape.
    expect(e.kwargs).toBe('{"k":"a\\ud800b\\udfffc"}');
    expect(e.kwargs?.isWellFormed()).toBe(true);
    const w = worker({ hostname: lone, sw_ident: lone, sw_ver: `${PAIR}`, sw_sys: lone, type: `worker-heartbeat` });
    expect([w.hostname, w.sw_ident, w.sw_ver, w.sw_sys]).toEqual([clean, clean, PAIR, clean]);
    const t = parseEvent({ type: 'app-\ud800', hostname: 'h', timestamp: NOW }, NOW);
    expect(t).toMatchObject({ kind: 'other', type: 'app-\ufffd' });
  });

  it('invalid UTF-8 in a body becomes U+FFFD', () => {
    const text = JSON.stringify({ type: 'task-received', uuid: 'u1', hostname: 'w', timestamp: NOW, args: 'JUNK' });
    const [before, after] = text.split('JUNK') as [string, string];
    const body = Buffer.concat([Buffer.from(before), Buffer.from([0xed, 0xa0, 0x80, 0xff]), Buffer.from(after)]);
    const [e] = decodeAmqpMessage(body, { contentType: 'application/json' }, NOW).events;
    expect(e?.kind === 'task' && e.args?.isWellFormed()).toBe(true);
    expect(e?.kind === 'task' && e.args).toMatch(/^\ufffd+$/);
  });

  it('are cut to their field length, never inside a surrogate pair', () => {
    const straddling = (limit: number) => `${'x'.repeat(limit - 1)}${PAIR}tail`;
    const e = task({
      name: straddling(MAX_KEY_LENGTH),
      args: straddling(MAX_TEXT_LENGTH),
      eta: straddling(64),
      exception: straddling(1024),
    });
    expect(e.name).toBe('x'.repeat(MAX_KEY_LENGTH - 1));
    expect(e.args).toBe('x'.repeat(MAX_TEXT_LENGTH - 1));
    expect(e.eta).toBe('x'.repeat(63));
    // One unit more room and the pair fits whole.
    expect(task({ name: `${'x'.repeat(MAX_KEY_LENGTH - 2)}${PAIR}tail` }).name).toBe(`${'x'.repeat(MAX_KEY_LENGTH - 2)}${PAIR}`);
    // The timeline's short copy of the exception, and the counters' label columns, cut the same way.
    expect(timelineEntry(e).data?.exception).toBe('x'.repeat(1023));
    const tally = new MetricTally([1]);
    tally.count(straddling(191), straddling(191), straddling(128), 'task-received', '');
    const [row] = tally.deltas().counters;
    expect([row?.hostname, row?.task_name, row?.queue]).toEqual(['x'.repeat(190), 'x'.repeat(190), 'x'.repeat(127)]);
  });

  it('a custom task state fits its column, however the type upper-cases', () => {
    const state = stateForEvent(`task-${'ß'.repeat(59)}`);
    expect(state).toBe('S'.repeat(32));
    expect(stateForEvent('task-custom')).toBe('CUSTOM');
  });
});

describe('numbers from the broker', () => {
  it('a number outside its field bounds becomes null (unknown), never a made-up value', () => {
    const bad = task({ retries: -1, runtime: -0.5, pid: 2 ** 40, utcoffset: 99 });
    expect([bad.retries, bad.runtime, bad.pid, bad.utcoffset]).toEqual([null, null, null, null]);
    const huge = task({ retries: 2 ** 31, runtime: 1e20 });
    expect([huge.retries, huge.runtime]).toEqual([null, null]);
    const good = task({ retries: 3.7, runtime: 0.25, pid: 4242, utcoffset: -5 });
    expect([good.retries, good.runtime, good.pid, good.utcoffset]).toEqual([3, 0.25, 4242, -5]);
    const w = worker({ freq: 0, active: -3, processed: 2 ** 60 });
    expect([w.freq, w.active, w.processed]).toEqual([null, null, null]);
    const ok = worker({ freq: 2.5, active: 4, processed: 10 });
    expect([ok.freq, ok.active, ok.processed]).toEqual([2.5, 4, 10]);
  });

  it('the Lamport clock is clamped (it is only compared)', () => {
    expect(task({ clock: -5 }).clock).toBe(0);
    expect(task({ clock: 1e300 }).clock).toBe(Number.MAX_SAFE_INTEGER);
    expect(task({ clock: 'late' }).clock).toBe(0);
    expect(task({ clock: 41.9 }).clock).toBe(41);
  });

  it('load averages are kept only when every one is a finite number in bounds', () => {
    expect(worker({ loadavg: [0.5, 1, 2, 9] }).loadavg).toEqual([0.5, 1, 2]);
    expect(worker({ loadavg: [0.5, -1, 2] }).loadavg).toBeNull();
    expect(worker({ loadavg: [0.5, 'x', 2] }).loadavg).toBeNull();
    expect(worker({ loadavg: [] }).loadavg).toBeNull();
    expect(worker({ loadavg: 'high' }).loadavg).toBeNull();
  });

  it('infinities written as 1e999 (JSON.parse reads them as Infinity) are refused like any out-of-range number', () => {
    const body = rawJson([
      { type: 'task-succeeded', uuid: 'u1', hostname: 'w', timestamp: NOW, clock: 'INFINITY', runtime: 'INFINITY', retries: '-INFINITY' },
      {
        type: 'worker-heartbeat',
        hostname: 'w',
        timestamp: NOW,
        freq: 'INFINITY',
        loadavg: ['INFINITY', 1, 1],
        active: 'INFINITY',
        pid: 'INFINITY',
      },
    ]);
    const decoded = decodeAmqpMessage(Buffer.from(body), { contentType: 'application/json' }, NOW);
    expect(decoded.dropped).toEqual([]);
    expect(decoded.events[0]).toMatchObject({ clock: Number.MAX_SAFE_INTEGER, runtime: null, retries: null });
    expect(decoded.events[1]).toMatchObject({ freq: null, loadavg: null, active: null, pid: null });
  });
});

describe('event times', () => {
  it('keeps times within 2000-01-01 .. now + 1 day', () => {
    expect(task({ timestamp: EARLIEST_EVENT_TIME }).timestamp).toBe(EARLIEST_EVENT_TIME);
    expect(task({ timestamp: NOW + FUTURE_EVENT_WINDOW }).timestamp).toBe(NOW + FUTURE_EVENT_WINDOW);
  });

  it('drops task events whose time is outside the window, and counts them as bad-timestamp', () => {
    const body = rawJson(
      [EARLIEST_EVENT_TIME - 1, NOW + FUTURE_EVENT_WINDOW + 1, 1e20, -1e20, 0, 'INFINITY', '-INFINITY'].map((timestamp, i) => ({
        type: 'task-started',
        uuid: `u${i}`,
        hostname: 'w',
        timestamp,
      })),
    );
    const decoded = decodeRedisMessage(redisText(body), NOW);
    expect(decoded.events).toEqual([]);
    expect(decoded.dropped).toEqual(Array(7).fill('bad-timestamp'));
  });

  it('a task event without a usable time takes the receive time, as before', () => {
    expect(task({ timestamp: undefined }).timestamp).toBe(NOW);
    expect(task({ timestamp: 'noon' }).timestamp).toBe(NOW);
    expect(task({ timestamp: null }).timestamp).toBe(NOW);
  });

  it('worker and other events outside the window take the receive time: their own is never stored', () => {
    expect(worker({ timestamp: 1e20 }).timestamp).toBe(NOW);
    expect(worker({ timestamp: 12 }).timestamp).toBe(NOW);
    expect(parseEvent({ type: 'app-x', hostname: 'h', timestamp: -1e20 }, NOW)).toMatchObject({ kind: 'other', timestamp: NOW });
  });
});

describe('message size', () => {
  /** A message that would fail loudly if anything read it. */
  function untouchable(size: number): Buffer & { reads: number } {
    const buffer = Buffer.alloc(size, '{') as Buffer & { reads: number };
    buffer.reads = 0;
    buffer.toString = () => {
      buffer.reads += 1;
      throw new Error('the message was read');
    };
    return buffer;
  }

  it('refuses a Redis message over the limit without reading it', () => {
    const message = untouchable(DEFAULT_MAX_EVENT_BYTES + 1);
    expect(decodeRedisMessage(message, NOW)).toEqual({ events: [], dropped: ['too-large'] });
    expect(message.reads).toBe(0);
    const small = untouchable(2048);
    expect(decodeRedisMessage(small, NOW, 2047)).toEqual({ events: [], dropped: ['too-large'] });
    expect(small.reads).toBe(0);
  });

  it('refuses an AMQP body over the limit without reading it', () => {
    const body = untouchable(5000);
    expect(decodeAmqpMessage(body, { contentType: 'application/json' }, NOW, 4096)).toEqual({ events: [], dropped: ['too-large'] });
    expect(body.reads).toBe(0);
  });

  it('reads a message of exactly the limit', () => {
    const message = redis({ type: 'task-started', uuid: 'u1', hostname: 'w', timestamp: NOW });
    expect(decodeRedisMessage(message, NOW, message.length).events).toHaveLength(1);
    expect(decodeRedisMessage(message, NOW, message.length - 1).dropped).toEqual(['too-large']);
    // A string is measured in UTF-8 bytes, as it traveled.
    expect(decodeRedisMessage(`${'é'.repeat(600)}`, NOW, 1024).dropped).toEqual(['too-large']);
  });
});
