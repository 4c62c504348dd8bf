// Recovering a task's exact arguments for a retry, from one of two texts:
//
// - `parseArgsRepr`: the `args`/`kwargs` a task event carries, which is
//   Celery's argsrepr: celery.utils.saferepr(value, 1024), not repr(). Its
//   strings are the raw text in single quotes with only `'` written as `\'`
//   (a backslash, a newline, any character stands for itself), containers
//   nested three deep print as `[...]`, and past the size limit the text is
//   cut with `...`. The parser is the inverse of that, and refuses whatever
//   that inverse cannot give back exactly: anything cut (`...`), strings that
//   may have been cut (ending in '...') or that hold `\'` (a string ending
//   in a backslash prints the same way, so the reading is ambiguous), objects,
//   sets, bytes, Decimal, datetimes, NaN and infinities, integers beyond
//   2^53 - 1, non-string dict keys, U+FFFD (decode's stand-in for a lone
//   surrogate), and any spacing saferepr does not produce.
// - `parseExactJson`: the args and kwargs in a result backend's task meta
//   (Celery's result_extended), JSON as the worker decoded its message;
//   refused on NaN/Infinity and integers beyond 2^53 - 1.
//
// Both give the JSON text to put in the retried task's body. It keeps a
// float a float: `1.0` stays `1.0` (JSON.stringify would write `1`, which
// Python reads as an int). Tuples become lists, as Celery's JSON serializer
// delivered them to the worker in the first place.

/** The deepest nesting accepted (saferepr shows at most 3 levels; result meta may hold more). */
export const MAX_LITERAL_DEPTH = 64;

export type Recovered = { ok: true; json: string; value: unknown } | { ok: false; reason: string };

class Refused extends Error {}

const refuse = (reason: string): never => {
  throw new Refused(reason);
};

/** A float as JSON text Python's json module reads back as the same float. */
function floatJson(n: number): string {
  if (!Number.isFinite(n)) return refuse('NaN and infinities are not JSON');
  if (Object.is(n, -0)) return '-0.0';
  const text = String(n);
  return /[.eE]/.test(text) ? text : `${text}.0`;
}

function intJson(digits: string): { json: string; value: number } {
  const value = Number(digits);
  if (!Number.isSafeInteger(value)) refuse(`the integer ${digits.length > 40 ? `${digits.slice(0, 40)}...` : digits} is beyond 2^53 - 1`);
  return { json: String(value), value };
}

/** A sticky pattern matched at `at`, without copying the rest of the text. */
function matchAt(pattern: RegExp, text: string, at: number): RegExpExecArray | null {
  pattern.lastIndex = at;
  return pattern.exec(text);
}

interface Parsed {
  json: string;
  value: unknown;
}

/** saferepr's output, read back (see the top of the file). */
class ReprReader {
  private i = 0;
  constructor(private readonly text: string) {}

  read(top: 'args' | 'kwargs'): Parsed {
    if (/\.\.\.[\])}]*$/.test(this.text)) refuse("it was cut by Celery's argsrepr size limit");
    const c = this.text[0];
    if (top === 'args' && c !== '(' && c !== '[') refuse('args are not a tuple or list');
    if (top === 'kwargs' && c !== '{') refuse('kwargs are not a dict');
    const parsed = this.value(0);
    if (this.i !== this.text.length) this.fail();
    return parsed;
  }

  private fail(): never {
    const at = this.text.slice(this.i, this.i + 24);
    if (this.text.startsWith('...', this.i) || /^[[({]\.\.\.[\])}]/.test(at))
      refuse("it was cut by Celery's argsrepr (size or nesting limit)");
    if (at.startsWith('<')) refuse(`it holds an object (${at.split('>')[0]}>)`);
    if (/^b'/.test(at)) refuse('it holds bytes');
    const call = /^(?:\w+\.)*(Decimal|datetime|date|time|timedelta|UUID|set|frozenset)\(/.exec(at);
    if (call) refuse(`it holds a ${call[1]}`);
    return refuse(`it is not a Python literal of JSON types at character ${this.i}: '${at}'`);
  }

  private eat(s: string): boolean {
    if (!this.text.startsWith(s, this.i)) return false;
    this.i += s.length;
    return true;
  }

  private value(depth: number): Parsed {
    if (depth > MAX_LITERAL_DEPTH) refuse(`it is nested deeper than ${MAX_LITERAL_DEPTH}`);
    const c = this.text[this.i];
    if (c === "'") return this.string();
    if (c === '[') return this.sequence(depth, ']');
    if (c === '(') return this.sequence(depth, ')');
    if (c === '{') return this.dict(depth);
    for (const [word, json, value] of [
      ['None', 'null', null],
      ['True', 'true', true],
      ['False', 'false', false],
    ] as const) {
      if (this.eat(word)) return { json, value };
    }
    return this.number();
  }

  private number(): Parsed {
    const m = matchAt(/-?(?:inf|nan|\d+(\.\d+)?(e[+-]\d+)?)/y, this.text, this.i);
    if (!m) return this.fail();
    const token = m[0];
    this.i += token.length;
    if (/[\w.]/.test(this.text[this.i] ?? '')) {
      this.i -= token.length;
      return this.fail();
    }
    if (/inf|nan/.test(token)) return refuse('NaN and infinities are not JSON');
    if (m[1] === undefined && m[2] === undefined) return intJson(token);
    const value = Number(token);
    return { json: floatJson(value), value };
  }

  private string(): Parsed {
    this.i += 1;
    let out = '';
    for (;;) {
      if (this.i >= this.text.length) refuse('a string is not closed');
      const c = this.text[this.i]!;
      if (c === "'") break;
      if (c === '\\' && this.text[this.i + 1] === "'")
        refuse("a string holds \\' (saferepr prints a string ending in a backslash the same way)");
      out += c;
      this.i += 1;
    }
    this.i += 1;
    if (out.endsWith('...')) refuse("a string ends in '...' and may have been cut by Celery's argsrepr");
    if (out.includes('\uFFFD')) refuse('a string holds U+FFFD, which may stand for a character that was not valid text');
    if (!out.isWellFormed()) refuse('a string is not well-formed text');
    return { json: JSON.stringify(out), value: out };
  }

  private sequence(depth: number, end: ']' | ')'): Parsed {
    this.i += 1;
    const items: Parsed[] = [];
    if (!this.eat(end)) {
      for (;;) {
        items.push(this.value(depth + 1));
        if (this.eat(end)) break;
        if (end === ')' && items.length === 1 && this.eat(',)')) break;
        if (!this.eat(', ')) this.fail();
      }
    }
    return { json: `[${items.map((p) => p.json).join(',')}]`, value: items.map((p) => p.value) };
  }

  private dict(depth: number): Parsed {
    this.i += 1;
    const json: string[] = [];
    const value: Record<string, unknown> = {};
    const seen = new Set<string>();
    if (!this.eat('}')) {
      for (;;) {
        if (this.text[this.i] !== "'") {
          if (this.text.startsWith('...}', this.i)) this.fail();
          // `{1, 2}` is a set, `{1: 2}` a dict with a number for a key.
          refuse('it holds a set or a dict whose keys are not all strings');
        }
        const key = this.string();
        if (!this.eat(': ')) refuse('it holds a set or a malformed dict');
        if (seen.has(key.value as string)) refuse('a dict repeats a key');
        seen.add(key.value as string);
        const item = this.value(depth + 1);
        json.push(`${key.json}:${item.json}`);
        Object.defineProperty(value, key.value as string, { value: item.value, enumerable: true, writable: true, configurable: true });
        if (this.eat('}')) break;
        if (!this.eat(', ')) this.fail();
      }
    }
    return { json: `{${json.join(',')}}`, value };
  }
}

/** Exact JSON (the result backend's meta), re-emitted with floats kept floats. */
class JsonReader {
  private i = 0;
  /** The first value that is JSON but not exact (a big integer, NaN): the text still parses past it. */
  private problem: string | undefined;
  constructor(private readonly text: string) {}

  read(): Parsed {
    this.space();
    const parsed = this.value(0);
    this.space();
    if (this.i !== this.text.length) this.fail();
    if (this.problem) refuse(this.problem);
    return parsed;
  }

  /** A JSON object's fields, each read exactly or refused on its own (a NaN result does not spoil the args). */
  fields(): Map<string, Recovered> {
    const out = new Map<string, Recovered>();
    this.space();
    if (this.text[this.i] !== '{') this.fail();
    this.i += 1;
    this.space();
    if (this.text[this.i] === '}') this.i += 1;
    else {
      for (;;) {
        this.space();
        if (this.text[this.i] !== '"') this.fail();
        const key = this.string().value as string;
        this.space();
        if (this.text[this.i] !== ':') this.fail();
        this.i += 1;
        this.space();
        this.problem = undefined;
        const item = this.value(1);
        out.set(key, this.problem ? { ok: false, reason: this.problem } : { ok: true, ...item });
        this.space();
        const c = this.text[this.i];
        this.i += 1;
        if (c === '}') break;
        if (c !== ',') {
          this.i -= 1;
          this.fail();
        }
      }
    }
    this.space();
    if (this.i !== this.text.length) this.fail();
    return out;
  }

  private exact(make: () => Parsed): Parsed {
    try {
      return make();
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      this.problem ??= error.message;
      return { json: 'null', value: null };
    }
  }

  private fail(): never {
    return refuse(`the stored meta is not valid JSON at character ${this.i}`);
  }

  private space(): void {
    while (/[ \t\n\r]/.test(this.text[this.i] ?? '')) this.i += 1;
  }

  private value(depth: number): Parsed {
    if (depth > MAX_LITERAL_DEPTH) refuse(`it is nested deeper than ${MAX_LITERAL_DEPTH}`);
    const c = this.text[this.i];
    if (c === '"') return this.string();
    if (c === '[' || c === '{') return this.container(depth, c);
    for (const [word, value] of [
      ['null', null],
      ['true', true],
      ['false', false],
    ] as const) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length;
        return { json: word, value };
      }
    }
    const special = /^-?(NaN|Infinity)/.exec(this.text.slice(this.i, this.i + 9));
    if (special) {
      // Python's json writes these for float nan and inf.
      this.i += special[0].length;
      return this.exact(() => refuse('NaN and infinities are not JSON'));
    }
    const m = matchAt(/-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y, this.text, this.i);
    if (!m) return this.fail();
    this.i += m[0].length;
    const token = m[0];
    if (m[1] === undefined && m[2] === undefined) return this.exact(() => intJson(token));
    return this.exact(() => ({ json: floatJson(Number(token)), value: Number(token) }));
  }

  private string(): Parsed {
    const m = matchAt(/"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y, this.text, this.i);
    if (!m) return this.fail();
    this.i += m[0].length;
    const value = JSON.parse(m[0]) as string;
    return { json: JSON.stringify(value), value };
  }

  private container(depth: number, open: '[' | '{'): Parsed {
    this.i += 1;
    const close = open === '[' ? ']' : '}';
    const parts: string[] = [];
    const list: unknown[] = [];
    const dict: Record<string, unknown> = {};
    const seen = new Set<string>();
    this.space();
    if (this.text[this.i] === close) this.i += 1;
    else {
      for (;;) {
        this.space();
        let key: Parsed | undefined;
        if (open === '{') {
          if (this.text[this.i] !== '"') this.fail();
          key = this.string();
          if (seen.has(key.value as string)) refuse('a dict repeats a key');
          seen.add(key.value as string);
          this.space();
          if (this.text[this.i] !== ':') this.fail();
          this.i += 1;
          this.space();
        }
        const item = this.value(depth + 1);
        if (key) {
          parts.push(`${key.json}:${item.json}`);
          Object.defineProperty(dict, key.value as string, { value: item.value, enumerable: true, writable: true, configurable: true });
        } else {
          parts.push(item.json);
          list.push(item.value);
        }
        this.space();
        const c = this.text[this.i];
        this.i += 1;
        if (c === close) break;
        if (c !== ',') {
          this.i -= 1;
          this.fail();
        }
      }
    }
    return open === '[' ? { json: `[${parts.join(',')}]`, value: list } : { json: `{${parts.join(',')}}`, value: dict };
  }
}

function attempt(read: () => Parsed): Recovered {
  try {
    return { ok: true, ...read() };
  } catch (error) {
    if (error instanceof Refused) return { ok: false, reason: error.message };
    // A stack overflow or the like on hostile input: refused all the same.
    return { ok: false, reason: 'it could not be read' };
  }
}

/** Celery's argsrepr (`top` 'args') or kwargsrepr ('kwargs') read back exactly, or why not. */
export function parseArgsRepr(text: string, top: 'args' | 'kwargs'): Recovered {
  return attempt(() => new ReprReader(text).read(top));
}

/** A JSON text read exactly (ints within 2^53 - 1, no NaN), or why not. */
export function parseExactJson(text: string): Recovered {
  return attempt(() => new JsonReader(text).read());
}

/** A JSON object's top-level fields, each read exactly or with why not; a reason alone when the text is not a JSON object. */
export function parseJsonFields(text: string): Map<string, Recovered> | string {
  try {
    return new JsonReader(text).fields();
  } catch (error) {
    return error instanceof Refused ? error.message : 'it could not be read';
  }
}
