// Python's repr as Celery's task messages need it: argsrepr and kwargsrepr
// are what celery.utils.saferepr(value, 1024) gives for the Python value a
// JSON document decodes to. saferepr is not repr(): strings are wrapped in
// single quotes with only `'` escaped (newlines stay as they are), containers
// nested 3 deep become `[...]` / `{...}`, and past `maxlen` characters the
// output ends with `, ...` and the brackets still open.

/** Celery's argsrepr_maxsize and kwargsrepr_maxsize. */
export const REPR_MAXSIZE = 1024;

type Token =
  | { kind: 'literal'; text: string; closers: string[] }
  | { kind: 'text'; text: string; closers: string[] }
  | { kind: 'quoted'; text: string; closers: string[] }
  | { kind: 'key'; text: string; closers: string[] };

const MAX_LEVELS = 3;

/** Python's len(): code points, not UTF-16 units. */
function pyLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** The first `count` code points of `text`. */
function pySlice(text: string, count: number): string {
  let n = 0;
  let i = 0;
  while (i < text.length && n < count) {
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && text.charCodeAt(i + 1) >= 0xdc00 && text.charCodeAt(i + 1) <= 0xdfff ? 2 : 1;
    n++;
  }
  return text.slice(0, i);
}

/** celery.utils.text.truncate: at `maxlen` or longer, cut to maxlen, back to the last space, add '...'. */
function truncate(text: string, maxlen: number | null): string {
  if (maxlen && pyLength(text) >= maxlen) {
    const head = pySlice(text, maxlen);
    const space = head.lastIndexOf(' ');
    return `${space === -1 ? head : head.slice(0, space)}...`;
  }
  return text;
}

/** Python's repr() of a float (shortest round-trip digits, exponent outside 1e-4 <= |x| < 1e16). */
export function pythonFloatRepr(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const [mantissa, exponentText] = value.toExponential().split('e') as [string, string];
  const exponent = Number(exponentText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = negative ? '-' : '';
  if (exponent < -4 || exponent >= 16) {
    const frac = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const exp = Math.abs(exponent);
    return `${sign}${frac}e${exponent < 0 ? '-' : '+'}${exp < 10 ? `0${exp}` : exp}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const intPart = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
  const fracPart = digits.slice(exponent + 1);
  return `${sign}${intPart}.${fracPart === '' ? '0' : fracPart}`;
}

/** A JSON number as Python's json module decodes and prints it: integers stay integers. */
function pythonNumberRepr(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e21) return BigInt(value).toString();
  return pythonFloatRepr(value);
}

function* reprTokens(value: unknown, open: string[]): Generator<Token> {
  const closers = () => [...open].reverse();
  if (value === null || value === undefined) {
    yield { kind: 'text', text: 'None', closers: closers() };
  } else if (typeof value === 'boolean') {
    yield { kind: 'text', text: value ? 'True' : 'False', closers: closers() };
  } else if (typeof value === 'number') {
    yield { kind: 'text', text: pythonNumberRepr(value), closers: closers() };
  } else if (typeof value === 'bigint') {
    yield { kind: 'text', text: value.toString(), closers: closers() };
  } else if (typeof value === 'string') {
    yield { kind: 'quoted', text: value, closers: closers() };
  } else if (Array.isArray(value) || typeof value === 'object') {
    const isList = Array.isArray(value);
    const [start, end] = isList ? ['[', ']'] : ['{', '}'];
    if (open.length >= MAX_LEVELS) {
      yield { kind: 'text', text: `${start}...${end}`, closers: closers() };
      return;
    }
    const inner = [...open, end];
    const innerClosers = () => [...inner].reverse();
    yield { kind: 'literal', text: start, closers: innerClosers() };
    const entries: [string | null, unknown][] = isList
      ? (value as unknown[]).map((v) => [null, v])
      : Object.entries(value as Record<string, unknown>);
    for (let i = 0; i < entries.length; i++) {
      const [key, item] = entries[i]!;
      if (key !== null) {
        yield { kind: 'key', text: key, closers: innerClosers() };
        yield { kind: 'literal', text: ': ', closers: innerClosers() };
      }
      yield* reprTokens(item, inner);
      if (i < entries.length - 1) yield { kind: 'literal', text: ', ', closers: innerClosers() };
    }
    yield { kind: 'literal', text: end, closers: closers() };
  } else {
    // Functions, symbols: not JSON; Python would print some repr.
    yield { kind: 'quoted', text: String(value), closers: closers() };
  }
}

function quote(text: string, maxlen: number | null): string {
  return `'${truncate(text, maxlen).replaceAll("'", "\\'")}'`;
}

/**
 * celery.utils.saferepr.saferepr(value, maxlen) for a JSON value: dicts and
 * lists, strings in single quotes, True/False/None, numbers as Python prints them.
 */
export function pythonRepr(value: unknown, maxlen: number | null = REPR_MAXSIZE): string {
  let remaining = maxlen;
  let out = '';
  for (const token of reprTokens(value, [])) {
    if (remaining !== null && remaining <= 0) {
      // Cut here: what was open gets closed, the token at the cut is lost (as in Celery).
      out += ', ...';
      out += token.closers.join('');
      return out;
    }
    let text: string;
    if (token.kind === 'literal') text = token.text;
    else if (token.kind === 'quoted') text = quote(token.text, remaining);
    else if (token.kind === 'key') text = quote(token.text, remaining);
    else text = truncate(token.text, remaining);
    out += text;
    if (remaining !== null) remaining -= pyLength(text);
  }
  return out;
}
