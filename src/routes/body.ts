// Request bodies: read once, capped, and parsed without surprises. The cap
// holds whatever Content-Length says (absent, or smaller than what arrives),
// and JSON is measured for nesting before JSON.parse builds anything, so no
// body can exhaust the stack here or downstream (the collector builds task
// messages from args/kwargs recursively).

import type { Context } from 'hono';
import { badRequest, payloadTooLarge, printable, quoted, unsupportedMediaType } from '../errors';

/** Every body, on every route: control actions and task options fit easily. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Nesting of arrays and objects in a JSON body or JSON form field. */
export const MAX_JSON_DEPTH = 64;

const bodies = new WeakMap<Context, Uint8Array<ArrayBuffer>>();

const tooLarge = () => payloadTooLarge(`Request body too large: at most ${MAX_BODY_BYTES} bytes`);

/** The body's bytes, at most MAX_BODY_BYTES (413 beyond); read from the stream once per request. */
export async function bodyBytes(c: Context): Promise<Uint8Array<ArrayBuffer>> {
  const known = bodies.get(c);
  if (known) return known;
  const stream = c.req.raw.body;
  if (!stream) return new Uint8Array(0);
  // A declared size over the cap is refused before reading; a declared size
  // is not trusted otherwise (the stream is counted).
  const declared = c.req.header('content-length');
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  bodies.set(c, bytes);
  // Whoever reads the request next (the CSRF check, Hono's parsers) gets the buffered copy.
  c.req.raw = new Request(c.req.raw, { body: bytes });
  return bytes;
}

/** The media type, lower case, without parameters; '' when absent. */
export function mediaType(c: Context): string {
  return (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

export const FORM_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data'];

/**
 * Flower reads a task's options from the body whatever its type, and its
 * documentation posts them with `curl -d` (form-urlencoded): those types are
 * read as JSON too.
 */
export function isJsonType(type: string): boolean {
  return (
    type === '' ||
    type === 'application/json' ||
    type.endsWith('+json') ||
    type === 'text/plain' ||
    type === 'application/x-www-form-urlencoded'
  );
}

export function utf8(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw badRequest(`The ${what} is not valid UTF-8`);
  }
}

/**
 * Where the text's arrays and objects first nest deeper than `max` (an
 * index), or -1. One pass, no recursion: brackets inside strings are skipped.
 */
export function tooDeepAt(text: string, max = MAX_JSON_DEPTH): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return -1;
}

/** JSON text as a value: nesting checked first, then parsed; 400 with the reason otherwise. */
export function parseJson(text: string, what: string): unknown {
  const deep = tooDeepAt(text);
  if (deep >= 0) throw badRequest(`${what} nests deeper than ${MAX_JSON_DEPTH} levels (at character ${deep})`);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    // V8's message quotes the text around the mistake: kept short and printable.
    throw badRequest(`${what} is not valid JSON: ${printable(error instanceof Error ? error.message : String(error), 200)}`);
  }
}

/** The JSON body of a route that takes one (Flower's task options); undefined when empty. */
export async function jsonBody(c: Context): Promise<unknown> {
  const type = mediaType(c);
  const bytes = await bodyBytes(c);
  if (bytes.byteLength > 0 && !isJsonType(type)) {
    throw unsupportedMediaType(`Unsupported content type '${quoted(type)}': send a JSON body (application/json)`);
  }
  const text = utf8(bytes, 'body');
  return text.trim() === '' ? undefined : parseJson(text, 'The body');
}

/** A multipart body's fields; files are refused (no route takes one). */
export async function multipartFields(c: Context, bytes: Uint8Array<ArrayBuffer>): Promise<[string, string][]> {
  let form: FormData;
  try {
    form = await new Response(bytes, { headers: { 'content-type': c.req.header('content-type') ?? '' } }).formData();
  } catch {
    throw badRequest('Malformed multipart/form-data body');
  }
  const fields: [string, string][] = [];
  for (const [name, value] of form.entries()) {
    if (typeof value !== 'string') throw badRequest(`'${quoted(name)}' must be a text field, not a file`);
    fields.push([name, value]);
  }
  return fields;
}
