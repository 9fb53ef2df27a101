// Unit tests of the console's pure helpers (vitest, run by `npm test` and `npm run build`).
import { describe, expect, it } from 'vitest';
import { qs } from './api';
import {
  bulkBody, describeFilter, EMPTY_FILTER, filterFromSearch, groupFilter, parseLine, parseQueueMetrics, summaryGroup, topKey,
} from './util';

describe('parseLine', () => {
  const cases: [string, string, [string, string] | null][] = [
    ['blank', '   ', null],
    ['comment line', '# note', null],
    ['value only', ' 192.0.2.7 ', ['192.0.2.7', '']],
    ['hash comment', '192.0.2.7  # infected PC', ['192.0.2.7', 'infected PC']],
    ['space comment', '198.51.100.0/24 lab network', ['198.51.100.0/24', 'lab network']],
    ['null sender', '<>', ['<>', '']],
  ];
  for (const [name, input, want] of cases) it(name, () => expect(parseLine(input)).toEqual(want));
});

describe('parseQueueMetrics', () => {
  it('reads the queue gauge and ignores the rest', () => {
    const text = '# HELP moat_queue_recipients x\n# TYPE moat_queue_recipients gauge\n' +
      'moat_queue_recipients{state="held"} 3\nmoat_queue_recipients{state="queued"} 12\n' +
      'moat_messages_total{result="refused"} 9\n';
    expect(parseQueueMetrics(text)).toEqual({ held: 3, queued: 12 });
  });
  it('empty text: nothing', () => expect(parseQueueMetrics('')).toEqual({}));
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
