// The audit page: every control and task action, newest first.

import { Hono } from 'hono';
import { AuditPage } from '../../templates/pages/audit';
import { auditLog } from '../queries/inspect';
import type { AppEnv } from '../services';
import { LIMITS, query } from './params';

const PAGE = 100;

export const auditRoutes = new Hono<AppEnv>().get('/audit', async (c) => {
  const { db, ui } = c.var.services;
  const offset = query(c).int('offset', { min: 0, max: LIMITS.offset }) ?? 0;
  return c.html(<AuditPage entries={await auditLog(db, PAGE, offset)} ui={ui} offset={offset} limit={PAGE} />);
});
