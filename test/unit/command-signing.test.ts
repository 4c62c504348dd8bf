// Signing and checking commands on the edge's command channel
// (src/shared/command-signing.ts): every field is covered by the MAC, the
// key is the one derived from the cookie secret, and stale, future, replayed,
// unsigned and malformed commands are refused with the right code.

import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  COMMAND_FUTURE_SKEW_SECONDS,
  COMMAND_MAX_AGE_SECONDS,
  deriveCommandKey,
  NonceCache,
  newNonce,
  signCommand,
  signReply,
  type SignedCommandRequest,
  type Verdict,
  verifyCommand,
  verifyReply,
} from '../../src/shared/command-signing';
import type { CommandRequest } from '../../src/shared/control';

const SECRET = 'a-cookie-secret-of-at-least-32-characters!';
const OTHER_SECRET = 'another-cookie-secret-of-32-characters-or-more';
const NOW = 1_900_000_000;
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const request: CommandRequest = {
  id: '0b0f5a56-5d4e-4c0e-9a53-1b1f1e6f7a10',
  user: 'alice@example.com',
  deadline: NOW + 30,
  command: { kind: 'worker', action: 'pool_grow', worker: 'w1@host', args: { n: 1 } },
};

async function signed(overrides: Partial<CommandRequest> = {}, issuedAt = NOW, secret = SECRET): Promise<SignedCommandRequest> {
  return signCommand(await deriveCommandKey(secret), { ...request, ...overrides }, issuedAt);
}

async function verdict(raw: unknown, now = NOW, nonces = new NonceCache()): Promise<Verdict> {
  return verifyCommand(typeof raw === 'string' ? raw : JSON.stringify(raw), await deriveCommandKey(SECRET), now, nonces);
}

function refusal(v: Verdict): Extract<Verdict, { ok: false }> {
  if (v.ok) throw new Error('expected a refusal, the command was accepted');
  return v;
}

describe('the command key', () => {
  it('is derived from the cookie secret, and is not the secret itself', async () => {
    const key = await deriveCommandKey(SECRET);
    const sameKey = await deriveCommandKey(new TextEncoder().encode(SECRET));
    const message = new TextEncoder().encode('probe');
    const a = new Uint8Array(await crypto.subtle.sign('HMAC', key, message));
    expect(new Uint8Array(await crypto.subtle.sign('HMAC', sameKey, message))).toEqual(a);
    // A MAC under the raw secret (what signs sessions) differs from one under the derived key.
    const raw = await crypto.subtle.importKey('raw', new TextEncoder().encode(SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    expect(new Uint8Array(await crypto.subtle.sign('HMAC', raw, message))).not.toEqual(a);
  });

  it('refuses a secret shorter than 32 characters', async () => {
    await expect(deriveCommandKey('short')).rejects.toThrow('at least 32 characters');
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every level and leaves out undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: null, y: 'é' }], c: true }, u: undefined })).toBe(
      '{"a":{"c":true,"d":[1,{"y":"é","z":null}]},"b":1}',
    );
    expect(canonicalJson({ b: 1, a: 2 })).toBe(canonicalJson(JSON.parse('{"a":2,"b":1}')));
  });

  it('refuses what JSON cannot carry', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow('not finite');
    expect(() => canonicalJson({ n: 1n })).toThrow('bigint');
  });
});

describe('a signed command', () => {
  it('carries the user, issue time, a nonce of 128+ bits and an HMAC-SHA256, and verifies', async () => {
    const command = await signed();
    expect(command).toMatchObject({
      v: 1,
      id: request.id,
      user: request.user,
      issued_at: NOW,
      deadline: request.deadline,
      command: request.command,
    });
    expect(command.nonce).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(command.sig).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await verdict(command)).toEqual({ ok: true, request });
  });

  it('verifies whatever order its keys arrive in', async () => {
    const command = await signed();
    const reordered = Object.fromEntries(Object.entries(command).reverse());
    (reordered as { command: unknown }).command = Object.fromEntries(Object.entries(command.command).reverse());
    expect((await verdict(reordered)).ok).toBe(true);
  });

  it('gets a new nonce every time', () => {
    const nonces = new Set(Array.from({ length: 1000 }, () => newNonce()));
    expect(nonces.size).toBe(1000);
  });

  const tamperings: [string, (c: SignedCommandRequest) => unknown][] = [
    ['id', (c) => ({ ...c, id: 'other-id' })],
    ['user', (c) => ({ ...c, user: 'mallory@example.com' })],
    ['issued_at', (c) => ({ ...c, issued_at: c.issued_at + 1 })],
    ['nonce', (c) => ({ ...c, nonce: newNonce() })],
    ['deadline', (c) => ({ ...c, deadline: c.deadline + 1 })],
    ['command kind', (c) => ({ ...c, command: { ...c.command, action: 'shutdown' } })],
    ['command argument', (c) => ({ ...c, command: { ...c.command, args: { n: 100 } } })],
    ['command target', (c) => ({ ...c, command: { ...c.command, worker: 'w2@host' } })],
    ['an added command field', (c) => ({ ...c, command: { ...c.command, extra: true } })],
    ['sig', (c) => ({ ...c, sig: `${c.sig.slice(0, 20)}${c.sig[20] === 'A' ? 'B' : 'A'}${c.sig.slice(21)}` })],
    // The unused low bits of the last character: the same bytes, another spelling.
    ['sig spelling', (c) => ({ ...c, sig: `${c.sig.slice(0, 42)}${B64URL[B64URL.indexOf(c.sig[42]!) ^ 1]}` })],
  ];
  it.each(tamperings)('is refused when its %s is altered', async (_field, tamper) => {
    const refused = refusal(await verdict(tamper(await signed())));
    expect(refused.code).toBe('bad-signature');
    expect(refused.status).toBe(403);
    expect(refused.reason).toMatch(/^bad signature/);
  });

  it('is refused under another key', async () => {
    const refused = refusal(await verdict(await signed({}, NOW, OTHER_SECRET)));
    expect(refused).toMatchObject({ code: 'bad-signature', id: request.id, claimedUser: request.user });
  });

  it('is refused without a signature, naming the claimed user and id for the audit', async () => {
    const { sig: _sig, ...unsigned } = await signed();
    expect(refusal(await verdict(unsigned))).toMatchObject({
      code: 'unsigned',
      status: 403,
      id: request.id,
      claimedUser: request.user,
      claimedCommand: request.command,
    });
    // The old, unsigned wire format.
    expect(refusal(await verdict({ id: 'x1', user: 'mallory', deadline: NOW + 30, command: { kind: 'queues' } })).code).toBe('unsigned');
  });

  it('is refused when issued more than a minute ago, even with a later deadline', async () => {
    const old = await signed({ deadline: NOW + 600 }, NOW - COMMAND_MAX_AGE_SECONDS - 1);
    expect(refusal(await verdict(old))).toMatchObject({ code: 'expired', status: 504 });
    expect((await verdict(await signed({}, NOW - COMMAND_MAX_AGE_SECONDS + 1))).ok).toBe(true);
  });

  it('is refused once its deadline passed', async () => {
    const late = await signed({ deadline: NOW - 1 }, NOW - 5);
    expect(refusal(await verdict(late))).toMatchObject({ code: 'expired', reason: `command ${request.id} expired before it could run` });
  });

  it('is refused when issued in the future beyond the allowed skew', async () => {
    const future = await signed({ deadline: NOW + 120 }, NOW + COMMAND_FUTURE_SKEW_SECONDS + 1);
    expect(refusal(await verdict(future))).toMatchObject({ code: 'future', status: 403 });
    expect((await verdict(await signed({ deadline: NOW + 120 }, NOW + COMMAND_FUTURE_SKEW_SECONDS - 1))).ok).toBe(true);
  });

  it('runs once: the same command again is a replay', async () => {
    const command = await signed();
    const nonces = new NonceCache();
    expect((await verdict(command, NOW, nonces)).ok).toBe(true);
    expect(refusal(await verdict(command, NOW + 1, nonces))).toMatchObject({ code: 'replayed', status: 403 });
    // Forged copies with a new nonce do not get through either.
    expect(refusal(await verdict({ ...command, nonce: newNonce() }, NOW + 1, nonces)).code).toBe('bad-signature');
  });

  it('does not spend a nonce on a command whose MAC is wrong', async () => {
    const command = await signed();
    const nonces = new NonceCache();
    expect(refusal(await verdict({ ...command, user: 'mallory' }, NOW, nonces)).code).toBe('bad-signature');
    expect(nonces.size).toBe(0);
    expect((await verdict(command, NOW, nonces)).ok).toBe(true);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['id as a number', { id: 42 }, 'id must be a short string'],
    ['id too long', { id: 'x'.repeat(200) }, 'id must be a short string'],
    ['user as a number', { user: 7 }, 'user must be a string'],
    ['user as an object', { user: { name: 'alice' } }, 'user must be a string'],
    ['issued_at as a string', { issued_at: String(NOW) }, 'issued_at must be a number'],
    ['nonce as a number', { nonce: 123456 }, 'nonce must be at least 128 random bits'],
    ['a short nonce', { nonce: 'abc' }, 'nonce must be at least 128 random bits'],
    ['deadline as a string', { deadline: 'soon' }, 'deadline must be a number'],
    ['command as a string', { command: 'queues' }, 'command must be an object'],
    ['command as an array', { command: [] }, 'command must be an object'],
    ['sig as a number', { sig: 1 }, 'sig must be an HMAC-SHA256'],
    ['sig as null', { sig: null }, 'sig must be an HMAC-SHA256'],
    ['another version', { v: 2 }, 'unknown signature version 2'],
  ])('is refused as malformed with %s', async (_name, change, message) => {
    const refused = refusal(await verdict({ ...(await signed()), ...change }));
    expect(refused.code).toBe('malformed');
    expect(refused.status).toBe(400);
    expect(refused.reason).toContain(message);
  });

  it('is refused as malformed when it is not JSON or not an object, without an id to answer', async () => {
    expect(refusal(await verdict('not json'))).toMatchObject({ code: 'malformed', id: null, reason: 'malformed command: not JSON' });
    expect(refusal(await verdict('[1,2]'))).toMatchObject({ code: 'malformed', id: null, reason: 'malformed command: not an object' });
  });

  it('is refused when properly signed but not a command Stalk knows', async () => {
    const refused = refusal(await verdict(await signed({ command: { kind: 'explode' } as unknown as CommandRequest['command'] })));
    expect(refused).toMatchObject({ code: 'malformed', reason: "malformed command: unknown command 'explode'" });
  });
});

describe('the nonce cache', () => {
  it('forgets a nonce once its command is too old to be accepted anyway, and stays within its capacity', () => {
    const cache = new NonceCache(2);
    expect(cache.remember('a'.repeat(22), NOW, NOW)).toBe('fresh');
    expect(cache.remember('b'.repeat(22), NOW, NOW)).toBe('fresh');
    expect(cache.remember('a'.repeat(22), NOW, NOW + 10)).toBe('replayed');
    // Full of live nonces: refuse rather than forget one.
    expect(cache.remember('c'.repeat(22), NOW, NOW + 10)).toBe('full');
    // Once they expire they make room.
    expect(cache.remember('c'.repeat(22), NOW + 61, NOW + COMMAND_MAX_AGE_SECONDS + 1)).toBe('fresh');
    expect(cache.size).toBe(1);
  });
});

describe('a signed reply', () => {
  it('verifies for its own command only, and not when altered or signed with another key', async () => {
    const key = await deriveCommandKey(SECRET);
    const outcome = { ok: true as const, result: [{ name: 'celery', messages: 2, ready: 1, unacked: 1, consumers: null }] };
    const text = JSON.stringify(await signReply(key, 'id-1', outcome));
    expect(await verifyReply(key, 'id-1', text)).toEqual(outcome);
    expect(await verifyReply(key, 'id-2', text)).toBeNull();
    const altered = JSON.parse(text) as { outcome: { result: { name: string }[] } };
    altered.outcome.result[0]!.name = 'forged';
    expect(await verifyReply(key, 'id-1', JSON.stringify(altered))).toBeNull();
    const other = JSON.stringify(await signReply(await deriveCommandKey(OTHER_SECRET), 'id-1', outcome));
    expect(await verifyReply(key, 'id-1', other)).toBeNull();
    expect(await verifyReply(key, 'id-1', JSON.stringify({ ok: true, result: 'unsigned' }))).toBeNull();
    expect(await verifyReply(key, 'id-1', 'not json')).toBeNull();
  });

  it('cannot pass for a command, nor a command for a reply', async () => {
    const key = await deriveCommandKey(SECRET);
    const command = await signed();
    const asReply = JSON.stringify({ v: 1, id: command.id, outcome: { ok: true, result: null }, sig: command.sig });
    expect(await verifyReply(key, command.id, asReply)).toBeNull();
    const reply = await signReply(key, request.id, { ok: true, result: 'ok' });
    expect(refusal(await verdict({ ...command, sig: reply.sig })).code).toBe('bad-signature');
  });
});
