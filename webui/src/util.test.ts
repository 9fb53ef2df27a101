// Unit tests of the console's pure helpers (vitest, run by `npm test` and `npm run build`).
import { describe, expect, it } from 'vitest';
import { qs } from './api';
import {
  actionCount, bulkBody, describeCount, describeFilter, describeUnchanged, EMPTY_FILTER, filterFromSearch, groupFilter, parseLine,
  summaryGroup, topKey, topSeries,
} from './util';

describe('parseLine', () => {
  const cases: [string, string, [string, string] | null][] = [
    ['blank', '   ', null],
    ['comment line', '# note', null],
    ['value only', ' 192.0.2.7 ', ['192.0.2.7', '']],
    ['hash comment', '192.0.2.7  # infected PC', ['192.0.2.7', 'infected PC']],
    ['tab before the hash', '192.0.2.7\t#lab', ['192.0.2.7', 'lab']],
    ['a space does not start a comment', '198.51.100.0/24 lab network', ['198.51.100.0/24 lab network', '']],
    ['an invalid line stays whole', 'not valid@@', ['not valid@@', '']],
    ['a hash inside a value', 'a#b@example.org', ['a#b@example.org', '']],
    ['null sender', '<>', ['<>', '']],
  ];
  for (const [name, input, want] of cases) it(name, () => expect(parseLine(input)).toEqual(want));
});

describe('actionCount', () => {
  const groups = [
    { key: 'deferred', messages: 4, recipients: 5 },
    { key: 'held', messages: 2, recipients: 2 },
    { key: 'dead', messages: 1, recipients: 1 },
    { key: 'queued', messages: 1, recipients: 1 },
  ];
  it('release counts only held and dead recipients', () => {
    const c = actionCount('release', groups);
    expect([c.recipients, c.messages, c.exact]).toEqual([3, 3, false]);
    expect(describeCount(c)).toBe('3 recipients (2 held, 1 dead) in at most 3 messages');
    expect(describeUnchanged(c)).toBe('5 deferred, 1 queued');
  });
  it('release of deferred mail changes nothing', () => {
    const c = actionCount('release', [{ key: 'deferred', messages: 4, recipients: 5 }]);
    expect(c.recipients).toBe(0);
    expect(describeUnchanged(c)).toBe('5 deferred');
  });
  it('retry counts queued and deferred; one state is exact', () => {
    expect(describeCount(actionCount('retry', [groups[0], groups[1]]))).toBe('5 recipients in 4 messages');
  });
  it('delete counts every state', () => {
    expect(actionCount('delete', groups).recipients).toBe(9);
  });
});

describe('topKey', () => {
  it('names null and the null sender', () => {
    expect(topKey(null)).toBe('(none)');
    expect(topKey('')).toBe('<>');
    expect(topKey('192.0.2.1')).toBe('192.0.2.1');
  });
});

describe('queue filters', () => {
  it('maps a grouping to the summary group and a group to its filter', () => {
    expect(summaryGroup('rcpt_domain')).toBe('domain');
    expect(summaryGroup('client')).toBe('client');
    const f = { ...EMPTY_FILTER, state: 'held' };
    expect(groupFilter(f, 'client', '127.0.0.6')).toEqual({ ...f, client: '127.0.0.6' });
    expect(groupFilter(f, 'sender', '')).toEqual({ ...f, sender: '<>' });
    expect(groupFilter(f, 'rcpt_domain', 'dest.example')).toEqual({ ...f, rcpt_domain: 'dest.example' });
    expect(groupFilter(f, 'reason', null)).toBeNull();
    expect(bulkBody(groupFilter(f, 'sender', '')!)).toEqual({ state: 'held', sender: '' });
  });
  it('bulk body has only set fields; <> becomes the empty sender', () => {
    expect(bulkBody({ ...EMPTY_FILTER, state: 'held', sender: '<>' })).toEqual({ state: 'held', sender: '' });
    expect(bulkBody(EMPTY_FILTER)).toEqual({});
  });
  it('reads a filter from the URL and describes it', () => {
    const f = filterFromSearch('?state=held&client=127.0.0.6&other=1');
    expect(f).toEqual({ ...EMPTY_FILTER, state: 'held', client: '127.0.0.6' });
    expect(describeFilter(f)).toBe('state held, client 127.0.0.6');
  });
});

describe('qs', () => {
  it('drops empty values and encodes the rest', () => {
    expect(qs({ a: '', b: null, c: undefined, d: 'x y', e: 0, f: false })).toBe('?d=x+y&e=0&f=false');
    expect(qs({})).toBe('');
  });
});

describe('topSeries', () => {
  it('keeps the largest names in order and sums the rest as other', () => {
    const totals = { dnsbl: 9, grey: 5, rdns: 1, helo: 2, zero: 0 };
    const rows: Record<string, number>[] = [{ dnsbl: 4, grey: 5 }, { dnsbl: 5, rdns: 1, helo: 2 }];
    expect(topSeries(totals, rows, 2)).toEqual([
      { name: 'dnsbl', values: [4, 5] }, { name: 'grey', values: [5, 0] }, { name: 'other', values: [0, 3] },
    ]);
    expect(topSeries(totals, rows, 10).map((s) => s.name)).toEqual(['dnsbl', 'grey', 'helo', 'rdns']);
  });
});
