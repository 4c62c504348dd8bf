// The --alerts file: every kind read with its defaults, and every mistake
// refused with one line naming the file, the rule and the field.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AlertsConfigError, loadAlertsFile, parseAlertsConfig } from '../../worker-collector/alerts/config';

const HOOKS = { ops: 'http://hooks.example/stalk', chat: 'https://chat.example/hook' };

function parse(rules: unknown[], webhooks: unknown = HOOKS) {
  return parseAlertsConfig(JSON.stringify({ webhooks, rules }), '/x.json');
}

function refusal(rules: unknown[], webhooks: unknown = HOOKS): string {
  try {
    parse(rules, webhooks);
  } catch (error) {
    expect(error).toBeInstanceOf(AlertsConfigError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('the file was accepted');
}

describe('the alerts file', () => {
  it('reads the example of the issue', () => {
    const config = parse([
      { name: 'refunds failing', kind: 'task-failures', task: 'billing.refund', window: '5m', threshold: 3, notify: ['ops'] },
    ]);
    expect(config).toEqual({
      webhooks: HOOKS,
      rules: [{ name: 'refunds failing', kind: 'task-failures', task: 'billing.refund', window: 300, threshold: 3, notify: ['ops'] }],
    });
  });

  it('reads every kind, with the defaults of the fields it may leave out', () => {
    const config = parse([
      { name: 'a', kind: 'task-failures', window: 60, threshold: 2 },
      { name: 'b', kind: 'task-failure-rate', task: 'billing.*', window: '10m', ratio: 0.25 },
      { name: 'c', kind: 'worker-offline', worker: 'celery@web-?', for: '2m', notify: ['ops', 'chat'] },
      { name: 'd', kind: 'queue-length', queue: 'default', threshold: 100, for: '30s' },
      { name: 'e', kind: 'task-stuck', task: 'report.*', running_longer_than: '1h' },
      { name: 'f', kind: 'tasks-lost', window: '1h' },
      { name: 'g', kind: 'collector-silent', for: '5m' },
      { name: 'h', kind: 'worker-offline' },
    ]);
    expect(config.rules).toEqual([
      { name: 'a', kind: 'task-failures', task: '*', window: 60, threshold: 2, notify: [] },
      { name: 'b', kind: 'task-failure-rate', task: 'billing.*', window: 600, ratio: 0.25, min_count: 1, notify: [] },
      { name: 'c', kind: 'worker-offline', worker: 'celery@web-?', for: 120, notify: ['ops', 'chat'] },
      { name: 'd', kind: 'queue-length', queue: 'default', threshold: 100, for: 30, notify: [] },
      { name: 'e', kind: 'task-stuck', task: 'report.*', running_longer_than: 3600, notify: [] },
      { name: 'f', kind: 'tasks-lost', window: 3600, threshold: 1, notify: [] },
      { name: 'g', kind: 'collector-silent', for: 300, notify: [] },
      { name: 'h', kind: 'worker-offline', worker: '*', for: 0, notify: [] },
    ]);
  });

  it.each([
    [
      [{ name: 'refunds failing', kind: 'task-failures', window: '5 minutes', threshold: 3 }],
      '--alerts /x.json: rule 1 "refunds failing": window: "5 minutes" is not a duration (e.g. 30s, 5m, 1h)',
    ],
    [
      [
        { name: 'ok', kind: 'tasks-lost', window: '1h' },
        { name: 'typo', kind: 'task-failures', window: '5m', threshold: 3, treshold: 4 },
      ],
      '--alerts /x.json: rule 2 "typo": unknown field "treshold" (a task-failures rule takes name, kind, notify, task, window, threshold)',
    ],
    [[{ name: 'x', kind: 'task-failure', window: '5m' }], '--alerts /x.json: rule 1 "x": kind: "task-failure" is not one of'],
    [[{ kind: 'tasks-lost', window: '1h' }], '--alerts /x.json: rule 1: name: undefined is not a name'],
    [
      [{ name: 'x', kind: 'task-failures', window: '5m' }],
      '--alerts /x.json: rule 1 "x": threshold: missing (a task-failures rule needs threshold)',
    ],
    [[{ name: 'x', kind: 'task-failures', window: '5m', threshold: 0 }], 'rule 1 "x": threshold: 0 is not a whole number of at least 1'],
    [[{ name: 'x', kind: 'task-failures', window: '5m', threshold: 2.5 }], 'rule 1 "x": threshold: 2.5 is not a whole number'],
    [[{ name: 'x', kind: 'task-failures', task: '', window: '5m', threshold: 2 }], 'rule 1 "x": task: "" is not a name or glob'],
    [[{ name: 'x', kind: 'task-failure-rate', window: '5m', ratio: 20 }], 'rule 1 "x": ratio: 20 is not a ratio above 0, at most 1'],
    [
      [{ name: 'x', kind: 'task-failure-rate', window: '5m', ratio: 0.2, min_count: -1 }],
      'rule 1 "x": min_count: -1 is not a whole number',
    ],
    [[{ name: 'x', kind: 'worker-offline', for: 'soon' }], 'rule 1 "x": for: "soon" is not a duration'],
    [[{ name: 'x', kind: 'worker-offline', worker: 7 }], 'rule 1 "x": worker: 7 is not a name or glob'],
    [[{ name: 'x', kind: 'queue-length', threshold: 10 }], 'rule 1 "x": queue: missing (a queue-length rule needs queue)'],
    [[{ name: 'x', kind: 'queue-length', queue: 'q', threshold: 10, for: -5 }], 'rule 1 "x": for: -5 is not a duration'],
    [[{ name: 'x', kind: 'task-stuck', running_longer_than: '1 hour' }], 'rule 1 "x": running_longer_than: "1 hour" is not a duration'],
    [[{ name: 'x', kind: 'tasks-lost', window: null }], 'rule 1 "x": window: missing'],
    [[{ name: 'x', kind: 'collector-silent' }], 'rule 1 "x": for: missing (a collector-silent rule needs for)'],
    [
      [{ name: 'x', kind: 'collector-silent', for: '1m', notify: ['pager'] }],
      'rule 1 "x": notify: no webhook named "pager" (defined: ops, chat)',
    ],
    [[{ name: 'x', kind: 'collector-silent', for: '1m', notify: 'ops' }], 'rule 1 "x": notify: must be a list of webhook names'],
    [
      [
        { name: 'x', kind: 'collector-silent', for: '1m' },
        { name: 'x', kind: 'tasks-lost', window: '1m' },
      ],
      'rule 2 "x": name: another rule has this name (names must be unique)',
    ],
    [['just a string'], '--alerts /x.json: rule 1: must be an object'],
  ])('refuses %j: %s', (rules, expected) => {
    expect(refusal(rules)).toContain(expected);
  });

  it('refuses webhooks that are not http(s) URLs, and a file that is not the expected object', () => {
    expect(refusal([], { ops: 'ftp://x/y' })).toBe('--alerts /x.json: webhook "ops": "ftp://x/y" is not an http(s) URL');
    expect(refusal([], { ops: 'hooks.example/stalk' })).toBe(
      '--alerts /x.json: webhook "ops": "hooks.example/stalk" is not an http(s) URL',
    );
    expect(refusal([], ['http://x'])).toBe('--alerts /x.json: webhooks: must be an object of name -> URL');
    expect(() => parseAlertsConfig('{"rules": [], "webhook": {}}', '/x.json')).toThrow(
      '--alerts /x.json: unknown field "webhook" (use webhooks, rules)',
    );
    expect(() => parseAlertsConfig('{"webhooks": {}}', '/x.json')).toThrow('--alerts /x.json: rules: must be a list of rules');
    expect(() => parseAlertsConfig('{rules: []}', '/x.json')).toThrow(/^--alerts \/x\.json: not JSON/);
  });

  it('reads the file from disk, and names a file that cannot be read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stalk-alerts-'));
    const file = join(dir, 'alerts.json');
    writeFileSync(file, JSON.stringify({ rules: [{ name: 'quiet', kind: 'collector-silent', for: '10m' }] }));
    expect(loadAlertsFile(file).rules).toEqual([{ name: 'quiet', kind: 'collector-silent', for: 600, notify: [] }]);
    expect(() => loadAlertsFile(join(dir, 'missing.json'))).toThrow(`--alerts ${join(dir, 'missing.json')}: cannot be read (ENOENT)`);
  });
});
