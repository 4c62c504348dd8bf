// /stats and /stats/{name} over SQLite and MariaDB, through app.request():
// the numbers a seeded period shows, links to the matching task lists,
// the period switch, the live fragment and its ETag, hostile names.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/app';
import { DIALECTS, openTestDatabase } from '../support/databases';
import { HOSTILE_NAME, scenarioCounts, seedScenario } from '../support/stats-scenario';

const NOW = Math.floor(Date.UTC(2026, 11, 2, 9, 30, 20) / 1000);

/** The cells of the task types table row for `name`, by data-col. */
function typeRow(html: string, name: string): Record<string, string> | null {
  const escaped = name.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const start = html.indexOf(`<tr data-task-name="${escaped}">`);
  if (start < 0) return null;
  const row = html.slice(start, html.indexOf('</tr>', start));
  const cells: Record<string, string> = {};
  for (const m of row.matchAll(/<td class="num[^"]*" data-col="(\w+)"><a href="([^"]+)">(.*?)<\/a><\/td>/g)) {
    cells[m[1]!] = m[3]!.replace(/<[^>]+>/g, '');
    cells[`${m[1]}Href`] = m[2]!.replace(/&amp;/g, '&');
  }
  return cells;
}

describe.each(DIALECTS)('/stats on %s', (dialect) => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: ReturnType<typeof testApp>;

  beforeAll(async () => {
    database = await openTestDatabase(dialect);
    await seedScenario(database, NOW);
    app = testApp(database, { now: NOW });
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('shows every task type with its counts, each linked to the task list that holds them', async () => {
    const response = await app.request('/stats?period=1h');
    expect(response.status).toBe(200);
    const html = await response.text();
    const charge = typeRow(html, 'billing.charge');
    const expected = scenarioCounts('billing.charge');
    expect(charge?.count).toBe(String(expected.succeeded + expected.failed));
    expect(charge?.failed).toBe(`${expected.failed} (25%)`);
    // The links filter the task list by name, state and the period's received minutes (UTC).
    const count = new URL(charge!.countHref!, 'http://x');
    expect(count.pathname).toBe('/tasks');
    expect(count.searchParams.get('name')).toBe('billing.charge');
    expect(count.searchParams.get('received_start')).toBe('2026-12-02T08:31Z');
    expect(count.searchParams.get('received_end')).toBe('2026-12-02T09:31Z');
    const failedLink = new URL(charge!.failedHref!, 'http://x');
    expect(failedLink.searchParams.get('state')).toBe('FAILURE');
    // And the lists they lead to hold that many tasks.
    for (const [href, n] of [
      [charge!.countHref, expected.succeeded + expected.failed],
      [charge!.failedHref, expected.failed],
      [typeRow(html, 'mail.send')!.retriedHref, scenarioCounts('mail.send').retried],
    ] as const) {
      expect(href).toBeDefined();
      const list = await (await app.request(href!, { headers: { 'HX-Request': 'true' } })).text();
      expect(list.match(/<tr[^>]* data-task="/g)?.length ?? 0, href).toBe(n);
    }
  });

  it('draws the four charts with axes, titles and a table view', async () => {
    const html = await (await app.request('/stats?period=1h')).text();
    for (const id of ['chart-throughput', 'chart-failure-rate', 'chart-runtime', 'chart-queues']) {
      expect(html).toContain(`<figure class="chart" id="${id}">`);
      expect(html).toContain(`<details class="chart-table" id="${id}-table">`);
    }
    expect(html).toContain('tasks per 1 min');
    expect(html).toMatch(/data-tf="hm"[^>]*>09:00</);
    // Hover titles name the counts of their minute; 'celery' and 'priority' are the queues' series.
    expect(html).toMatch(
      /<title data-t="\d+" data-tf="full"[^>]*>2026-12-02 \d\d:\d\d UTC · 1 min: succeeded \d+, failed \d+, retried \d+<\/title>/,
    );
    expect(html).toContain('<li><span class="swatch tone-c0" aria-hidden="true"></span>celery</li>');
  });

  it('groups failures by exception class and links them to the failed tasks', async () => {
    const html = await (await app.request('/stats?period=1h')).text();
    const row = /<tr data-exception="ValueError">.*?<\/tr>/.exec(html)?.[0] ?? '';
    expect(row).toContain('billing.charge');
    const href = /<a href="([^"]+)">2<\/a>/.exec(row)?.[1]?.replace(/&amp;/g, '&');
    expect(href).toBeDefined();
    const url = new URL(href!, 'http://x');
    expect(url.searchParams.get('q')).toBe('"ValueError"');
    expect(url.searchParams.get('state')).toBe('FAILURE');
    const list = await (await app.request(href!, { headers: { 'HX-Request': 'true' } })).text();
    expect(list.match(/<tr[^>]* data-task="/g)?.length).toBe(2);
  });

  it('switches periods and steps: minutes up to 24 h, hours beyond', async () => {
    // The window holds whole rows of what its tables read (minutes up to 6 h, hours up to 7 d, days beyond), up to now.
    for (const [period, span, rows] of [
      ['1h', 3600, 60],
      ['24h', 86400, 3600],
      ['7d', 7 * 86400, 3600],
      ['30d', 30 * 86400, 86400],
    ] as const) {
      const html = await (await app.request(`/stats?period=${period}`)).text();
      const from = Number(/data-from="(\d+)"/.exec(html)?.[1]);
      const to = Number(/data-to="(\d+)"/.exec(html)?.[1]);
      expect(to - from).toBe(span);
      expect(to % rows).toBe(0);
      expect(to - rows < NOW && NOW <= to).toBe(true);
      expect(html).toContain(`aria-current="page" title`);
      expect(html).toContain(span <= 86400 ? 'by the minute' : 'by the hour');
      // Whatever the period, the same tasks are in it.
      expect(typeRow(html, 'billing.charge')?.count).toBe('8');
    }
    expect((await app.request('/stats?period=2y')).status).toBe(400);
  });

  it('shows one task name with its own charts and top exceptions, and escapes a hostile one', async () => {
    const html = await (await app.request('/stats/billing.charge?period=1h')).text();
    expect(html).toContain('<h1>billing.charge</h1>');
    expect(html).toContain('id="chart-queue-wait"');
    expect(html).not.toContain('id="task-types-table"');
    expect(html).toContain('<tr data-exception="ValueError">');
    expect(/data-total="Succeeded"><span class="label">Succeeded<\/span><span class="value">(\d+)</.exec(html)?.[1]).toBe('6');
    const hostile = await app.request(`/stats/${encodeURIComponent(HOSTILE_NAME)}?period=1h`);
    expect(hostile.status).toBe(200);
    const text = await hostile.text();
    expect(text).not.toContain('<script>alert');
    expect(text).toContain('&lt;script&gt;');
    expect(/data-total="Succeeded"><span class="label">Succeeded<\/span><span class="value">(\d+)</.exec(text)?.[1]).toBe('1');
    const all = await (await app.request('/stats?period=1h')).text();
    expect(all).not.toContain('<script>alert');
    expect(all).toContain(`href="/stats/${encodeURIComponent(HOSTILE_NAME)}?period=1h"`);
  });

  it('answers a poll with the panel alone, and 304 when it has not changed', async () => {
    const first = await app.request('/stats?period=1h', { headers: { 'HX-Request': 'true' } });
    const body = await first.text();
    expect(body.startsWith('<section id="stats-panel"')).toBe(true);
    expect(body).toContain('hx-get="/stats?period=1h"');
    const tag = first.headers.get('ETag');
    expect(tag).toBeTruthy();
    const again = await app.request('/stats?period=1h', { headers: { 'HX-Request': 'true', 'If-None-Match': tag! } });
    expect(again.status).toBe(304);
    const other = await app.request('/stats/mail.send?period=1h', { headers: { 'HX-Request': 'true', 'If-None-Match': tag! } });
    expect(other.status).toBe(200);
  });

  it('says so when nothing happened', async () => {
    const empty = testApp(database, { now: NOW + 90 * 86400 });
    const html = await (await empty.request('/stats?period=1h')).text();
    expect(html).toContain('No data in this period');
    expect(html).toContain('No task finished in this period.');
    expect(html).toContain('No failures in this period.');
  });
});
