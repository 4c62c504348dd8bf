// The tasks list's pager: its counts on every page, with and without a text
// search, at the search's count cap, and past the end (issue 11, defect 6).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBatch } from '../../worker-collector/fold/batch';
import type { WorkerState } from '../../worker-collector/fold/worker';
import { received, succeeded } from '../fixtures/events';
import { store, testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';

const T0 = 1_900_000_000;
const REFUSALS = 47;
const CRUNCHES = 1_005;

describe.each(DIALECTS)('task list paging on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: ReturnType<typeof testApp>;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    const workers = new Map<string, WorkerState>();
    const batch = new EventBatch();
    // Half the refusals final (the text index), half still received (found by state).
    for (let i = 0; i < REFUSALS; i++) {
      const story = { uuid: `refusal-${String(i).padStart(2, '0')}`, name: 'billing.refuse_payment' };
      batch.add(received(story, T0 + i), workers);
      if (i % 2 === 0) batch.add(succeeded(story, T0 + i + 0.5), workers);
    }
    for (let i = 0; i < CRUNCHES; i++) {
      const story = { uuid: `crunch-${String(i).padStart(4, '0')}`, name: 'numbers.crunch' };
      batch.add(received(story, T0 + 100 + i), workers);
      batch.add(succeeded(story, T0 + 100 + i + 0.5), workers);
    }
    await store(database, batch, workers);
    app = testApp(database, { now: T0 + 2_000 });
  }, 60_000);
  afterAll(async () => {
    await database?.drop();
  });

  const panel = async (path: string) => {
    const response = await app.request(path, { headers: { 'HX-Request': 'true' } });
    expect(response.status, path).toBe(200);
    const html = await response.text();
    const summary = /<nav class="pager"[^>]*><span>([^<]*)<\/span>/.exec(html)?.[1];
    const links = [...html.matchAll(/<a href="([^"]*)"[^>]*rel="(prev|next)">([^<]*)<\/a>/g)].map((m) => ({
      href: m[1]?.replaceAll('&amp;', '&'),
      rel: m[2],
      label: m[3],
    }));
    return { html, summary, rows: html.match(/data-task="/g)?.length ?? 0, links };
  };

  it('counts a search’s matches exactly on every page', async () => {
    const first = await panel('/tasks?q=refus');
    expect(first.summary).toBe('1–25 of 47');
    expect(first.rows).toBe(25);
    expect(first.links.map((l) => l.rel)).toEqual(['next']);
    const second = await panel('/tasks?q=refus&offset=25');
    expect(second.summary).toBe('26–47 of 47');
    expect(second.rows).toBe(22);
    expect(second.links.map((l) => l.rel)).toEqual(['prev']);
    const odd = await panel('/tasks?q=refus&offset=40&limit=5');
    expect(odd.summary).toBe('41–45 of 47');
  });

  it('shows an offset past the end as an empty page with the true count and a link to the last page', async () => {
    const past = await panel('/tasks?q=refus&offset=50');
    expect(past.summary).toBe('none of 47');
    expect(past.rows).toBe(0);
    expect(past.html).toContain('No tasks on this page: the list ends at 47.');
    expect(past.links).toEqual([{ href: '/tasks?q=refus&offset=25', rel: 'prev', label: '‹ Last page' }]);
    const farPast = await panel('/tasks?state=SUCCESS&name=billing.refuse_payment&offset=500');
    expect(farPast.summary).toBe('none of 24');
    expect(farPast.links).toEqual([{ href: '/tasks?state=SUCCESS&name=billing.refuse_payment', rel: 'prev', label: '‹ Last page' }]);
    const nothing = await panel('/tasks?q=nosuchword&offset=50');
    expect(nothing.summary).toBe('0 of 0');
    expect(nothing.html).toContain('No tasks match.');
  });

  it('stops counting a search at its cap, saying so, but never below the page shown', async () => {
    const first = await panel('/tasks?q=crunch');
    expect(first.summary).toBe('1–25 of 1,000+');
    const late = await panel('/tasks?q=crunch&offset=1000');
    expect(late.summary).toBe('1,001–1,005 of 1,005');
    expect(late.rows).toBe(5);
    const all = await panel('/tasks');
    expect(all.summary).toBe(`1–25 of ${(REFUSALS + CRUNCHES).toLocaleString('en-US')}`);
  });
});
