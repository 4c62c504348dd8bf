// The retry's argument recovery: Celery's argsrepr (saferepr) and the result
// backend's JSON read back exactly, or refused with a reason. The oracle is
// Celery itself: Python renders random values with celery.utils.saferepr and
// json.dumps, and whatever the parser accepts must be what Python's json
// module reads back as the same value.

import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_LITERAL_DEPTH, parseArgsRepr, parseExactJson, parseJsonFields } from '../../worker-collector/control/python-literal';

const ok = (text: string, top: 'args' | 'kwargs' = 'args') => {
  const r = parseArgsRepr(text, top);
  if (!r.ok) throw new Error(`refused ${text}: ${r.reason}`);
  return r;
};
const reason = (text: string, top: 'args' | 'kwargs' = 'args') => {
  const r = parseArgsRepr(text, top);
  if (r.ok) throw new Error(`accepted ${text} as ${r.json}`);
  return r.reason;
};

describe('parseArgsRepr', () => {
  it('reads what saferepr prints for JSON types', () => {
    expect(ok("(1, -2, 3.5, 'x', None, True, False)").json).toBe('[1,-2,3.5,"x",null,true,false]');
    expect(ok('(1.0, -0.0, 1e+16, 1e-05)').json).toBe('[1.0,-0.0,10000000000000000.0,0.00001]');
    expect(ok("([1, (2,)], {'a': {'b': []}})").value).toEqual([[1, [2]], { a: { b: [] } }]);
    expect(ok('()').json).toBe('[]');
    expect(ok('({},)').json).toBe('[{}]');
    expect(ok("{'k': 'v', 'n': 9007199254740991}", 'kwargs').json).toBe('{"k":"v","n":9007199254740991}');
    expect(ok('{}', 'kwargs').json).toBe('{}');
  });

  it('takes strings as saferepr writes them: raw, backslashes and newlines are themselves', () => {
    expect(ok("('a\\nb',)").value).toEqual(['a\\nb']);
    expect(ok("('line\nbreak', 'é😀\u0000')").value).toEqual(['line\nbreak', 'é😀\u0000']);
    expect(ok("('\\u00e9 \\x41 \\N{DASH}',)").value).toEqual(['\\u00e9 \\x41 \\N{DASH}']);
    expect(ok('(\'say "hi"\',)').json).toBe('["say \\"hi\\""]');
  });

  it('refuses what it cannot read back exactly, with the reason', () => {
    expect(reason("('a', 'b', ...)")).toMatch(/cut/);
    expect(reason('([[[...]]],)')).toMatch(/cut/);
    expect(reason("('long text...',)")).toMatch(/may have been cut/);
    expect(reason("('it\\'s',)")).toMatch(/backslash/);
    expect(reason("('a\\', 'b')")).toMatch(/backslash/);
    expect(reason('(<object object at 0x7f>,)')).toMatch(/object/);
    expect(reason("(b'abc',)")).toMatch(/bytes/);
    expect(reason("(Decimal('1.5'),)")).toMatch(/Decimal/);
    expect(reason('(datetime.datetime(2020, 1, 1, 0, 0),)')).toBe('it holds a datetime');
    expect(reason('({1, 2},)')).toMatch(/set/);
    expect(reason('(set(),)')).toMatch(/set/);
    expect(reason("({1: 'a'},)")).toMatch(/keys/);
    expect(reason("({'a': 1, 'a': 2},)")).toMatch(/repeats/);
    expect(reason('(nan,)')).toMatch(/NaN/);
    expect(reason('(-inf,)')).toMatch(/NaN and infinities/);
    expect(reason('(9007199254740992,)')).toMatch(/2\^53/);
    expect(reason(`(${'9'.repeat(5000)},)`)).toMatch(/2\^53/);
    expect(reason('(1j,)')).toMatch(/literal/);
    expect(reason("('\uFFFD',)")).toMatch(/U\+FFFD/);
    expect(reason("('\uD800',)")).toMatch(/well-formed/);
    expect(reason('(1,2)')).toMatch(/literal/);
    expect(reason('( 1, 2)')).toMatch(/literal/);
    expect(reason('(1, 2) ')).toMatch(/literal/);
    expect(reason("('unclosed")).toMatch(/not closed/);
    expect(reason('{}')).toMatch(/not a tuple/);
    expect(reason('()', 'kwargs')).toMatch(/not a dict/);
    expect(reason('')).toMatch(/not a tuple/);
    expect(reason('(1, 2, 3')).toMatch(/literal/);
  });

  it('refuses deep nesting without overflowing the stack', () => {
    expect(reason(`${'['.repeat(100_000)}${']'.repeat(100_000)}`)).toMatch(/nested deeper/);
    expect(ok(`(${'['.repeat(MAX_LITERAL_DEPTH)}${']'.repeat(MAX_LITERAL_DEPTH)},)`).ok).toBe(true);
  });

  it('never throws on any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.constantFrom('args' as const, 'kwargs' as const), (text, top) => {
        const r = parseArgsRepr(text, top);
        if (r.ok) expect(JSON.parse(r.json)).toEqual(r.value);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('parseExactJson and parseJsonFields', () => {
  it('keeps floats floats and refuses what JSON numbers in JavaScript cannot hold', () => {
    const r = parseExactJson('[1, 1.0, -0.0, 1E5, "\\ud83d\\ude00", {"a": [true, null]}]');
    expect(r.ok && r.json).toBe('[1,1.0,-0.0,100000.0,"😀",{"a":[true,null]}]');
    expect(parseExactJson('[12345678901234567890]')).toMatchObject({ ok: false, reason: expect.stringMatching(/2\^53/) });
    expect(parseExactJson('[NaN]')).toMatchObject({ ok: false, reason: expect.stringMatching(/NaN/) });
    expect(parseExactJson('[-Infinity]')).toMatchObject({ ok: false });
    expect(parseExactJson('[1e400]')).toMatchObject({ ok: false });
    expect(parseExactJson('[01]')).toMatchObject({ ok: false });
    expect(parseExactJson('{"a": 1,}')).toMatchObject({ ok: false });
    expect(parseExactJson(`${'['.repeat(10_000)}${']'.repeat(10_000)}`)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/nested/),
    });
  });

  it('reads each field of a task meta on its own', () => {
    const fields = parseJsonFields('{"status": "FAILURE", "result": NaN, "args": [1, 2.0], "kwargs": {"n": 99999999999999999999}}');
    if (typeof fields === 'string') throw new Error(fields);
    expect(fields.get('status')).toMatchObject({ ok: true, value: 'FAILURE' });
    expect(fields.get('result')).toMatchObject({ ok: false });
    expect(fields.get('args')).toMatchObject({ ok: true, json: '[1,2.0]' });
    expect(fields.get('kwargs')).toMatchObject({ ok: false, reason: expect.stringMatching(/2\^53/) });
    expect(parseJsonFields('[1]')).toMatch(/not valid JSON/);
  });

  it('agrees with JSON.parse on any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        const text = JSON.stringify(value);
        const r = parseExactJson(text);
        if (r.ok) expect(r.value).toEqual(JSON.parse(text));
        else expect(r.reason).toMatch(/2\^53|nested/);
      }),
      { numRuns: 1000 },
    );
  });
});

// Celery's saferepr and Python's json as the oracle, on random values Python builds.
const ORACLE = String.raw`
import json, random, sys
from celery.utils.saferepr import saferepr
random.seed(int(sys.argv[1]))
ALPHABET = ["a", "b", " ", "'", '"', "\\", "\n", "\t", "\x00", "é", "\u2028", "😀", "\ud800", ".", ",", "(", ")", "[", "]", "{", "}", ":"]
def text():
    return "".join(random.choice(ALPHABET) for _ in range(random.randint(0, 8)))
def value(depth):
    r = random.random()
    if depth > 3 or r < 0.45:
        return random.choice([None, True, False, random.randint(-2**60, 2**60), random.randint(-1000, 1000),
                              random.choice([0.0, -0.0, 1.0, 1e16, 1e-7, 0.1, 1/3, float("nan"), float("inf"), 2.5e300]),
                              text(), text(), b"by"])
    if r < 0.65:
        return [value(depth + 1) for _ in range(random.randint(0, 4))]
    if r < 0.8:
        return tuple(value(depth + 1) for _ in range(random.randint(0, 3)))
    if r < 0.95:
        return {(text() if random.random() < 0.9 else random.randint(0, 5)): value(depth + 1) for _ in range(random.randint(0, 3))}
    return {1, 2}
out = []
for _ in range(int(sys.argv[2])):
    args = tuple(value(1) for _ in range(random.randint(0, 4)))
    try:
        wire = json.dumps(args)
    except Exception:
        wire = None
    out.append({"repr": saferepr(args, 1024), "wire": wire})
print(json.dumps(out))
`;

describe('parseArgsRepr against Celery', () => {
  it('whatever it accepts is what Python json reads back as the same args', () => {
    const cases = JSON.parse(execFileSync('/usr/bin/python3', ['-c', ORACLE, '7', '3000'], { encoding: 'utf8' })) as {
      repr: string;
      wire: string | null;
    }[];
    let accepted = 0;
    const check: { ours: string; wire: string | null }[] = [];
    for (const c of cases) {
      const r = parseArgsRepr(c.repr, 'args');
      if (!r.ok) continue;
      accepted += 1;
      check.push({ ours: r.json, wire: c.wire });
    }
    // Python compares: json.loads(ours) must equal json.loads(what Celery would have sent), types included.
    const verdict = execFileSync(
      '/usr/bin/python3',
      [
        '-c',
        String.raw`
import json, sys, math
def same(a, b):
    if type(a) is not type(b): return False
    if isinstance(a, float): return (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list): return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict): return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b
bad = [c for c in json.load(sys.stdin) if c["wire"] is None or not same(json.loads(c["ours"]), json.loads(c["wire"]))]
print(json.dumps(bad[:5]))
`,
      ],
      { input: JSON.stringify(check), encoding: 'utf8' },
    );
    expect(JSON.parse(verdict)).toEqual([]);
    // Enough of the random args are plain JSON for the check to mean something.
    expect(accepted).toBeGreaterThan(300);
  });
});
