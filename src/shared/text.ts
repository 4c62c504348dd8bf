// Text from outside (the broker, the database) made safe to store, compare,
// encode and show. JSON can carry lone UTF-16 surrogates ("\ud800"), which
// `encodeURIComponent` refuses and which SQLite's driver writes as three
// invalid bytes (read back as three U+FFFD). Making every string well formed
// once, where it enters, keeps that out of every later step.

/**
 * Each lone surrogate replaced by one U+FFFD (what TextEncoder would write);
 * a well-formed string comes back as it is.
 */
export function wellFormed(text: string): string {
  return text.toWellFormed();
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A fresh copy of `text`. V8 represents a slice of 13 or more characters as a
 * view of its parent, so a 255-character name cut from a 10 MB string would
 * keep the 10 MB alive for as long as the name lives (a worker's entry, the
 * task-name cache). Encoding and decoding copies (and also makes it well formed).
 */
function detached(text: string): string {
  return decoder.decode(encoder.encode(text));
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * `text` well formed and at most `max` UTF-16 units long. The cut never ends
 * between the two halves of a surrogate pair (the pair goes whole), so cutting
 * never makes a well-formed string ill formed.
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text.toWellFormed();
  const end = max > 0 && isHighSurrogate(text.charCodeAt(max - 1)) ? max - 1 : max;
  return detached(text.slice(0, end));
}

/**
 * A path segment for a URL. Stored rows may hold lone surrogates (written
 * before decode sanitized, or by another writer), which `encodeURIComponent`
 * throws on; they are encoded as U+FFFD instead.
 */
export function pathSegment(text: string): string {
  return encodeURIComponent(text.toWellFormed());
}
