// The one error module: closed codes, one code-to-status map, one handler.
// Internal errors are logged and answered without their message.

import type { Context } from 'hono';
import type { Logger } from './shared/log';

export type ErrorCode = 'BAD_REQUEST' | 'UNAUTHORIZED' | 'FORBIDDEN' | 'NOT_FOUND' | 'UNAVAILABLE' | 'INTERNAL';

export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function statusOf(code: ErrorCode): 400 | 401 | 403 | 404 | 500 | 503 {
  switch (code) {
    case 'BAD_REQUEST':
      return 400;
    case 'UNAUTHORIZED':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'UNAVAILABLE':
      return 503;
    case 'INTERNAL':
      return 500;
  }
}

export const badRequest = (message: string) => new AppError('BAD_REQUEST', message);
export const notFound = (message: string) => new AppError('NOT_FOUND', message);
export const unavailable = (message: string) => new AppError('UNAVAILABLE', message);

/**
 * JSON `{"error": ...}` under /api; an HTML page for a page that is not
 * found (when the app gives `notFoundPage`); plain text otherwise.
 */
export function respondToError(
  error: unknown,
  c: Context,
  log: Logger,
  notFoundPage?: (message: string) => Response | Promise<Response>,
): Response | Promise<Response> {
  const known = error instanceof AppError ? error : undefined;
  const code: ErrorCode = known?.code ?? 'INTERNAL';
  const message = known?.message ?? 'Internal server error';
  if (!known) log.error(`${c.req.method} ${c.req.path} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  const status = statusOf(code);
  if (new URL(c.req.url).pathname.includes('/api/')) return c.json({ error: message }, status);
  if (status === 404 && notFoundPage) return notFoundPage(message);
  return c.text(message, status);
}
