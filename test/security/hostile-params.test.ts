// Hostile input on every route, read from Hono's own route table (so a route
// added later fails here until its parameters are listed): each parameter
// (query, form, JSON body field, path) gets huge, negative, non-finite and
// fractional numbers, empty and 100 KB strings, repetition, JSON arrays and
// objects where scalars go, broken percent-encodings, lone surrogates and
// NUL; each route with a body gets 10 MB (declared, streamed, and under a
// lying Content-Length), 10,000-deep JSON, wrong content types and broken
// encodings. Each answer is either the value taken (the route's usual
// status) or a 4xx with a readable message, as this file's own judge of
// each value says; never a 5xx; and a refused request sends no command.
// Authenticated (Basic), over SQLite and MariaDB, with a control client
// that only records commands.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SORTABLE_COLUMNS } from '../../src/queries/tasks';
import { TASK_COLUMN_NAMES } from '../../src/ui/context';
import { succeedingTask, workerEvent } from '../fixtures/events';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';
import { type App, BASIC, basicHeader, concretePath, handlerRoutes, type RecordingControl, recordingControl } from './support';

const ORIGIN = 'http://stalk.test';
const AUTH = basicHeader('admin', 's3cret-Pass');
const TEN_YEARS = 10 * 366 * 86_400;

// ---- What each parameter takes: the judge of a value, written from the README's rules.

type Kind =
  | { kind: 'int'; min: number; max: number; required?: boolean; except?: number[] }
  | { kind: 'float'; min: number; max: number }
  | { kind: 'text'; max: number; required?: boolean; controls?: 'allowed' }
  | { kind: 'bool' }
  | { kind: 'choice'; values: readonly string[] }
  | { kind: 'sort' }
  | { kind: 'date' }
  | { kind: 'state' }
  | { kind: 'search'; syntaxErrors: 'refused' | 'answered' }
  | { kind: 'columns' }
  | { kind: 'signal' }
  | { kind: 'rate' }
  | { kind: 'json-field'; shape: 'array' | 'object' };

type JsonKind = { kind: 'array' } | { kind: 'object' } | { kind: 'text' } | { kind: 'seconds'; max: number };

interface Param {
  in: 'query' | 'form' | 'path';
  kind: Kind;
  /** A value the route takes, sent while another parameter is under test. */
  valid?: string;
}

interface RouteSpec {
  /** Statuses of a request whose values were taken (404: an unknown task or worker). */
  ok: number[];
  params?: Record<string, Param>;
  /** Fields of the JSON body (apply, async-apply, send-task). */
  json?: Record<string, JsonKind>;
  /** The body a POST takes. */
  body?: 'form' | 'json';
  /** Whether a taken request sends a command to the collector. */
  command?: 'always' | 'maybe' | 'never';
  /** Refusals answered in place (htmx forms): 200 with an "outcome bad" message. */
  inline?: boolean;
}

const q = (kind: Kind, valid?: string): Param => ({ in: 'query', kind, ...(valid !== undefined ? { valid } : {}) });
const f = (kind: Kind, valid?: string): Param => ({ in: 'form', kind, ...(valid !== undefined ? { valid } : {}) });
/**
 * Names and ids take any well-formed text, control characters included:
 * every name Celery sends must stay reachable. Those that look up stored rows
 * (paths, filters) may be as long as a stored one reads back (1024); those
 * sent on (queues, a task to send) at most 255.
 */
const path = (kind: Kind = { kind: 'text', max: 1024, required: true, controls: 'allowed' }): Param => ({ in: 'path', kind });
const name = (required = false): Kind => ({ kind: 'text', max: 1024, required, controls: 'allowed' });
const sentName = (required = false): Kind => ({ kind: 'text', max: 255, required, controls: 'allowed' });
const int = (min: number, max: number, extra: { required?: boolean; except?: number[] } = {}): Kind => ({
  kind: 'int',
  min,
  max,
  ...extra,
});
const bool: Kind = { kind: 'bool' };

/** A control action of Flower's API: form fields (or query parameters), a command when taken. */
const action = (params: Record<string, Param> = {}): RouteSpec => ({
  ok: [200],
  body: 'form',
  command: 'always',
  params: { name: path(), ...params },
});
const taskAction = (params: Record<string, Param> = {}): RouteSpec => ({
  ok: [200],
  body: 'form',
  command: 'always',
  params: { id: path(), ...params },
});
/** Flower's send-task takes queue, eta and expires; apply and async-apply countdown too, and apply a timeout. */
const sendTask = (kind: 'apply' | 'async-apply' | 'send-task'): RouteSpec => ({
  ok: [200],
  body: 'json',
  command: 'always',
  params: { name: path() },
  json: {
    args: { kind: 'array' },
    kwargs: { kind: 'object' },
    queue: { kind: 'text' },
    ...(kind !== 'send-task' ? { countdown: { kind: 'seconds', max: TEN_YEARS } as JsonKind } : {}),
    eta: { kind: 'seconds', max: TEN_YEARS },
    expires: { kind: 'seconds', max: TEN_YEARS },
    ...(kind === 'apply' ? { timeout: { kind: 'seconds', max: 55 } as JsonKind } : {}),
  },
});

const apiTaskFilters: Record<string, Param> = {
  limit: q(int(0, 100_000)),
  offset: q(int(-1_000_000_000, 1_000_000_000)),
  sort_by: q({ kind: 'sort' }),
  workername: q(name()),
  taskname: q(name()),
  state: q({ kind: 'state' }),
  received_start: q({ kind: 'date' }),
  received_end: q({ kind: 'date' }),
  search: q({ kind: 'search', syntaxErrors: 'refused' }),
};

const dataTables = (where: 'query' | 'form'): RouteSpec => {
  const p = (kind: Kind, valid?: string): Param => (where === 'query' ? q(kind, valid) : f(kind, valid));
  return {
    ok: [200],
    ...(where === 'form' ? { body: 'form' as const } : {}),
    params: {
      draw: p(int(0, 2_147_483_647)),
      start: p(int(0, 1_000_000_000)),
      length: p(int(-1, 500, { except: [0] })),
      'order[0][column]': p(int(0, 1_000), '0'),
      'columns[0][data]': p({ kind: 'choice', values: SORTABLE_COLUMNS }, 'name'),
      'order[0][dir]': p({ kind: 'choice', values: ['asc', 'desc'] }),
      'search[value]': p({ kind: 'search', syntaxErrors: 'answered' }),
    },
  };
};

/** Every route of the app, by `METHOD pattern` as Hono's route table names it. */
const ROUTES: Record<string, RouteSpec> = {
  'GET /favicon.ico': { ok: [301] },
  'GET /healthcheck': { ok: [200] },
  'GET /metrics': { ok: [200] },
  'GET /login': {
    // Basic auth only: sign-in sends the browser home, once its parameters are found well-formed.
    ok: [302],
    params: {
      code: q({ kind: 'text', max: 4096 }),
      state: q({ kind: 'text', max: 4096 }),
      error: q({ kind: 'text', max: 4096 }),
      next: q({ kind: 'text', max: 4096, controls: 'allowed' }),
    },
  },
  'POST /logout': { ok: [200], body: 'form' },
  'GET /api/tasks': { ok: [200], params: apiTaskFilters },
  'GET /api/task/info/:id{.+}': { ok: [200, 404], params: { id: path() } },
  'GET /api/task/types': { ok: [200] },
  'GET /api/stats/tasks': {
    ok: [200],
    params: {
      from: q(int(0, 100_000_000_000, { required: true }), '1799996400'),
      to: q(int(0, 100_000_000_000, { required: true }), '1800003600'),
      step: q({ kind: 'choice', values: ['60', '3600'] }, '60'),
      name: q(name()),
    },
  },
  'GET /api/alerts': { ok: [200] },
  'GET /api/workers': { ok: [200, 404], command: 'maybe', params: { status: q(bool), refresh: q(bool), workername: q(name()) } },
  'POST /api/worker/shutdown/:name{.+}': action(),
  'POST /api/worker/pool/restart/:name{.+}': action(),
  'POST /api/worker/pool/grow/:name{.+}': action({ n: f(int(1, 10_000)) }),
  'POST /api/worker/pool/shrink/:name{.+}': action({ n: f(int(1, 10_000)) }),
  'POST /api/worker/pool/autoscale/:name{.+}': action({
    min: f(int(0, 10_000, { required: true }), '0'),
    max: f(int(0, 10_000, { required: true }), '10000'),
  }),
  'POST /api/worker/queue/add-consumer/:name{.+}': action({ queue: f(sentName(true), 'celery') }),
  'POST /api/worker/queue/cancel-consumer/:name{.+}': action({ queue: f(sentName(true), 'celery') }),
  'POST /api/task/revoke/:id{.+}': taskAction({ terminate: f(bool), signal: f({ kind: 'signal' }) }),
  'POST /api/task/abort/:id{.+}': taskAction(),
  'POST /api/task/timeout/:name{.+}': action({
    workername: f(name(true), 'w1@host'),
    soft: f({ kind: 'float', min: 0, max: TEN_YEARS }),
    hard: f({ kind: 'float', min: 0, max: TEN_YEARS }),
  }),
  'POST /api/task/rate-limit/:name{.+}': action({ workername: f(name(true), 'w1@host'), ratelimit: f({ kind: 'rate' }, '10/s') }),
  'POST /api/task/apply/:name{.+}': sendTask('apply'),
  'POST /api/task/async-apply/:name{.+}': sendTask('async-apply'),
  'POST /api/task/send-task/:name{.+}': sendTask('send-task'),
  'GET /api/task/result/:id{.+}': { ok: [200], command: 'always', params: { id: path(), timeout: q({ kind: 'float', min: 0, max: 55 }) } },
  'GET /api/queues/length': { ok: [200], command: 'always' },
  // 404 for an unknown task (no command then); 409 when the collector refuses it.
  'POST /api/task/retry/:id{.+}': { ok: [200, 404, 409], body: 'form', command: 'maybe', params: { id: path() } },
  'POST /api/tasks/retry': {
    ok: [200],
    body: 'form',
    // No command when no task matches the filters.
    command: 'maybe',
    params: {
      workername: f(name()),
      taskname: f(name()),
      state: f({ kind: 'state' }),
      received_start: f({ kind: 'date' }),
      received_end: f({ kind: 'date' }),
      search: f({ kind: 'search', syntaxErrors: 'refused' }),
      limit: f(int(1, 10_000, { required: true }), '5'),
      dry_run: f(bool),
      chunk: f(int(1, 1_000)),
      pause: f({ kind: 'float', min: 0, max: 10 }),
    },
  },
  'GET /': { ok: [200], params: { json: q(bool) } },
  'GET /workers': { ok: [200], params: { json: q(bool) } },
  'GET /worker/:name': { ok: [200, 404], params: { name: path() } },
  'POST /worker/:name/inspect': { ok: [200, 404], body: 'form', command: 'maybe', params: { name: path() } },
  // The harness fills every path parameter but `id` with w1@host: the tab is unknown there (404).
  'GET /worker/:name/tab/:tab': { ok: [200, 404], command: 'maybe', params: { name: path(), fresh: q(bool) } },
  'GET /tasks': {
    ok: [200],
    params: {
      state: q({ kind: 'state' }),
      worker: q(name()),
      name: q(name()),
      received_start: q({ kind: 'date' }),
      received_end: q({ kind: 'date' }),
      q: q({ kind: 'search', syntaxErrors: 'refused' }),
      retried: q(bool),
      sort: q({ kind: 'sort' }),
      limit: q(int(1, 500)),
      offset: q(int(0, 1_000_000_000)),
      columns: q({ kind: 'columns' }),
    },
  },
  'GET /tasks/datatable': dataTables('query'),
  'POST /tasks/datatable': dataTables('form'),
  'GET /task/:id{.+}': { ok: [200, 404], params: { id: path() } },
  'GET /broker': { ok: [200] },
  'GET /stats': { ok: [200], params: { period: q({ kind: 'choice', values: ['1h', '24h', '7d', '30d'] }) } },
  // An empty name is /stats/, which is /stats (all names).
  'GET /stats/:name{.+}': { ok: [200], params: { name: path(name()), period: q({ kind: 'choice', values: ['1h', '24h', '7d', '30d'] }) } },
  'GET /audit': { ok: [200], params: { offset: q(int(0, 1_000_000_000)) } },
  'GET /alerts': { ok: [200] },
  'POST /tasks/send': {
    ok: [200],
    body: 'form',
    command: 'always',
    inline: true,
    params: {
      name: f(sentName(true), 'tasks.add'),
      args: f({ kind: 'json-field', shape: 'array' }),
      kwargs: f({ kind: 'json-field', shape: 'object' }),
      queue: f(sentName()),
      countdown: f({ kind: 'float', min: 0, max: TEN_YEARS }),
    },
  },
};

// ---- The hostile values.

interface Hostile {
  label: string;
  /** As sent in a URL or form body (percent-encoded; broken on purpose for some). */
  raw: string;
  /** What it decodes to; null when it does not decode. */
  value: string | null;
  /** Sent twice. */
  repeated?: boolean;
}

/** Over every text limit, and inside the URL limit (16 KiB): the parameter's own cap refuses it. */
const TEN_KB = 'x'.repeat(10_000);
/** Over the URL limit too: 414 in a URL, the parameter's cap in a body. */
const LONG = 'x'.repeat(100_000);
const MAX_URL = 16 * 1024;
const plain = (label: string, value: string): Hostile => ({ label, raw: encodeURIComponent(value), value });

const HOSTILE: Hostile[] = [
  plain('1e21 written out', '1000000000000000000000'),
  plain('2^63', '9223372036854775808'),
  plain('10^300 written out', `1${'0'.repeat(300)}`),
  plain('-1e21 written out', '-1000000000000000000000'),
  plain('1e21', '1e21'),
  plain('negative', '-1'),
  plain('NaN', 'NaN'),
  plain('Infinity', 'Infinity'),
  plain('float', '1.5'),
  plain('empty', ''),
  plain('10 KB', TEN_KB),
  plain('100 KB', LONG),
  { label: 'repeated', raw: '1', value: '1', repeated: true },
  plain('NUL', '\u0000'),
  { label: 'lone surrogate %ED%A0%80', raw: '%ED%A0%80', value: null },
  { label: 'broken escape %E0%A4%A', raw: '%E0%A4%A', value: null },
];

const HOSTILE_JSON: { label: string; text: string }[] = [
  { label: '1e21', text: '1e21' },
  { label: '2^63', text: '9223372036854775808' },
  { label: '10^300 written out', text: `1${'0'.repeat(300)}` },
  { label: '-1e21', text: '-1e21' },
  { label: 'negative', text: '-1' },
  { label: 'float', text: '1.5' },
  { label: '"NaN"', text: '"NaN"' },
  { label: '"Infinity"', text: '"Infinity"' },
  { label: '"1e21"', text: '"1e21"' },
  { label: 'empty string', text: '""' },
  { label: '100 KB string', text: JSON.stringify(LONG) },
  { label: 'array', text: '[1, [2]]' },
  { label: 'object', text: '{"a": {"b": 1}}' },
  { label: 'null', text: 'null' },
  { label: 'true', text: 'true' },
  { label: 'lone surrogate', text: '"\\ud800"' },
  { label: 'NUL', text: '"\\u0000"' },
];

const TRUTHS = ['1', 'true', 't', 'yes', 'y', 'on', '0', 'false', 'f', 'no', 'n', 'off', ''];
const SIGNALS = ['TERM', 'KILL', 'INT', 'QUIT', 'HUP', 'USR1', 'USR2'];
const CONTROL = /[\u0000-\u001f\u007f]/;

function inIntRange(text: string, min: number, max: number): boolean {
  if (!/^[+-]?\d+$/.test(text.trim())) return false;
  const n = BigInt(text.trim());
  return n >= BigInt(min) && n <= BigInt(max);
}

/** Whether `value` (decoded; given once) is one the parameter takes. */
function takes(kind: Kind, value: string): boolean {
  switch (kind.kind) {
    case 'int':
      if (value.trim() === '') return !kind.required;
      return inIntRange(value, kind.min, kind.max) && !(kind.except ?? []).includes(Number(value));
    case 'float':
      if (value.trim() === '') return true;
      return /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/.test(value.trim()) && Number(value) >= kind.min && Number(value) <= kind.max;
    case 'text':
      if (value.length > kind.max) return false;
      if (kind.controls !== 'allowed' && CONTROL.test(value)) return false;
      return value.trim() !== '' || !kind.required;
    case 'bool':
      return TRUTHS.includes(value.trim().toLowerCase());
    case 'choice':
      return value === '' || kind.values.includes(value);
    case 'sort':
      return value === '' || (SORTABLE_COLUMNS as readonly string[]).includes(value.replace(/^-/, ''));
    case 'date':
      return value.trim() === '';
    case 'state':
      return value.trim() === '' || (value.length <= 64 && /^[\p{L}\p{N}_.:-]+$/u.test(value.trim()));
    case 'search': {
      if (value.length > 2048 || CONTROL.test(value)) return false;
      if (kind.syntaxErrors === 'answered') return true;
      // Flower's language: terms of 3 characters or more, no '-' negation.
      return value === '' || (value.length >= 3 && !value.startsWith('-'));
    }
    case 'columns':
      return (TASK_COLUMN_NAMES as readonly string[]).includes(value);
    case 'signal':
      return value === '' || SIGNALS.includes(value.toUpperCase().replace(/^SIG/, ''));
    case 'rate':
      return value.length <= 32 && /^\d+(\.\d+)?(\/[smh])?$/.test(value);
    case 'json-field':
      // Any hostile text here is JSON of the wrong shape, or not JSON; empty is the default.
      return value.trim() === '' || (kind.shape === 'array' ? value.trim().startsWith('[') : value.trim().startsWith('{'));
  }
}

function takesJson(kind: JsonKind, text: string): boolean {
  const value = JSON.parse(text) as unknown;
  // null is Python's None: the same as leaving the field out.
  if (value === null) return true;
  switch (kind.kind) {
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'text':
      // A queue name: any well-formed text, control characters included.
      return typeof value === 'string' && value.trim() !== '' && value.length <= 255 && !/[\ud800-\udfff]/.test(value);
    case 'seconds': {
      const n =
        typeof value === 'number'
          ? value
          : typeof value === 'string' && /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/.test(value.trim())
            ? Number(value)
            : NaN;
      return n >= 0 && n <= kind.max;
    }
  }
}

// ---- Sending and judging.

interface Sent {
  status: number;
  type: string;
  text: string;
}

async function send(
  app: App,
  method: string,
  url: string,
  init: { body?: BodyInit; type?: string; headers?: Record<string, string> } = {},
): Promise<Sent> {
  const headers: Record<string, string> = { authorization: AUTH, ...(init.type ? { 'content-type': init.type } : {}), ...init.headers };
  const request: RequestInit & { duplex?: 'half' } = { method, headers };
  if (init.body !== undefined) {
    request.body = init.body;
    if (init.body instanceof ReadableStream) request.duplex = 'half';
  }
  const response = await app.request(`${ORIGIN}${url}`, request);
  return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}

/** The message a refusal carries: JSON's error, the page's alert or output, or the text. */
function messageOf(sent: Sent): string {
  if (sent.type.includes('json')) {
    const body = JSON.parse(sent.text) as { error?: unknown };
    return typeof body.error === 'string' ? body.error : '';
  }
  if (sent.type.includes('html')) {
    const found =
      /<p class="error" role="alert">([\s\S]*?)<\/p>/.exec(sent.text) ??
      /<h1>(?:Bad request|Not found)<\/h1>\s*<p>([\s\S]*?)<\/p>/.exec(sent.text) ??
      /<output class="outcome bad">([\s\S]*?)<\/output>/.exec(sent.text);
    const entities: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'", '&amp;': '&' };
    return (found?.[1] ?? '').replace(/&(?:lt|gt|quot|#39|amp);/g, (e) => entities[e]!).trim();
  }
  return sent.text;
}

function expectReadable(sent: Sent, label: string): void {
  const message = messageOf(sent);
  expect(message.length, `${label}: a message (${sent.text.slice(0, 300)})`).toBeGreaterThan(0);
  expect(message.length, `${label}: a short message, not the value echoed (${message.slice(0, 200)})`).toBeLessThan(600);
  expect(message, label).not.toMatch(/Internal server error|\n\s+at |[\u0000-\u0008\u000e-\u001f]/);
}

/** A request for `route` with every parameter at its valid value, except the overrides. */
interface Request {
  path: string;
  query: [string, string][];
  form: [string, string][];
  json: Record<string, string> | null;
}

function baseline(key: string, spec: RouteSpec): Request {
  const pattern = key.slice(key.indexOf(' ') + 1);
  const request: Request = { path: concretePath(pattern), query: [], form: [], json: spec.body === 'json' ? {} : null };
  for (const [param, p] of Object.entries(spec.params ?? {})) {
    if (p.valid === undefined) continue;
    (p.in === 'form' ? request.form : request.query).push([encodeURIComponent(param), encodeURIComponent(p.valid)]);
  }
  return request;
}

function urlOf(request: Request): string {
  const query = request.query.map(([k, v]) => `${k}=${v}`).join('&');
  return query ? `${request.path}?${query}` : request.path;
}

function bodyOf(request: Request, spec: RouteSpec): { body?: string; type?: string } {
  if (spec.body === 'form') return { body: request.form.map(([k, v]) => `${k}=${v}`).join('&'), type: 'application/x-www-form-urlencoded' };
  if (request.json)
    return {
      body: `{${Object.entries(request.json)
        .map(([k, v]) => `${JSON.stringify(k)}: ${v}`)
        .join(', ')}}`,
      type: 'application/json',
    };
  return {};
}

/** Send `request`; check it was taken or refused as expected, and what reached the collector. */
async function expectOutcome(
  app: App,
  control: RecordingControl,
  key: string,
  spec: RouteSpec,
  request: Request,
  valueTaken: boolean,
  label: string,
): Promise<Sent> {
  const method = key.slice(0, key.indexOf(' '));
  const before = control.commands.length;
  const url = urlOf(request);
  const sent = await send(app, method, url, bodyOf(request, spec));
  const where = `${label}: ${sent.status} ${sent.text.slice(0, 200)}`;
  expect(sent.status, where).toBeLessThan(500);
  // Node and Cloudflare refuse such a URL before the app; the app does the same.
  const taken = valueTaken && url.length <= MAX_URL;
  const sentCommands = control.commands.length - before;
  if (taken) {
    expect(spec.ok, where).toContain(sent.status);
    if (spec.inline) expect(sent.text, where).toMatch(/outcome ok/);
    if (spec.command === 'always') expect(sentCommands, `${where}: one command`).toBe(1);
  } else {
    if (url.length > MAX_URL) expect(sent.status, where).toBe(414);
    else if (spec.inline && sent.status === 200) expect(sent.text, where).toMatch(/outcome bad/);
    else expect([400, 404], where).toContain(sent.status);
    expectReadable(sent, where);
    expect(sentCommands, `${where}: no command for a refused request`).toBe(0);
  }
  if (spec.command === undefined || spec.command === 'never') expect(sentCommands, where).toBe(0);
  return sent;
}

function withParam(request: Request, param: string, p: Param, hostile: Hostile): Request {
  const copy: Request = { ...request, query: [...request.query], form: [...request.form] };
  if (p.in === 'path') {
    // The parameter's segment replaced: the concrete path holds task-1 or w1@host there.
    const filled = concretePath(`/:${param}`).slice(1);
    copy.path = request.path.replace(filled, hostile.raw);
    return copy;
  }
  const list = p.in === 'form' ? copy.form : copy.query;
  const kept = list.filter(([k]) => k !== encodeURIComponent(param));
  const entries: [string, string][] = Array.from({ length: hostile.repeated ? 2 : 1 }, () => [encodeURIComponent(param), hostile.raw]);
  if (p.in === 'form') copy.form = [...kept, ...entries];
  else copy.query = [...kept, ...entries];
  return copy;
}

/** The judge's verdict on a hostile value for a parameter. */
function verdict(p: Param, hostile: Hostile): boolean {
  if (hostile.value === null) return false;
  if (hostile.repeated) return false;
  // No route (404), unless the path without the segment is a page: an optional name (/stats/ is /stats).
  if (p.in === 'path' && hostile.value === '') return p.kind.kind === 'text' && p.kind.required === false;
  return takes(p.kind, hostile.value);
}

describe.each(DIALECTS)('hostile parameters on every route, on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: App;
  let control: RecordingControl;
  const logs: string[] = [];

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    for (const event of succeedingTask({ uuid: 'task-1', name: 'tasks.add' })) batch.add(event, workers);
    batch.add(workerEvent('worker-online', 'w1@host', 1_800_000_000), workers);
    await store(database, batch, workers);
    control = recordingControl();
    app = testApp(database, { control, auth: { basicAuth: BASIC }, now: 1_800_000_010, logs });
  });
  afterAll(async () => {
    await database?.drop();
  });

  const routes = () => handlerRoutes(app).map((r) => `${r.method} ${r.path}`);

  it('has a parameter table entry for every route, and no entry for a route that is gone', () => {
    const keys = routes();
    for (const key of keys) expect(ROUTES[key], `${key} is not in the table of hostile-params.test.ts`).toBeDefined();
    for (const key of Object.keys(ROUTES)) expect(keys, `${key} is in the table but not a route`).toContain(key);
    expect(keys.length).toBeGreaterThan(30);
  });

  it('takes each route’s valid request (so a refusal below means the value, not the request)', async () => {
    for (const key of routes()) {
      const spec = ROUTES[key]!;
      await expectOutcome(app, control, key, spec, baseline(key, spec), true, `${key} (valid)`);
    }
  });

  it('takes or refuses every hostile value of every parameter as the rules say, never with a 5xx', async () => {
    let sent = 0;
    for (const key of routes()) {
      const spec = ROUTES[key]!;
      const base = baseline(key, spec);
      for (const [param, p] of Object.entries(spec.params ?? {})) {
        for (const hostile of HOSTILE) {
          if (p.in === 'path' && hostile.repeated) continue; // a path segment cannot repeat
          await expectOutcome(
            app,
            control,
            key,
            spec,
            withParam(base, param, p, hostile),
            verdict(p, hostile),
            `${key} ${p.in} ${param}=${hostile.label}`,
          );
          sent++;
        }
      }
      // Parameters no route reads are ignored, but must still be well-formed.
      for (const hostile of HOSTILE) {
        const extra = withParam(base, 'unknown', { in: 'query', kind: { kind: 'text', max: Infinity, controls: 'allowed' } }, hostile);
        await expectOutcome(app, control, key, spec, extra, hostile.value !== null, `${key} query unknown=${hostile.label}`);
        sent++;
      }
    }
    expect(sent).toBeGreaterThan(1000);
    // Thousands of requests: on a machine busy with other suites this takes longer than the default 20 s.
  }, 60_000);

  it('takes or refuses every hostile JSON value of every body field', async () => {
    for (const key of routes()) {
      const spec = ROUTES[key]!;
      for (const [field, kind] of Object.entries(spec.json ?? {})) {
        for (const hostile of HOSTILE_JSON) {
          const request = { ...baseline(key, spec), json: { [field]: hostile.text } };
          await expectOutcome(app, control, key, spec, request, takesJson(kind, hostile.text), `${key} json ${field}=${hostile.label}`);
        }
      }
    }
  });

  it('answers the reported cases with 400 and a message (they gave 500 "datatype mismatch" and 503)', async () => {
    const e21 = `1${'0'.repeat(21)}`;
    const cases: [string, string, string][] = [
      ['GET', `/api/tasks?limit=${e21}`, "'limit' must be at most 100000"],
      ['GET', '/api/tasks?limit=9223372036854775808', "'limit' must be at most 100000"],
      ['GET', `/api/tasks?offset=${e21}`, "'offset' must be at most 1000000000"],
      ['GET', '/tasks?offset=1e300', "Invalid argument '1e300' of type 'int' for 'offset'"],
      ['GET', `/tasks/datatable?start=${e21}`, "'start' must be at most 1000000000"],
    ];
    for (const [method, url, message] of cases) {
      const sent = await send(app, method, url);
      expect(sent.status, url).toBe(400);
      expect(messageOf(sent), url).toBe(message);
    }
    const deep = `{"args": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    for (const route of ['send-task', 'apply', 'async-apply']) {
      const sent = await send(app, 'POST', `/api/task/${route}/tasks.add`, { body: deep, type: 'application/json' });
      expect(sent.status, route).toBe(400);
      expect(messageOf(sent), route).toBe('The body nests deeper than 64 levels (at character 72)');
    }
  });

  it('reads form fields from multipart bodies too', async () => {
    const before = control.commands.length;
    const body = new FormData();
    body.set('n', '3');
    const sent = await send(app, 'POST', '/api/worker/pool/grow/w1%40host', { body });
    expect(sent.status, sent.text).toBe(200);
    expect(control.commands.slice(before).map((c) => c.command)).toEqual([
      { kind: 'worker', action: 'pool_grow', worker: 'w1@host', args: { n: 3 } },
    ]);
  });

  it('refuses a repeated parameter given once in the query and once in the form', async () => {
    const before = control.commands.length;
    const sent = await send(app, 'POST', '/api/worker/pool/grow/w1%40host?n=1', { body: 'n=1', type: 'application/x-www-form-urlencoded' });
    expect(sent.status).toBe(400);
    expect(messageOf(sent)).toBe("'n' was given 2 times: give it once");
    expect(control.commands.length).toBe(before);
  });

  it('refuses hostile bodies on every route that takes one: 413, 415 or 400, before any command', async () => {
    const TEN_MB = new Uint8Array(10 * 1024 * 1024).fill(0x61);
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const streamed = () =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < TEN_MB.byteLength; at += 65_536) controller.enqueue(TEN_MB.subarray(at, at + 65_536));
          controller.close();
        },
      });
    const boundary = 'stalk-boundary';
    const multipart = (part: string) => `--${boundary}\r\n${part}\r\n--${boundary}--\r\n`;
    let checked = 0;
    for (const key of routes()) {
      const [method] = key.split(' ') as [string];
      if (method !== 'POST') continue;
      const spec = ROUTES[key]!;
      const url = urlOf(baseline(key, spec));
      const cases: [string, { body: BodyInit; type?: string; headers?: Record<string, string> }, number[]][] = [
        ['10 MB, declared', { body: TEN_MB, type: 'application/json', headers: { 'content-length': String(TEN_MB.byteLength) } }, [413]],
        ['10 MB, streamed without a length', { body: streamed(), type: 'application/json' }, [413]],
        ['10 MB under a lying Content-Length', { body: TEN_MB, type: 'application/json', headers: { 'content-length': '10' } }, [413]],
        ['wrong content type', { body: '<task/>', type: 'application/xml' }, [415]],
        [
          'invalid UTF-8',
          {
            body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
            type: spec.body === 'json' ? 'application/json' : 'application/x-www-form-urlencoded',
          },
          [400],
        ],
      ];
      if (spec.body === 'json') {
        cases.push(
          ['10,000-deep JSON', { body: deep, type: 'application/json' }, [400]],
          ['10,000-deep args', { body: `{"args": ${deep}}`, type: 'application/json' }, [400]],
          ['10,000-deep objects', { body: `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, type: 'application/json' }, [400]],
          ['malformed JSON', { body: '{"args": [1,', type: 'application/json' }, [400]],
          ['JSON that is not an object', { body: '[1, 2]', type: 'application/json' }, [400]],
          [
            'a form',
            {
              body: multipart('Content-Disposition: form-data; name="args"\r\n\r\n[1]'),
              type: `multipart/form-data; boundary=${boundary}`,
            },
            [415],
          ],
        );
      } else {
        cases.push(
          ['JSON to a form route', { body: deep, type: 'application/json' }, [415]],
          [
            'a file',
            {
              body: multipart('Content-Disposition: form-data; name="n"; filename="n.txt"\r\nContent-Type: text/plain\r\n\r\n1'),
              type: `multipart/form-data; boundary=${boundary}`,
            },
            [400],
          ],
          ['malformed multipart', { body: '--nope\r\nbroken', type: `multipart/form-data; boundary=${boundary}` }, [400]],
          ['broken percent-encoding', { body: 'n=%ED%A0%80', type: 'application/x-www-form-urlencoded' }, [400]],
        );
        // The send form's args hold JSON: measured before it is parsed, too.
        if (key === 'POST /tasks/send')
          cases.push([
            '10,000-deep JSON in a form field',
            { body: `args=${encodeURIComponent(deep)}&name=tasks.add`, type: 'application/x-www-form-urlencoded' },
            [400],
          ]);
      }
      for (const [label, init, statuses] of cases) {
        const before = control.commands.length;
        const sent = await send(app, 'POST', url, init);
        const where = `${key} ${label}: ${sent.status} ${sent.text.slice(0, 200)}`;
        expect(sent.status, where).toBeLessThan(500);
        // /tasks/send answers its own form's mistakes in place (htmx); the rest by status.
        if (spec.inline && sent.status === 200) expect(sent.text, where).toMatch(/outcome bad/);
        else expect(statuses, where).toContain(sent.status);
        expectReadable(sent, where);
        expect(control.commands.length, `${where}: no command`).toBe(before);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('shows a filter mistake on the tasks page in place: 200 for the live panel, 400 for a page load', async () => {
    const panel = await send(app, 'GET', '/tasks?limit=1000000000000000000000', { headers: { 'HX-Request': 'true' } });
    expect(panel.status).toBe(200);
    expect(messageOf(panel)).toBe("'limit' must be at most 500");
    const page = await send(app, 'GET', `/tasks?offset=1e300&q=${encodeURIComponent('<b>')}`);
    expect(page.status).toBe(400);
    expect(messageOf(page)).toBe("Invalid argument '1e300' of type 'int' for 'offset'");
    // The filter form keeps what was typed, escaped.
    expect(page.text).toContain('value="&lt;b&gt;"');
  });

  it('logged no internal error for any of it', () => {
    expect(logs.filter((line) => /ERROR|failed:/.test(line))).toEqual([]);
  });
});
