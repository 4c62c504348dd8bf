// Before anything reads a request (the auth middleware's CSRF check parses
// forms): the URL must decode strictly, the body must fit MAX_BODY_BYTES,
// and a multipart body must parse. Failing requests get 400/413 here, never
// a 500 from a parser further in.

import type { MiddlewareHandler } from 'hono';
import { bodyBytes, mediaType, multipartFields } from './body';
import { checkUrl } from './params';

export const requestGuard: MiddlewareHandler = async (c, next) => {
  checkUrl(c);
  if (c.req.raw.body) {
    const bytes = await bodyBytes(c);
    if (bytes.byteLength > 0 && mediaType(c) === 'multipart/form-data') await multipartFields(c, bytes);
  }
  await next();
};
