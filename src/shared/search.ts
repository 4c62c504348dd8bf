// Flower 2.1's task search language, parsed into a tree that queries turn
// into SQL. Terms: free text (substring over the task's text fields), and
// `name:`, `state:`, `worker:`, `args:`, `kwargs:`, `result:` qualifiers;
// "quoted phrases" with \" and \\ escapes; whitespace or AND for "and"; OR;
// parentheses. AND binds tighter than OR. NOT and '-' negation are refused,
// as in Flower. Unlike Flower's HTTP handlers, quotes work: nothing is
// HTML-escaped before parsing.

export type SearchField = 'any' | 'name' | 'state' | 'worker' | 'args' | 'kwargs' | 'result';

export type SearchNode =
  | { kind: 'and'; children: SearchNode[] }
  | { kind: 'or'; children: SearchNode[] }
  | { kind: 'term'; field: SearchField; value: string }
  | { kind: 'kwarg'; key: string; value: string };

export class SearchSyntaxError extends Error {
  override name = 'SearchSyntaxError';
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at position ${position}.`);
  }
}

export const SEARCH_LIMITS = { length: 2048, tokens: 128, depth: 5, substring: 3 } as const;
const QUALIFIERS = new Set<SearchField>(['name', 'state', 'worker', 'args', 'kwargs', 'result']);

type Token = { kind: 'open' | 'close' | 'and' | 'or'; at: number } | { kind: 'word'; text: string; at: number; quoted: boolean };

function readQuoted(query: string, start: number): { text: string; end: number } {
  let text = '';
  let i = start + 1;
  while (i < query.length) {
    const c = query[i]!;
    if (c === '\\' && (query[i + 1] === '"' || query[i + 1] === '\\')) {
      text += query[i + 1];
      i += 2;
    } else if (c === '"') {
      return { text, end: i + 1 };
    } else {
      text += c;
      i += 1;
    }
  }
  throw new SearchSyntaxError('Unterminated quoted phrase', start);
}

function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < query.length) {
    const c = query[i]!;
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '(' || c === ')') {
      tokens.push({ kind: c === '(' ? 'open' : 'close', at: i });
      i += 1;
    } else {
      // A word runs to whitespace or a parenthesis; a quoted part may sit
      // anywhere in it (`result:"connection refused"`).
      const at = i;
      let text = '';
      let quoted = false;
      while (i < query.length && !/[\s()]/.test(query[i]!)) {
        if (query[i] === '"') {
          const part = readQuoted(query, i);
          text += part.text;
          i = part.end;
          quoted = true;
        } else {
          text += query[i];
          i += 1;
        }
      }
      if (!quoted && text === 'AND') tokens.push({ kind: 'and', at });
      else if (!quoted && text === 'OR') tokens.push({ kind: 'or', at });
      else if (!quoted && text === 'NOT') throw new SearchSyntaxError('NOT is not supported', at);
      else tokens.push({ kind: 'word', text, at, quoted });
    }
    if (tokens.length > SEARCH_LIMITS.tokens) {
      throw new SearchSyntaxError(`Search queries may have at most ${SEARCH_LIMITS.tokens} tokens`, i);
    }
  }
  return tokens;
}

function termFrom(token: Extract<Token, { kind: 'word' }>): SearchNode {
  const colon = token.text.indexOf(':');
  const qualifier = colon > 0 ? token.text.slice(0, colon).toLowerCase() : '';
  if (QUALIFIERS.has(qualifier as SearchField)) {
    const value = token.text.slice(colon + 1).trim();
    if (value === '') throw new SearchSyntaxError('Search qualifier requires a value', token.at);
    const field = qualifier as SearchField;
    if (field === 'state') return { kind: 'term', field, value: value.toUpperCase() };
    if (field === 'kwargs' && value.includes('=')) {
      const eq = value.indexOf('=');
      const key = value.slice(0, eq).trim();
      const pairValue = value.slice(eq + 1).trim();
      if (key === '') throw new SearchSyntaxError('Search qualifier requires a value', token.at);
      return { kind: 'kwarg', key, value: pairValue };
    }
    return substring(field, value, token.at);
  }
  if (!token.quoted && token.text.startsWith('-')) throw new SearchSyntaxError("Negation with '-' is not supported", token.at);
  if (token.text.trim() === '') throw new SearchSyntaxError('Empty search term', token.at);
  return substring('any', token.text, token.at);
}

function substring(field: SearchField, value: string, at: number): SearchNode {
  if ([...value].length < SEARCH_LIMITS.substring) {
    throw new SearchSyntaxError(`Substring search terms must contain at least ${SEARCH_LIMITS.substring} characters`, at);
  }
  return { kind: 'term', field, value };
}

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly length: number,
  ) {}

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  parse(): SearchNode | null {
    if (this.tokens.length === 0) return null;
    const node = this.or(0);
    const extra = this.peek();
    if (extra) throw new SearchSyntaxError(`Unexpected ${extra.kind === 'close' ? "')'" : 'token'}`, extra.at);
    return node;
  }

  private or(depth: number): SearchNode {
    const children = [this.and(depth)];
    while (this.peek()?.kind === 'or') {
      const op = this.tokens[this.i++]!;
      if (!this.startsTerm()) throw new SearchSyntaxError('OR needs a term after it', op.at);
      children.push(this.and(depth));
    }
    return children.length === 1 ? children[0]! : { kind: 'or', children: dedupe(children) };
  }

  private startsTerm(): boolean {
    const next = this.peek();
    return next?.kind === 'word' || next?.kind === 'open';
  }

  private and(depth: number): SearchNode {
    if (!this.startsTerm()) {
      const at = this.peek()?.at ?? this.length;
      throw new SearchSyntaxError(this.peek()?.kind === 'and' ? 'AND needs a term before it' : 'Expected a search term', at);
    }
    const children = [this.primary(depth)];
    for (;;) {
      const next = this.peek();
      if (next?.kind === 'and') {
        this.i += 1;
        if (!this.startsTerm()) throw new SearchSyntaxError('AND needs a term after it', next.at);
        children.push(this.primary(depth));
      } else if (this.startsTerm()) {
        children.push(this.primary(depth));
      } else break;
    }
    return children.length === 1 ? children[0]! : { kind: 'and', children: dedupe(children) };
  }

  private primary(depth: number): SearchNode {
    const token = this.tokens[this.i++]!;
    if (token.kind === 'word') return termFrom(token);
    // token.kind === 'open'
    if (depth + 1 > SEARCH_LIMITS.depth) {
      throw new SearchSyntaxError(`Parentheses may nest at most ${SEARCH_LIMITS.depth} levels`, token.at);
    }
    if (this.peek()?.kind === 'close') throw new SearchSyntaxError('Empty group', token.at);
    const inner = this.or(depth + 1);
    const close = this.peek();
    if (close?.kind !== 'close') throw new SearchSyntaxError("Missing ')'", close?.at ?? this.length);
    this.i += 1;
    return inner;
  }
}

function dedupe(nodes: SearchNode[]): SearchNode[] {
  const seen = new Set<string>();
  return nodes.filter((n) => {
    const key = JSON.stringify(n);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Parse a search query; null for an empty one. Throws SearchSyntaxError. */
export function parseSearch(query: string): SearchNode | null {
  if (query.length > SEARCH_LIMITS.length) {
    throw new SearchSyntaxError(`Search queries may be at most ${SEARCH_LIMITS.length} characters long`, SEARCH_LIMITS.length);
  }
  return new Parser(tokenize(query), query.length).parse();
}
