// Query-string parameters as Flower reads them, with 400s instead of 500s.

import { badRequest } from '../errors';

const TRUE = new Set(['1', 'true', 't', 'yes', 'y', 'on']);
const FALSE = new Set(['0', 'false', 'f', 'no', 'n', 'off', '']);

export function boolParam(name: string, value: string | undefined, fallback = false): boolean {
  if (value === undefined) return fallback;
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw badRequest(`Invalid argument '${value}' of type 'bool' for '${name}'`);
}

export function intParam(name: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^-?\d+$/.test(value.trim())) throw badRequest(`Invalid argument '${value}' of type 'int' for '${name}'`);
  const n = Number(value);
  if (n < min) throw badRequest(`'${name}' must be at least ${min}`);
  return n;
}

/** Flower's "All" means no filter. */
export function filterParam(value: string | undefined): string | undefined {
  return value === undefined || value === '' || value === 'All' ? undefined : value;
}

/** `%Y-%m-%d %H:%M` in the server's local time, as Flower reads received_start/received_end. */
export function localMinuteParam(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const match = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})$/.exec(value.trim());
  if (!match) throw badRequest(`Invalid '${name}' '${value}': expected YYYY-MM-DD HH:MM`);
  const [, y, mo, d, h, mi] = match.map(Number) as [number, number, number, number, number, number];
  const date = new Date(y, mo - 1, d, h, mi);
  if (date.getMonth() !== mo - 1 || date.getDate() !== d || h > 23 || mi > 59) {
    throw badRequest(`Invalid '${name}' '${value}': no such date or time`);
  }
  return date.getTime() / 1000;
}
