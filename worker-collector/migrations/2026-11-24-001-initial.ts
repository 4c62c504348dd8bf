import { type Kysely, sql } from 'kysely';
import { KEY } from '../../src/shared/schema';
import { columnTypes } from './dialect';

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  const id = t.mysql ? 'bigint' : 'integer';

  await db.schema
    .createTable('tasks')
    .addColumn('id', id, (c) => c.primaryKey().autoIncrement())
    .addColumn('uuid', t.key(KEY.id), (c) => c.notNull().unique())
    .addColumn('name', t.key(KEY.id))
    .addColumn('state', t.key(32), (c) => c.notNull())
    .addColumn('state_key', t.key(24), (c) => c.notNull())
    .addColumn('timestamp', t.double, (c) => c.notNull())
    .addColumn('clock', t.bigint)
    .addColumn('sent', t.double)
    .addColumn('received', t.double)
    .addColumn('started', t.double)
    .addColumn('succeeded', t.double)
    .addColumn('failed', t.double)
    .addColumn('retried', t.double)
    .addColumn('revoked', t.double)
    .addColumn('rejected', t.double)
    .addColumn('args', t.text)
    .addColumn('kwargs', t.text)
    .addColumn('result', t.text)
    .addColumn('exception', t.text)
    .addColumn('traceback', t.text)
    .addColumn('worker', t.key(KEY.id))
    .addColumn('client', t.key(KEY.id))
    .addColumn('runtime', t.double)
    .addColumn('retries', t.int)
    .addColumn('eta', t.key(64))
    .addColumn('expires', t.key(64))
    .addColumn('root_id', t.key(KEY.id))
    .addColumn('parent_id', t.key(KEY.id))
    .addColumn('queue', t.key(KEY.id))
    .addColumn('exchange', t.key(KEY.id))
    .addColumn('routing_key', t.key(KEY.id))
    .modifyEnd(t.tableEnd)
    .execute();

  // Each index serves a list Flower users open all day: newest first (and
  // retention), received/started ranges and sorts, and the state, task name
  // and worker filters with newest first; parent_id finds a task's children.
  const taskIndexes: [string, string[]][] = [
    ['tasks_timestamp', ['timestamp']],
    ['tasks_received', ['received']],
    ['tasks_started', ['started']],
    ['tasks_state_timestamp', ['state', 'timestamp']],
    ['tasks_name_timestamp', ['name', 'timestamp']],
    ['tasks_worker_timestamp', ['worker', 'timestamp']],
    ['tasks_parent_id', ['parent_id']],
  ];
  for (const [name, columns] of taskIndexes) {
    let index = db.schema.createIndex(name).on('tasks').columns(columns);
    // Most tasks have no parent: SQLite can leave them out of the index.
    if (name === 'tasks_parent_id' && !t.mysql) index = index.where(sql.ref('parent_id'), 'is not', null);
    await index.execute();
  }

  await db.schema
    .createTable('task_events')
    .addColumn('id', id, (c) => c.primaryKey().autoIncrement())
    .addColumn('task_id', t.key(KEY.id), (c) => c.notNull())
    .addColumn('events', t.text, (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();
  await db.schema.createIndex('task_events_task_id').on('task_events').column('task_id').execute();

  await db.schema
    .createTable('workers')
    .addColumn('hostname', t.key(KEY.id), (c) => c.primaryKey())
    .addColumn('status', t.key(16), (c) => c.notNull())
    .addColumn('pid', t.bigint)
    .addColumn('freq', t.double)
    .addColumn('clock', t.bigint)
    .addColumn('active', t.int)
    .addColumn('processed', t.bigint)
    .addColumn('loadavg', t.key(128))
    .addColumn('sw_ident', t.key(64))
    .addColumn('sw_ver', t.key(64))
    .addColumn('sw_sys', t.key(64))
    .addColumn('utcoffset', t.double)
    .addColumn('heartbeats', t.key(255), (c) => c.notNull())
    .addColumn('last_heartbeat', t.double)
    .addColumn('first_seen', t.double, (c) => c.notNull())
    .addColumn('offline_at', t.double)
    .modifyEnd(t.tableEnd)
    .execute();

  await db.schema
    .createTable('event_counters')
    .addColumn('hostname', t.key(KEY.host), (c) => c.notNull())
    .addColumn('task_name', t.key(KEY.name), (c) => c.notNull())
    .addColumn('queue', t.key(KEY.queue), (c) => c.notNull())
    .addColumn('type', t.key(KEY.type), (c) => c.notNull())
    .addColumn('exception', t.key(KEY.exception), (c) => c.notNull())
    .addColumn('count', t.bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('event_counters_pk', ['hostname', 'task_name', 'queue', 'type', 'exception'])
    .modifyEnd(t.tableEnd)
    .execute();

  await db.schema
    .createTable('histogram_buckets')
    .addColumn('metric', t.key(KEY.metric), (c) => c.notNull())
    .addColumn('hostname', t.key(KEY.host), (c) => c.notNull())
    .addColumn('task_name', t.key(KEY.name), (c) => c.notNull())
    .addColumn('queue', t.key(KEY.queue), (c) => c.notNull())
    .addColumn('le', t.key(KEY.le), (c) => c.notNull())
    .addColumn('count', t.bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('histogram_buckets_pk', ['metric', 'hostname', 'task_name', 'queue', 'le'])
    .modifyEnd(t.tableEnd)
    .execute();

  await db.schema
    .createTable('histogram_totals')
    .addColumn('metric', t.key(KEY.metric), (c) => c.notNull())
    .addColumn('hostname', t.key(KEY.host), (c) => c.notNull())
    .addColumn('task_name', t.key(KEY.name), (c) => c.notNull())
    .addColumn('queue', t.key(KEY.queue), (c) => c.notNull())
    .addColumn('sum', t.double, (c) => c.notNull())
    .addColumn('count', t.bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('histogram_totals_pk', ['metric', 'hostname', 'task_name', 'queue'])
    .modifyEnd(t.tableEnd)
    .execute();

  await db.schema
    .createTable('collector_status')
    .addColumn('id', t.key(64), (c) => c.primaryKey())
    .addColumn('started_at', t.double, (c) => c.notNull())
    .addColumn('updated_at', t.double, (c) => c.notNull())
    .addColumn('broker_url', t.key(255), (c) => c.notNull())
    .addColumn('broker_connected', t.int, (c) => c.notNull())
    .addColumn('last_event_at', t.double)
    .addColumn('events_total', t.bigint, (c) => c.notNull())
    .addColumn('dropped', t.text, (c) => c.notNull())
    .addColumn('lag_seconds', t.double)
    .addColumn('flush_seconds', t.double)
    .modifyEnd(t.tableEnd)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['collector_status', 'histogram_totals', 'histogram_buckets', 'event_counters', 'workers', 'task_events', 'tasks']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
