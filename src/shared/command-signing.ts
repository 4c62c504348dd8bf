// Signed commands on the edge's command channel. Anyone holding the Upstash
// token can write to the list the collector reads, so the list proves
// nothing: each command carries who asked, when, a random nonce and an
// HMAC-SHA256 over all of it, keyed by a key derived from the cookie secret
// that the Worker and the collector share. The collector runs a command only
// when the MAC checks out, it is fresh, and its nonce is new; it signs its
// replies the same way, so a forged reply cannot stand in for one either.
//
// WebCrypto only (crypto.subtle), so workerd and Node run the same code.

import { base64url, randomToken } from './base64url';
import { type CommandErrorStatus, type CommandOutcome, type CommandRequest, type ControlCommand, validateCommand } from './control';

/** The label the command key is derived under: never the session key itself, and a new label when the format changes. */
const KEY_LABEL = 'stalk command channel v1';
export const SIGNATURE_VERSION = 1 as const;
/** A command issued longer ago than this is refused, whatever its deadline says. */
export const COMMAND_MAX_AGE_SECONDS = 60;
/** How far in the future an issue time may lie (the Worker's and the collector's clocks differ a little). */
export const COMMAND_FUTURE_SKEW_SECONDS = 5;
/** Random bytes per nonce (192 bits; at least 128 are required). */
const NONCE_BYTES = 24;
/** 128 bits in base64url is 22 characters: shorter nonces are refused. */
const NONCE_PATTERN = /^[A-Za-z0-9_-]{22,128}$/;
/** HMAC-SHA256 in base64url without padding. */
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Ids the collector will answer under (a reply key is built from it). */
const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** The cookie secret's own minimum (src/auth/tokens.ts). */
const MIN_SECRET_LENGTH = 32;

/** What travels on the list: a CommandRequest plus its proof. */
export interface SignedCommandRequest extends CommandRequest {
  v: typeof SIGNATURE_VERSION;
  /** Seconds since the epoch, the issuer's clock. */
  issued_at: number;
  nonce: string;
  sig: string;
}

/** What travels back on the reply list. */
export interface SignedReply {
  v: typeof SIGNATURE_VERSION;
  id: string;
  outcome: CommandOutcome;
  sig: string;
}

const encoder = new TextEncoder();

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The command key: HMAC-SHA256(cookie secret, label). Deriving it keeps the
 * session-signing key out of the channel: a MAC seen on the list says
 * nothing usable about the key that signs cookies and API tokens.
 */
export async function deriveCommandKey(secret: string | Uint8Array): Promise<CryptoKey> {
  const bytes = typeof secret === 'string' ? encoder.encode(secret) : new Uint8Array(secret);
  if (bytes.length < MIN_SECRET_LENGTH)
    throw new Error(`the cookie secret must be at least ${MIN_SECRET_LENGTH} characters (it keys the command channel)`);
  const master = await crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const derived = new Uint8Array(await crypto.subtle.sign('HMAC', master, encoder.encode(KEY_LABEL)));
  return crypto.subtle.importKey('raw', derived, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

/**
 * JSON with object keys sorted at every level and undefined members left
 * out: the same value gives the same text whatever order its keys were
 * written or parsed in. Non-finite numbers and other non-JSON values throw.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonicalJson: a number is not finite');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
      const record = value as Record<string, unknown>;
      const members = Object.keys(record)
        .filter((key) => record[key] !== undefined)
        .sort()
        .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
      return `{${members.join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot serialise a ${typeof value}`);
  }
}

/** The bytes a command's MAC covers: a tag, the version, then every field but the MAC, in a fixed order. */
function commandMessage(r: Omit<SignedCommandRequest, 'sig'>): Uint8Array<ArrayBuffer> {
  return encoder.encode(canonicalJson(['stalk-command', r.v, r.id, r.user, r.issued_at, r.nonce, r.deadline, r.command]));
}

/** The bytes a reply's MAC covers; the tag keeps a reply from ever passing as a command, and the id binds it to one. */
function replyMessage(id: string, outcome: CommandOutcome): Uint8Array<ArrayBuffer> {
  return encoder.encode(canonicalJson(['stalk-reply', SIGNATURE_VERSION, id, outcome]));
}

async function mac(key: CryptoKey, message: Uint8Array<ArrayBuffer>): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.sign('HMAC', key, message)));
}

/**
 * crypto.subtle.verify compares in constant time. The last of 43 base64url
 * characters carries two unused bits: only the canonical spelling is
 * accepted, so a MAC has exactly one text form.
 */
async function macMatches(key: CryptoKey, message: Uint8Array<ArrayBuffer>, sig: string): Promise<boolean> {
  const bytes = fromBase64url(sig);
  if (base64url(bytes) !== sig) return false;
  return crypto.subtle.verify('HMAC', key, bytes, message);
}

export function newNonce(): string {
  return randomToken(NONCE_BYTES);
}

/** Sign a request now (`now` in seconds since the epoch). */
export async function signCommand(key: CryptoKey, request: CommandRequest, now: number): Promise<SignedCommandRequest> {
  const unsigned = {
    v: SIGNATURE_VERSION,
    id: request.id,
    user: request.user,
    issued_at: now,
    nonce: newNonce(),
    deadline: request.deadline,
    command: request.command,
  };
  return { ...unsigned, sig: await mac(key, commandMessage(unsigned)) };
}

export async function signReply(key: CryptoKey, id: string, outcome: CommandOutcome): Promise<SignedReply> {
  return { v: SIGNATURE_VERSION, id, outcome, sig: await mac(key, replyMessage(id, outcome)) };
}

/** The outcome a reply carries, or null when it is not this command's reply or its MAC is wrong. */
export async function verifyReply(key: CryptoKey, id: string, text: string): Promise<CommandOutcome | null> {
  try {
    const reply = JSON.parse(text) as Partial<SignedReply>;
    if (reply.v !== SIGNATURE_VERSION || reply.id !== id || typeof reply.sig !== 'string' || !SIGNATURE_PATTERN.test(reply.sig))
      return null;
    const outcome = reply.outcome;
    if (typeof outcome !== 'object' || outcome === null || typeof outcome.ok !== 'boolean') return null;
    return (await macMatches(key, replyMessage(id, outcome), reply.sig)) ? outcome : null;
  } catch {
    return null;
  }
}

/**
 * Nonces seen within the validity window, each kept until its command could
 * no longer be accepted anyway (issue time + max age). Bounded: when full of
 * live nonces it refuses new commands rather than forget one (only commands
 * with a good MAC get here, so only a key holder could fill it).
 */
export class NonceCache {
  private readonly expiries = new Map<string, number>();
  constructor(private readonly capacity = 100_000) {}

  /** 'fresh' (and now remembered), 'replayed', or 'full'. */
  remember(nonce: string, issuedAt: number, now: number): 'fresh' | 'replayed' | 'full' {
    const expiry = this.expiries.get(nonce);
    if (expiry !== undefined && expiry >= now) return 'replayed';
    if (this.expiries.size >= this.capacity) this.sweep(now);
    if (this.expiries.size >= this.capacity) return 'full';
    this.expiries.set(nonce, issuedAt + COMMAND_MAX_AGE_SECONDS);
    return 'fresh';
  }

  get size(): number {
    return this.expiries.size;
  }

  private sweep(now: number): void {
    for (const [nonce, expiry] of this.expiries) if (expiry < now) this.expiries.delete(nonce);
  }
}

export type RefusalCode = 'malformed' | 'unsigned' | 'bad-signature' | 'expired' | 'future' | 'replayed' | 'overloaded';

export type Verdict =
  | { ok: true; request: CommandRequest }
  | {
      ok: false;
      status: CommandErrorStatus;
      /** Which check failed (logs are rate-limited per code). */
      code: RefusalCode;
      reason: string;
      /** The id to answer under, when it is one the collector may use. */
      id: string | null;
      /** The user the command claims (unverified), for the audit log. */
      claimedUser: string | null;
      /** The command it claims to carry (unverified), for the audit log. */
      claimedCommand: unknown;
    };

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Which field is malformed, or null. */
function shapeError(r: Record<string, unknown>): string | null {
  if (r.v !== SIGNATURE_VERSION) return `unknown signature version ${JSON.stringify(r.v ?? null)}`;
  if (typeof r.id !== 'string' || !ID_PATTERN.test(r.id)) return 'id must be a short string';
  if (typeof r.user !== 'string' || r.user.length === 0 || r.user.length > 255) return 'user must be a string';
  if (!isFiniteNumber(r.issued_at)) return 'issued_at must be a number';
  if (typeof r.nonce !== 'string' || !NONCE_PATTERN.test(r.nonce)) return 'nonce must be at least 128 random bits in base64url';
  if (!isFiniteNumber(r.deadline)) return 'deadline must be a number';
  if (typeof r.command !== 'object' || r.command === null || Array.isArray(r.command)) return 'command must be an object';
  if (typeof r.sig !== 'string' || !SIGNATURE_PATTERN.test(r.sig)) return 'sig must be an HMAC-SHA256 in base64url';
  return null;
}

/**
 * Decide about one raw entry of the command list. In order: well-formed,
 * signed, MAC right, fresh (issued within the last minute, not in the
 * future, deadline not passed), never seen before, and a command Stalk
 * knows. Only the last two steps remember anything, and only for commands
 * whose MAC checked out.
 */
export async function verifyCommand(raw: string, key: CryptoKey, now: number, nonces: NonceCache): Promise<Verdict> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  const r = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  const id = r && typeof r.id === 'string' && ID_PATTERN.test(r.id) ? r.id : null;
  const refuse = (status: CommandErrorStatus, code: RefusalCode, reason: string): Verdict => ({
    ok: false,
    status,
    code,
    reason,
    id,
    claimedUser: r && typeof r.user === 'string' ? r.user.slice(0, 255) : null,
    claimedCommand: r?.command ?? null,
  });
  if (!r) return refuse(400, 'malformed', parsed === undefined ? 'malformed command: not JSON' : 'malformed command: not an object');
  if (r.sig === undefined)
    return refuse(403, 'unsigned', 'unsigned command refused (the Worker and the collector must share the cookie secret)');
  const malformed = shapeError(r);
  if (malformed) return refuse(400, 'malformed', `malformed command: ${malformed}`);
  const signed = r as unknown as SignedCommandRequest;
  let good: boolean;
  try {
    good = await macMatches(key, commandMessage(signed), signed.sig);
  } catch {
    // canonicalJson refused a value no signer could have produced.
    good = false;
  }
  if (!good)
    return refuse(
      403,
      'bad-signature',
      'bad signature: the command was altered, or signed with another key (is the cookie secret the same on both sides?)',
    );
  const age = now - signed.issued_at;
  if (age > COMMAND_MAX_AGE_SECONDS) return refuse(504, 'expired', `command ${signed.id} expired: issued ${Math.round(age)} s ago`);
  if (age < -COMMAND_FUTURE_SKEW_SECONDS)
    return refuse(403, 'future', `command ${signed.id} refused: issued ${Math.round(-age)} s in the future (check the clocks)`);
  if (signed.deadline < now) return refuse(504, 'expired', `command ${signed.id} expired before it could run`);
  const seen = nonces.remember(signed.nonce, signed.issued_at, now);
  if (seen === 'replayed') return refuse(403, 'replayed', `command ${signed.id} refused: replayed (its nonce was used already)`);
  if (seen === 'full') return refuse(503, 'overloaded', 'too many commands in the last minute; try again shortly');
  const commandError = validateCommand(signed.command as unknown as Record<string, unknown>);
  if (commandError) return refuse(400, 'malformed', `malformed command: ${commandError}`);
  const command = signed.command as ControlCommand;
  return { ok: true, request: { id: signed.id, user: signed.user, deadline: signed.deadline, command } };
}
