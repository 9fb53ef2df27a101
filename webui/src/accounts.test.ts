// Unit tests of the Accounts pages' pure helpers (vitest, run by `npm test` and `npm run build`).
import { describe, expect, it } from 'vitest';
import {
  accountsQuery, accountState, alertAction, dateInput, DEFAULT_SORT, defaultTrustDate, describeAccounts, endOfDay,
  heldMailHref, liftResult, maxTrustDate, messageLogHref, nextSort, notifiedText, type Signal, signalShort, signalWhy,
  toMs, trustUntil, userOfPath,
} from './accounts';
import { bulkBody, describeFilter, EMPTY_FILTER, filterFromSearch } from './util';

const sig = (name: string, value: number, weight: number, points: number, label = name): Signal => ({ name, label, value, weight, points });

describe('toMs', () => {
  const cases: [string, Parameters<typeof toMs>[0], number | null][] = [
    ['unix ms', 1767225600000, 1767225600000],
    ['RFC 3339 UTC', '2026-01-01T00:00:00Z', 1767225600000],
    ['RFC 3339 with offset', '2026-01-01T01:00:00+01:00', 1767225600000],
    ['digits as a string', '1767225600000', 1767225600000],
    ['null', null, null],
    ['undefined', undefined, null],
    ['zero is none', 0, null],
    ['empty string', '', null],
    ['not a time', 'soon', null],
    ['negative', -1, null],
  ];
  for (const [name, input, want] of cases) it(name, () => expect(toMs(input)).toBe(want));
});

describe('signalWhy', () => {
  it('only signals with points, most points first, value and points', () => {
    const s = [
      sig('senders', 5, 2, 10), sig('foreign_from', 7, 3, 18), sig('bindings', 0, 5, 0),
      sig('malformed', 2, 4, 8), sig('new_network', 1, 6, 0), sig('burst', 0, 1, 0), sig('same_content', 0, 1, 0),
    ];
    expect(signalWhy(s)).toBe('foreign From: 7 (+18), senders: 5 (+10), malformed senders: 2 (+8)');
  });
  it('equal points keep the server order', () => {
    expect(signalWhy([sig('burst', 40, 0.5, 6), sig('senders', 3, 2, 6)])).toBe('burst: 40 (+6), senders: 3 (+6)');
  });
  it('fractions shown with one decimal', () => {
    expect(signalWhy([sig('burst', 12.345, 0.5, 6.17)])).toBe('burst: 12.3 (+6.2)');
  });
  it('no signals, none with points, or none given: empty', () => {
    expect(signalWhy([])).toBe('');
    expect(signalWhy([sig('senders', 1, 2, 0)])).toBe('');
    expect(signalWhy(null)).toBe('');
    expect(signalWhy(undefined)).toBe('');
  });
  it('an unknown signal by its name', () => {
    expect(signalShort('odd_thing')).toBe('odd thing');
    expect(signalWhy([sig('odd_thing', 1, 1, 1)])).toBe('odd thing: 1 (+1)');
  });
});

describe('accountState', () => {
  const now = 1767225600000;
  it('suspended wins over trust', () => expect(accountState({ suspended: true, trusted_until: now + 1000 }, now)).toBe('suspended'));
  it('trusted until a future time', () => expect(accountState({ suspended: false, trusted_until: now + 1000 }, now)).toBe('trusted'));
  it('trust as RFC 3339', () => expect(accountState({ suspended: false, trusted_until: '2026-01-02T00:00:00Z' }, now)).toBe('trusted'));
  it('an ended trust is active', () => expect(accountState({ suspended: false, trusted_until: now - 1 }, now)).toBe('active'));
  it('no trust', () => expect(accountState({ suspended: false, trusted_until: null }, now)).toBe('active'));
});

describe('trust dates', () => {
  const now = new Date(2026, 0, 10, 15, 30).getTime(); /* local 2026-01-10 15:30 */
  it('dateInput is the local day', () => expect(dateInput(now)).toBe('2026-01-10'));
  it('default is a week ahead', () => expect(defaultTrustDate(now)).toBe('2026-01-17'));
  it('max is 365 days ahead', () => expect(maxTrustDate(now)).toBe('2027-01-10'));
  it('endOfDay is the last ms of the local day', () => {
    expect(endOfDay('2026-01-17')).toBe(new Date(2026, 0, 17, 23, 59, 59, 999).getTime());
  });
  it('endOfDay refuses what is no date', () => {
    expect(endOfDay('')).toBeNull();
    expect(endOfDay('2026-02-30')).toBeNull();
    expect(endOfDay('17.01.2026')).toBeNull();
  });
  it('a week ahead: the end of that day as RFC 3339 UTC', () => {
    expect(trustUntil('2026-01-17', now)).toEqual({ until: new Date(2026, 0, 17, 23, 59, 59, 999).toISOString() });
  });
  it('today is still in the future (its end)', () => expect('until' in trustUntil('2026-01-10', now)).toBe(true));
  it('yesterday is refused', () => expect(trustUntil('2026-01-09', now)).toEqual({ error: 'Pick a date in the future.' }));
  it('too far ahead is refused', () => expect(trustUntil('2027-02-10', now)).toEqual({ error: 'Pick a date at most 366 days ahead.' }));
  it('the latest day offered is accepted', () => expect('until' in trustUntil(maxTrustDate(now), now)).toBe(true));
  it('no date', () => expect(trustUntil('', now)).toEqual({ error: 'Pick a date.' }));
});

describe('sorting and query', () => {
  it('default: score, highest first', () => expect(DEFAULT_SORT).toEqual({ sort: 'score', order: 'desc' }));
  it('the same column flips', () => expect(nextSort({ sort: 'score', order: 'desc' }, 'score')).toEqual({ sort: 'score', order: 'asc' }));
  it('volume starts highest first', () => expect(nextSort({ sort: 'score', order: 'asc' }, 'volume')).toEqual({ sort: 'volume', order: 'desc' }));
  it('name starts A to Z', () => expect(nextSort(DEFAULT_SORT, 'name')).toEqual({ sort: 'name', order: 'asc' }));
  it('query of a filter', () => {
    expect(accountsQuery(DEFAULT_SORT, { state: '', q: '' })).toEqual({ sort: 'score', order: 'desc' });
    expect(accountsQuery({ sort: 'volume', order: 'asc' }, { state: 'suspended', q: ' bo ' })).toEqual({ sort: 'volume', order: 'asc', suspended: 'true', q: 'bo' });
    expect(accountsQuery(DEFAULT_SORT, { state: 'active', q: '' })).toEqual({ sort: 'score', order: 'desc', suspended: 'false' });
    expect(accountsQuery(DEFAULT_SORT, { state: 'trusted', q: '' })).toEqual({ sort: 'score', order: 'desc', trusted: 'true' });
  });
  it('words of a query', () => {
    expect(describeAccounts(DEFAULT_SORT, { state: '', q: '' })).toBe('all accounts, by score descending');
    expect(describeAccounts({ sort: 'name', order: 'asc' }, { state: 'suspended', q: 'bo' })).toBe('suspended accounts with name containing bo, by name ascending');
    expect(describeAccounts({ sort: 'volume', order: 'desc' }, { state: 'active', q: '' })).toBe('not suspended accounts, by volume descending');
  });
});

describe('links', () => {
  it('held mail: the queue filtered by state and account', () => expect(heldMailHref('bob@example.org')).toBe('/queue?state=held&auth_user=bob%40example.org'));
  it('message log by account', () => expect(messageLogHref('a b&c')).toBe('/messages?auth_user=a+b%26c'));
  it('user of a detail path', () => {
    expect(userOfPath('/accounts/bob%40example.org')).toBe('bob@example.org');
    expect(userOfPath('/accounts')).toBe('');
    expect(userOfPath('/accounts/%E0%A4%A')).toBe('%E0%A4%A');
  });
});

describe('lift, alerts', () => {
  it('lift result in words', () => {
    expect(liftResult('bob', { released: 0, deleted: 0 })).toBe('Suspension of bob lifted.');
    expect(liftResult('bob', { released: 3, deleted: 0 })).toBe('Suspension of bob lifted. 3 held recipients released.');
    expect(liftResult('bob', { released: 0, deleted: 1 })).toBe('Suspension of bob lifted. 1 held recipient deleted.');
    expect(liftResult('bob', {})).toBe('Suspension of bob lifted.');
  });
  const fmt = (ms: number) => new Date(ms).toISOString();
  it('notified', () => {
    expect(notifiedText('suspended', 1767225600000, fmt)).toBe('sent 2026-01-01T00:00:00.000Z');
    expect(notifiedText('suspended', null, fmt)).toBe('not sent yet');
    expect(notifiedText('trusted', null, fmt)).toBe('not mailed');
    expect(notifiedText('trusted', -1, fmt)).toBe('not mailed');
  });
  it('action', () => {
    expect(alertAction('lifted', 'release', fmt)).toBe('held mail released');
    expect(alertAction('lifted', 'keep', fmt)).toBe('held mail kept');
    expect(alertAction('lifted', 'delete', fmt)).toBe('held mail deleted');
    expect(alertAction('trusted', '1767225600000', fmt)).toBe('until 2026-01-01T00:00:00.000Z');
    expect(alertAction('suspended', null, fmt)).toBe('');
  });
});

describe('the queue filter of an account\'s held mail', () => {
  it('read from the link the Accounts page makes', () => {
    const f = filterFromSearch(heldMailHref('bob@example.org').replace(/^\/queue/, ''));
    expect(f).toEqual({ ...EMPTY_FILTER, state: 'held', auth_user: 'bob@example.org' });
    expect(describeFilter(f)).toBe('state held, account bob@example.org');
    expect(bulkBody(f)).toEqual({ state: 'held', auth_user: 'bob@example.org' });
  });
});
