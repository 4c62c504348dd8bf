// Read-only broker facts: queue lengths and which broker the collector reads.

import type { Kysely } from 'kysely';
import type { Database, QueuesTable } from '../shared/schema';
import type { QueueView } from '../ui/views';

const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export async function listQueues(db: Kysely<Database>): Promise<QueueView[]> {
  const rows: QueuesTable[] = await db.selectFrom('queues').selectAll().orderBy('name').execute();
  return rows.map((r) => ({
    ...r,
    messages: Number(r.messages),
    ready: n(r.ready),
    unacked: n(r.unacked),
    consumers: n(r.consumers),
    measured_at: Number(r.measured_at),
  }));
}

/** The broker URL (password masked) the most recent collector reported. */
export async function brokerUrl(db: Kysely<Database>): Promise<string | null> {
  const row = await db.selectFrom('collector_status').select('broker_url').orderBy('updated_at', 'desc').limit(1).executeTakeFirst();
  return row?.broker_url ?? null;
}
