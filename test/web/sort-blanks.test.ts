// Ascending sorts put blank values last (as descending ones do) while reading
// the rows with a value in index order: the blank rows follow on the page that
// runs past them and fill the pages after it, in both dialects.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { received, started } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T0 = 1_900_000_000;
const VALUED = 7;
const BLANK = 6;

describe.each(DIALECTS)('blanks last across pages on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: ReturnType<typeof testApp>;
  let valued: string[];
  let blank: string[];

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    // Started tasks and never-started ones interleaved; later tasks started earlier.
    for (let i = 0; i < VALUED + BLANK; i++) {
      const story = { uuid: `task-${String(i).padStart(2, '0')}`, name: i % 2 === 0 ? 'jobs.even' : 'jobs.odd' };
      batch.add(received(story, T0 + i), workers);
      if (i % 2 === 0 && i / 2 < VALUED) batch.add(started(story, T0 + 100 - i), workers);
    }
    await store(database, batch, workers);
    app = testApp(database, { now: T0 + 2_000 });
    const rows = await database.db.selectFrom('tasks').select(['uuid', 'started']).orderBy('id').execute();
    valued = rows
      .filter((r) => r.started !== null)
      .sort((a, b) => (a.started ?? 0) - (b.started ?? 0))
      .map((r) => r.uuid);
    blank = rows.filter((r) => r.started === null).map((r) => r.uuid);
  }, 60_000);
  afterAll(async () => {
    await database?.drop();
  });

  const page = async (path: string) => {
    const response = await app.request(path);
    expect(response.status, path).toBe(200);
    return [...(await response.text()).matchAll(/data-task="([^"]+)"/g)].map((m) => m[1]);
  };

  it('has the rows the test needs', () => {
    expect(valued).toHaveLength(VALUED);
    expect(blank).toHaveLength(BLANK);
  });

  it('pages an ascending sort with the blank rows last, spanning pages', async () => {
    const pages: (string | undefined)[][] = [];
    for (let offset = 0; offset < VALUED + BLANK; offset += 4)
      pages.push(await page(`/tasks?columns=uuid&sort=started&limit=4&offset=${offset}`));
    // Page 2 holds the last 3 started tasks and the first blank; page 3 only blanks, page 4 the last one.
    expect(pages).toEqual([valued.slice(0, 4), [...valued.slice(4), blank[0]], blank.slice(1, 5), blank.slice(5)]);
    const descending = await page(`/tasks?columns=uuid&sort=-started&limit=${VALUED + BLANK}`);
    expect(descending.slice(0, VALUED)).toEqual([...valued].reverse());
  });

  it('keeps the order with a filter and through the DataTables endpoint', async () => {
    // The even tasks are the started ones, the odd ones the blank ones.
    const even = await page('/tasks?columns=uuid&sort=started&limit=5&offset=5&q=name:jobs.even');
    expect(even).toEqual(valued.slice(5));
    const odd = await page('/tasks?columns=uuid&sort=started&limit=2&offset=2&q=name:jobs.odd');
    expect(odd).toEqual(blank.slice(2, 4));
    const table = async (start: number) => {
      const response = await app.request(
        `/tasks/datatable?draw=1&start=${start}&length=5&order[0][column]=0&order[0][dir]=asc&columns[0][data]=started`,
      );
      const body = (await response.json()) as { data: { uuid: string }[] };
      return body.data.map((row) => row.uuid);
    };
    expect([...(await table(0)), ...(await table(5)), ...(await table(10))]).toEqual([...valued, ...blank]);
  });
});
