// Unit tests of the console's pure helpers (vitest, run by `npm test` and `npm run build`).
import { describe, expect, it } from 'vitest';
import type { QueueRcpt } from './api';
import { qs } from './api';
import {
  bulkBody, describeFilter, EMPTY_FILTER, filterFromSearch, groupValue, parseLine, parseQueueMetrics, topCounts,
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

describe('topCounts', () => {
  it('counts, sorts and names null and the null sender', () => {
    expect(topCounts(['a', 'b', 'a', null, '', ''], 3)).toEqual([['<>', 2], ['a', 2], ['(none)', 1]]);
  });
});

const rcpt = (o: Partial<QueueRcpt>): QueueRcpt => ({
  qid: '1', rcpt: 'x@Dest.Example', state: 'held', sender: 's@a.test', client_addr: '192.0.2.1', auth_user: null,
  last_error: null, reason: null, route: null, size: 1, received_at: 1, next_attempt: 1, released_at: null, final_at: null,
  attempts: 0, ...o,
});

describe('queue filters', () => {
  it('groups by lower-cased recipient domain, null sender as <>, reason or last error', () => {
    expect(groupValue(rcpt({}), 'rcpt_domain')).toBe('dest.example');
    expect(groupValue(rcpt({ sender: '' }), 'sender')).toBe('<>');
    expect(groupValue(rcpt({ last_error: '451 try later' }), 'reason')).toBe('451 try later');
    expect(groupValue(rcpt({ reason: 'held by admin', last_error: 'x' }), 'reason')).toBe('held by admin');
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
