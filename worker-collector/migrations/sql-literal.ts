// Parameters written into a statement as literals, for SQL that is printed to
// be run by someone else (`npm run migrate -- --print`), never for SQL Stalk
// runs itself (that always goes with bound parameters).

import type { SqlDialect } from '../../src/shared/schema';

/**
 * A value as a SQL literal. Strings double their quotes, which ends a literal
 * safely in both dialects and in every MySQL sql_mode; MySQL also reads
 * backslashes as escapes (unless NO_BACKSLASH_ESCAPES), so a string holding
 * one is refused rather than guessed at. Names and ISO times never hold one.
 */
export function sqlLiteral(value: unknown, dialect: SqlDialect): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot write ${value} as a SQL literal`);
    return String(value);
  }
  if (typeof value === 'string') {
    if (value.includes('\0')) throw new Error('cannot write a string holding NUL as a SQL literal');
    if (dialect === 'mysql' && value.includes('\\')) throw new Error('cannot write a string holding a backslash as a MySQL literal');
    return `'${value.replace(/'/g, "''")}'`;
  }
  throw new Error(`cannot write a ${Object.prototype.toString.call(value)} as a SQL literal`);
}

/**
 * Replace each `?` placeholder with its parameter as a literal. Question
 * marks inside string literals, quoted identifiers and comments are left
 * alone; a count that does not match throws.
 */
export function inlineParameters(text: string, parameters: readonly unknown[], dialect: SqlDialect): string {
  let out = '';
  let next = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      const end = closingQuote(text, i, dialect);
      out += text.slice(i, end);
      i = end;
    } else if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      out += text.slice(i, stop);
      i = stop;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new Error('unterminated comment in SQL');
      out += text.slice(i, end + 2);
      i = end + 2;
    } else if (c === '?') {
      if (next >= parameters.length) throw new Error('more placeholders than parameters in SQL');
      out += sqlLiteral(parameters[next++], dialect);
      i += 1;
    } else {
      out += c;
      i += 1;
    }
  }
  if (next !== parameters.length) throw new Error('more parameters than placeholders in SQL');
  return out;
}

/** Index just past the quote that closes the one at `start` (a doubled quote stays inside; MySQL strings also take backslash escapes). */
function closingQuote(text: string, start: number, dialect: SqlDialect): number {
  const quote = text[start]!;
  let i = start + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\\' && dialect === 'mysql' && quote !== '`') i += 2;
    else if (c === quote && text[i + 1] === quote) i += 2;
    else if (c === quote) return i + 1;
    else i += 1;
  }
  throw new Error('unterminated quote in SQL');
}
