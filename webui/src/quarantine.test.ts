// Unit tests of the quarantine, digest and timeline helpers (vitest).
import { describe, expect, it } from 'vitest';
import {
  bulkFilterBody, describeQFilter, detailText, EMPTY_QFILTER, filterParams, fmtZoned, hasFilter, idsBody, localToRfc3339,
  nextSort, ordered, pageOf, qFilterFromSearch, releaseKinds, toMs, zoneOffset,
} from './quarantine';

describe('filter as query and body', () => {
  it('set fields only, trimmed; times as RFC 3339 UTC', () => {
    const f = { ...EMPTY_QFILTER, sender: ' a@x.test ', kind: 'spam', since: '2024-05-01T12:30' };
    const p = filterParams(f);
    expect(Object.keys(p).sort()).toEqual(['kind', 'sender', 'since']);
    expect(p.sender).toBe('a@x.test');
    expect(p.since).toBe(new Date('2024-05-01T12:30').toISOString().replace('.000Z', 'Z'));
    expect(p.since).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
  it('text that is no time goes as typed (the API names the field)', () => expect(localToRfc3339('yesterday')).toBe('yesterday'));
  it('an empty filter acts on everything only when it says all', () => {
    expect(hasFilter(EMPTY_QFILTER)).toBe(false);
    expect(bulkFilterBody(EMPTY_QFILTER)).toEqual({ filter: {}, all: true });
    expect(bulkFilterBody({ ...EMPTY_QFILTER, reason: 'rule 3' }, 'block')).toEqual({ filter: { reason: 'rule 3' }, sender_list: 'block' });
  });
  it('ids sorted, sender list only when asked', () => {
    expect(idsBody([18, 17])).toEqual({ ids: [17, 18] });
    expect(idsBody([5], 'allow')).toEqual({ ids: [5], sender_list: 'allow' });
  });
  it('words for a filter', () => {
    expect(describeQFilter(EMPTY_QFILTER)).toBe('');
    expect(describeQFilter({ ...EMPTY_QFILTER, recipient: 'u@example.org', subject: 'Viagra', until: '2024-05-01T10:00' }))
      .toBe('recipient u@example.org, subject containing Viagra, until 2024-05-01 10:00');
  });
  it('from a query string', () => {
    expect(qFilterFromSearch('?sender=a%40x.test&kind=spam&bogus=1')).toEqual({ ...EMPTY_QFILTER, sender: 'a@x.test', kind: 'spam' });
  });
});

describe('nextSort', () => {
  it('flips the same column', () => expect(nextSort({ sort: 'size', order: 'desc' }, 'size')).toEqual({ sort: 'size', order: 'asc' }));
  it('text columns start ascending, times and sizes descending', () => {
    expect(nextSort({ sort: 'created_at', order: 'desc' }, 'sender')).toEqual({ sort: 'sender', order: 'asc' });
    expect(nextSort({ sort: 'sender', order: 'asc' }, 'expires_at')).toEqual({ sort: 'expires_at', order: 'desc' });
  });
});

describe('releaseKinds', () => {
  it('array, comma list, or nothing', () => {
    expect(releaseKinds(['spam', 'policy'])).toEqual(['spam', 'policy']);
    expect(releaseKinds('spam, policy,')).toEqual(['spam', 'policy']);
    expect(releaseKinds(undefined)).toBeNull();
  });
});

describe('times with their zone', () => {
  it('RFC 3339 text, milliseconds, digits', () => {
    expect(toMs('2024-05-01T12:00:00Z')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(toMs('2024-05-01T14:00:00+02:00')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(toMs(1714564800000)).toBe(1714564800000);
    expect(toMs('1714564800000')).toBe(1714564800000);
    expect(toMs('')).toBeNull();
    expect(toMs('not a time')).toBeNull();
  });
  it('offsets', () => {
    expect(zoneOffset(0)).toBe('+00:00');
    expect(zoneOffset(120)).toBe('+02:00');
    expect(zoneOffset(-330)).toBe('-05:30');
  });
  it('local time with milliseconds and the offset', () => {
    const s = fmtZoned('2024-05-01T12:00:00.120Z');
    expect(s).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d$/);
    expect(s).toContain(`.120 ${zoneOffset(-new Date(Date.UTC(2024, 4, 1, 12)).getTimezoneOffset())}`);
    expect(fmtZoned(null)).toBe('—');
  });
});

describe('timeline', () => {
  it('detail as key=value, empty values left out', () => {
    expect(detailText({ host: 'mx.example', reply: '250 2.0.0 OK', result: 'delivered', extra: null, n: 3 }))
      .toBe('host=mx.example reply=250 2.0.0 OK result=delivered n=3');
    expect(detailText(undefined)).toBe('');
  });
  it('time order, equal times keep the server order', () => {
    const ev = [
      { ts: '2024-05-01T12:00:02Z', stage: 'queue', event: 'b' },
      { ts: '2024-05-01T12:00:01Z', stage: 'smtp', event: 'a1' },
      { ts: '2024-05-01T12:00:01Z', stage: 'smtp', event: 'a2' },
    ];
    expect(ordered(ev).map((e) => e.event)).toEqual(['a1', 'a2', 'b']);
  });
});

describe('pageOf', () => {
  it('either cursor name', () => {
    expect(pageOf({ items: [1], next: 'c' })).toEqual({ items: [1], next_cursor: 'c' });
    expect(pageOf({ items: [1], next_cursor: 'd' })).toEqual({ items: [1], next_cursor: 'd' });
    expect(pageOf({ items: [] })).toEqual({ items: [], next_cursor: null });
  });
});
