// The one error module: closed codes, one code-to-status map, one handler.
// Internal errors are logged and answered without their message.

import type { Context } from 'hono';
import type { Logger } from './shared/log';

export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'PAYLOAD_TOO_LARGE'
  | 'URI_TOO_LONG'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function statusOf(code: ErrorCode): 400 | 401 | 403 | 404 | 413 | 414 | 415 | 500 | 503 {
  switch (code) {
    case 'BAD_REQUEST':
      return 400;
    case 'UNAUTHORIZED':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'PAYLOAD_TOO_LARGE':
      return 413;
    case 'URI_TOO_LONG':
      return 414;
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 415;
    case 'UNAVAILABLE':
      return 503;
    case 'INTERNAL':
      return 500;
  }
}

export const badRequest = (message: string) => new AppError('BAD_REQUEST', message);
export const notFound = (message: string) => new AppError('NOT_FOUND', message);
export const unavailable = (message: string) => new AppError('UNAVAILABLE', message);
export const payloadTooLarge = (message: string) => new AppError('PAYLOAD_TOO_LARGE', message);
export const uriTooLong = (message: string) => new AppError('URI_TOO_LONG', message);
export const unsupportedMediaType = (message: string) => new AppError('UNSUPPORTED_MEDIA_TYPE', message);

/** Text from a client or a parser made safe to show: control characters and broken surrogates as U+FFFD, at most `max` characters. */
export function printable(text: string, max: number): string {
  // 2 * max code units hold max code points; a pair cut at the end is beyond them.
  const clean = text
    .slice(0, 2 * max + 1)
    .toWellFormed()
    .replace(/[\u0000-\u001f\u007f]/g, '\ufffd');
  if (text.length <= max) return clean;
  // Cut by code points, so no surrogate pair is split.
  const points = Array.from(clean);
  return points.length <= max ? clean : `${points.slice(0, max).join('')}…`;
}

/** A client's value as an error message quotes it: short and printable (the message is escaped where it is rendered). */
export const quoted = (value: string): string => printable(value, 64);

/**
 * JSON `{"error": ...}` under /api; an HTML page for a page that is not
 * found or was asked for with bad parameters (when the app gives `page`);
 * plain text otherwise.
 */
export function respondToError(
  error: unknown,
  c: Context,
  log: Logger,
  page?: (message: string, status: 400 | 404) => Response | Promise<Response>,
): Response | Promise<Response> {
  const known = error instanceof AppError ? error : undefined;
  const code: ErrorCode = known?.code ?? 'INTERNAL';
  const message = known?.message ?? 'Internal server error';
  if (!known) log.error(`${c.req.method} ${c.req.path} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  const status = statusOf(code);
  if (new URL(c.req.url).pathname.includes('/api/')) return c.json({ error: message }, status);
  if ((status === 404 || status === 400) && page) return page(message, status);
  return c.text(message, status);
}
