// Read-only access to what the collector stored from inspect replies, and the audit log.

import type { Kysely } from 'kysely';
import type { WorkerInspect } from '../shared/inspect';
import type { Database } from '../shared/schema';
import type { AuditEntry } from '../ui/views';

function parse(text: string): WorkerInspect | null {
  try {
    const value = JSON.parse(text) as WorkerInspect;
    return typeof value === 'object' && value !== null ? value : null;
  } catch {
    return null;
  }
}

export async function cachedInspect(db: Kysely<Database>, hostname: string): Promise<WorkerInspect | null> {
  const row = await db.selectFrom('worker_inspect').select('replies').where('hostname', '=', hostname).executeTakeFirst();
  return row ? parse(row.replies) : null;
}

export async function allCachedInspect(db: Kysely<Database>): Promise<Map<string, WorkerInspect>> {
  const rows = await db.selectFrom('worker_inspect').select(['hostname', 'replies']).execute();
  const all = new Map<string, WorkerInspect>();
  for (const row of rows) {
    const parsed = parse(row.replies);
    if (parsed) all.set(row.hostname, parsed);
  }
  return all;
}

export async function auditLog(db: Kysely<Database>, limit = 100, offset = 0): Promise<AuditEntry[]> {
  const rows = await db
    .selectFrom('audit_log')
    .selectAll()
    .orderBy('at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
  return rows.map((r) => ({ ...r, id: Number(r.id), at: Number(r.at), ok: Number(r.ok) }));
}
