import { describe, expect, it } from 'vitest';
import { parseSearch, SearchSyntaxError } from '../../src/shared/search';

describe('the task search language', () => {
  it('parses qualifiers, free text and implicit AND', () => {
    expect(parseSearch('name:billing state:failure refund')).toEqual({
      kind: 'and',
      children: [
        { kind: 'term', field: 'name', value: 'billing' },
        { kind: 'term', field: 'state', value: 'FAILURE' },
        { kind: 'term', field: 'any', value: 'refund' },
      ],
    });
  });

  it('binds AND tighter than OR and honours parentheses', () => {
    expect(parseSearch('aaa OR bbb ccc')).toEqual({
      kind: 'or',
      children: [
        { kind: 'term', field: 'any', value: 'aaa' },
        {
          kind: 'and',
          children: [
            { kind: 'term', field: 'any', value: 'bbb' },
            { kind: 'term', field: 'any', value: 'ccc' },
          ],
        },
      ],
    });
    expect(parseSearch('(aaa OR bbb) AND ccc')).toMatchObject({ kind: 'and', children: [{ kind: 'or' }, { kind: 'term' }] });
  });

  it('reads quoted phrases with escapes, also after a qualifier', () => {
    expect(parseSearch('result:"connection refused"')).toEqual({ kind: 'term', field: 'result', value: 'connection refused' });
    expect(parseSearch('"say \\"hi\\" \\\\ now"')).toEqual({ kind: 'term', field: 'any', value: 'say "hi" \\ now' });
  });

  it('reads kwargs key=value pairs', () => {
    expect(parseSearch('kwargs:"note = x"')).toEqual({ kind: 'kwarg', key: 'note', value: 'x' });
    expect(parseSearch('kwargs:note=x')).toEqual({ kind: 'kwarg', key: 'note', value: 'x' });
    expect(parseSearch('kwargs:"user id=42"')).toEqual({ kind: 'kwarg', key: 'user id', value: '42' });
  });

  it('treats unknown qualifiers as text and removes duplicate terms', () => {
    expect(parseSearch('foo:bar')).toEqual({ kind: 'term', field: 'any', value: 'foo:bar' });
    expect(parseSearch('abc abc')).toEqual({ kind: 'and', children: [{ kind: 'term', field: 'any', value: 'abc' }] });
  });

  it('is empty for an empty query', () => {
    expect(parseSearch('   ')).toBeNull();
  });

  it.each([
    ['"open', 'Unterminated quoted phrase at position 0.'],
    ['NOT abc', 'NOT is not supported at position 0.'],
    ['-abc', "Negation with '-' is not supported at position 0."],
    ['name:', 'Search qualifier requires a value at position 0.'],
    ['ab', 'Substring search terms must contain at least 3 characters at position 0.'],
    ['abc OR', 'OR needs a term after it at position 4.'],
    ['abc AND', 'AND needs a term after it at position 4.'],
    ['abc )', "Unexpected ')' at position 4."],
    ['(abc', "Missing ')' at position 4."],
    ['()', 'Empty group at position 0.'],
    ['((((((abc))))))', 'Parentheses may nest at most 5 levels at position 5.'],
  ])('refuses %j', (query, message) => {
    expect(() => parseSearch(query)).toThrow(
      new SearchSyntaxError(message.replace(/ at position \d+\.$/, ''), Number(/position (\d+)/.exec(message)?.[1])),
    );
  });

  it('bounds the size of a query', () => {
    expect(() => parseSearch('x'.repeat(2049))).toThrow(/at most 2048 characters/);
    expect(() => parseSearch('abc '.repeat(130))).toThrow(/at most 128 tokens/);
  });
});
