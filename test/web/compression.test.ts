// Responses of the Node entry (src/node.ts, run as `npm start` runs it) are
// compressed when the client accepts it: br before gzip, as weighed by its
// Accept-Encoding; text of 1 KB or more only; a poll's 304 still comes back
// (the ETag turns weak and still matches). The shared app, which the Worker
// serves, compresses nothing: Cloudflare does that at the edge. Requests go
// through node:http, which hands back the bytes as sent.

import { request as httpRequest } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../worker-collector/migrations';
import { failed, succeedingTask } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { createTestDatabase, openTestConnection, type TestDatabase } from '../support/databases';
import { stopAllProcesses } from '../support/processes';
import { type Stalk, startStalk } from '../support/stalk';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(stalk: Stalk, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${stalk.baseUrl}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.end();
  });
}

function decoded(raw: Raw): string {
  const encoding = raw.headers['content-encoding'];
  if (encoding === 'br') return brotliDecompressSync(raw.body).toString('utf8');
  if (encoding === 'gzip') return gunzipSync(raw.body).toString('utf8');
  if (encoding === undefined) return raw.body.toString('utf8');
  throw new Error(`unexpected content-encoding ${String(encoding)}`);
}

describe('compression on the Node entry', () => {
  let database: TestDatabase | undefined;
  let stalk: Stalk;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    const open = await openTestConnection(database.url);
    await migrateToLatest(open.db);
    const events = [];
    for (let i = 0; i < 40; i++) events.push(...succeedingTask({ uuid: `ok-${i}`, name: 'billing.charge' }, 1_800_000_000 + i));
    events.push(failed({ uuid: 'ok-0', name: 'billing.charge' }, 1_800_000_100, "ValueError('declined')"));
    await store(open, events);
    await open.close();
    // A Redis database of this file's own (no worker publishes there): the stored tasks stay as they are.
    stalk = await startStalk({ broker: 'redis://localhost:6379/9', db: database.url, extraArgs: ['--no-enable-events'] });
  }, 60_000);

  afterAll(async () => {
    await stopAllProcesses();
    await database?.drop();
  });

  it('sends /api/tasks as br or gzip as the client weighs them, decoding to the same JSON', async () => {
    const plain = await get(stalk, '/api/tasks?limit=40');
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    const expected = JSON.parse(plain.body.toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(expected)).toHaveLength(40);

    const cases: [string, string | undefined][] = [
      ['gzip, deflate, br', 'br'],
      ['gzip', 'gzip'],
      ['br;q=0.5, gzip', 'gzip'],
      ['br;q=0, gzip;q=0', undefined],
      ['*', 'br'],
      ['identity', undefined],
    ];
    for (const [accept, encoding] of cases) {
      const raw = await get(stalk, '/api/tasks?limit=40', { 'Accept-Encoding': accept });
      expect(raw.status, accept).toBe(200);
      expect(raw.headers['content-encoding'], accept).toBe(encoding);
      expect(raw.headers.vary, accept).toMatch(/Accept-Encoding/);
      expect(JSON.parse(decoded(raw)), accept).toEqual(expected);
      if (encoding) {
        expect(raw.body.length, accept).toBeLessThan(plain.body.length / 3);
        expect(Number(raw.headers['content-length']), accept).toBe(raw.body.length);
      }
    }
  });

  it('compresses pages and scripts; not tiny bodies, HEAD requests or what is not text', async () => {
    const page = await get(stalk, '/tasks', { 'Accept-Encoding': 'br' });
    expect(page.status).toBe(200);
    expect(page.headers['content-encoding']).toBe('br');
    expect(decoded(page)).toContain('id="tasks-table"');
    expect(decoded(page)).toContain('ok-39');

    const script = await get(stalk, '/static/stalk.js', { 'Accept-Encoding': 'gzip' });
    expect(script.headers['content-encoding']).toBe('gzip');
    expect(decoded(script)).toContain('stalk.columns');

    const health = await get(stalk, '/healthcheck', { 'Accept-Encoding': 'gzip, br' });
    expect(health.status).toBe(200);
    expect(health.body.length).toBeLessThan(1024);
    expect(health.headers['content-encoding']).toBeUndefined();

    const head = await get(stalk, '/tasks', { 'Accept-Encoding': 'br' }, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-encoding']).toBeUndefined();

    // A redirect has no text to compress.
    const icon = await get(stalk, '/favicon.ico', { 'Accept-Encoding': 'br' });
    expect(icon.status).toBe(301);
    expect(icon.headers['content-encoding']).toBeUndefined();
  });

  it("a live panel's poll still gets 304 when nothing changed, compressed or not", async () => {
    for (const accept of ['br', 'gzip', '']) {
      const headers: Record<string, string> = { 'HX-Request': 'true', ...(accept ? { 'Accept-Encoding': accept } : {}) };
      const first = await get(stalk, '/tasks', headers);
      expect(first.status).toBe(200);
      const etag = first.headers.etag;
      expect(typeof etag).toBe('string');
      // Compressed bytes differ from plain ones: the tag is weak then.
      expect(String(etag).startsWith('W/')).toBe(accept !== '');
      const again = await get(stalk, '/tasks', { ...headers, 'If-None-Match': String(etag) });
      expect(again.status, accept).toBe(304);
      expect(again.body.length).toBe(0);
      expect(again.headers['content-encoding']).toBeUndefined();
    }
  });

  it('the shared app (what the Worker serves) leaves compression to Cloudflare', async () => {
    if (!database) throw new Error('no database');
    const open = await openTestConnection(database.url);
    try {
      const response = await testApp(open, { ui: { refreshSeconds: 3 } }).request('/tasks', { headers: { 'Accept-Encoding': 'gzip, br' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('Content-Encoding')).toBeNull();
      expect(await response.text()).toContain('ok-39');
    } finally {
      await open.close();
    }
  });
});
