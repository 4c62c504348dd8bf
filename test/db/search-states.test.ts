// A rare search term finds a task whatever state it is in: the final states
// (on SQLite through the text index, or its queue before indexing), the
// in-flight states Celery names, and custom states that Celery apps invent
// (`update_state(state='PROGRESS')`, `task-<anything>` events). MariaDB's
// index covers every task; SQLite's covers final tasks only, so everything
// else must be found by its state being "not final", whatever its name.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTasks, listTasks } from '../../src/queries/tasks';
import type { TaskEvent } from '../../src/shared/celery-events';
import { parseSearch } from '../../src/shared/search';
import { FINAL_STATES } from '../../src/shared/task-states';
import { FINAL } from '../../worker-collector/migrations/2026-11-24-003-search';
import { SearchIndexer } from '../../worker-collector/store/search-index';
import { failed, received, retried, revoked, sent, started, succeeded, type TaskStory } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const AT = 1_800_000_000;
/** A word in no other task's text, so the text index is used for it (a rare term). */
const WORD = 'quetzalcoatl';

/** An event of a type Celery does not define, as an app's `send_event('task-<x>')` sends it. */
function custom(type: string, story: TaskStory, at: number): TaskEvent {
  return { ...started(story, at), type };
}

function story(uuid: string): TaskStory {
  return { uuid, name: 'tasks.render', args: `('${WORD}', '${uuid}')` };
}

/** Each task's events and the state they leave it in. */
const TASKS: Record<string, { events: (s: TaskStory) => TaskEvent[]; state: string }> = {
  'st-pending': { events: (s) => [sent(s, AT)], state: 'PENDING' },
  'st-received': { events: (s) => [sent(s, AT), received(s, AT + 1)], state: 'RECEIVED' },
  'st-started': { events: (s) => [sent(s, AT), received(s, AT + 1), started(s, AT + 2)], state: 'STARTED' },
  'st-retry': { events: (s) => [received(s, AT + 1), started(s, AT + 2), retried(s, AT + 3)], state: 'RETRY' },
  'st-rejected': { events: (s) => [received(s, AT + 1), custom('task-rejected', s, AT + 2)], state: 'REJECTED' },
  'st-progress': { events: (s) => [received(s, AT + 1), started(s, AT + 2), custom('task-progress', s, AT + 3)], state: 'PROGRESS' },
  'st-odd': { events: (s) => [received(s, AT + 1), custom('task-waiting_for_approval', s, AT + 3)], state: 'WAITING_FOR_APPROVAL' },
  'st-success': { events: (s) => [received(s, AT + 1), started(s, AT + 2), succeeded(s, AT + 3)], state: 'SUCCESS' },
  'st-failure': { events: (s) => [received(s, AT + 1), started(s, AT + 2), failed(s, AT + 3)], state: 'FAILURE' },
  'st-revoked': { events: (s) => [received(s, AT + 1), revoked(s, AT + 2)], state: 'REVOKED' },
};
const ALL = Object.keys(TASKS).sort();

it('the final states are the ones the SQLite text index covers', () => {
  expect(FINAL_STATES).toEqual(['SUCCESS', 'FAILURE', 'REVOKED']);
  expect(FINAL).toBe(`(${FINAL_STATES.map((s) => `'${s}'`).join(', ')})`);
});

describe.each(DIALECTS)('search across task states on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    await store(
      database,
      Object.entries(TASKS).flatMap(([uuid, task]) => task.events(story(uuid))),
    );
    // A task without the word, in a custom state: the search must not find everything in flight either.
    await store(database, [
      received({ uuid: 'st-other', args: "('nothing here',)" }, AT),
      custom('task-progress', { uuid: 'st-other' }, AT + 1),
    ]);
  });

  afterAll(async () => {
    await database?.drop();
  });

  async function found(query: string): Promise<string[]> {
    const rows = await listTasks(database.db, database.dialect, { search: parseSearch(query) });
    return rows.map((r) => r.uuid).sort();
  }

  it('stores each task in the state its events give it', async () => {
    const rows = await database.db.selectFrom('tasks').select(['uuid', 'state']).where('uuid', 'in', ALL).execute();
    expect(Object.fromEntries(rows.map((r) => [r.uuid, r.state]))).toEqual(
      Object.fromEntries(Object.entries(TASKS).map(([uuid, t]) => [uuid, t.state])),
    );
  });

  it('finds a rare term in tasks of every state, custom ones included, before and after indexing', async () => {
    for (const query of [WORD, `args:${WORD}`, WORD.slice(0, 7)]) {
      expect(await found(query), query).toEqual(ALL);
    }
    expect(await countTasks(database.db, database.dialect, { search: parseSearch(WORD) })).toEqual({ count: ALL.length, capped: false });
    expect(await found('st-progress')).toEqual(['st-progress']);
    expect(await found(`${WORD} state:PROGRESS`)).toEqual(['st-progress']);

    // SQLite: the final tasks move from the queue into the index; the others must still be found.
    if (dialect === 'sqlite') await new SearchIndexer(database.db).drain();
    expect(await found(WORD)).toEqual(ALL);
    expect(await found('nothing')).toEqual(['st-other']);
  });

  it('the API finds them too', async () => {
    const response = await testApp(database).request(`http://stalk.test/api/tasks?search=${WORD}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, { state: string }>;
    expect(Object.keys(body).sort()).toEqual(ALL);
    expect(body['st-progress']?.state).toBe('PROGRESS');
  });
});
