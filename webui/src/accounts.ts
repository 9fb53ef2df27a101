// Pure helpers of the Accounts pages (no DOM, no network): unit-tested in accounts.test.ts.
// The account defence is described in docs/submission.md; the console part in docs/console.md.

/* A time as the API gives it: unix ms (http_time) or an RFC 3339 string; null for none. */
export type ApiTime = number | string | null | undefined;

/* unix ms of an API time; null for none or a string that is no time. */
export function toMs(t: ApiTime): number | null {
  if (t === null || t === undefined || t === '' || t === 0) return null;
  if (typeof t === 'number') return Number.isFinite(t) && t > 0 ? t : null;
  if (/^\d+$/.test(t)) return Number(t) || null;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms : null;
}

export interface Signal {
  name: string;
  label: string;
  value: number;
  weight: number;
  points: number;
}

/* Short words for the "why" of a score, by signal name; a name not listed is shown with spaces. */
const SHORT: Record<string, string> = {
  senders: 'senders',
  foreign_from: 'foreign From',
  bindings: 'refused bindings',
  malformed: 'malformed senders',
  new_network: 'new network',
  burst: 'burst',
  same_content: 'same content',
};

export function signalShort(name: string): string {
  return SHORT[name] ?? name.replace(/_/g, ' ');
}

export function fmtNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/*
 * The compact "why" of a score: the signals that gave points, most points first (the
 * server's order among equals), "foreign From: 7 (+18), senders: 5 (+10)"; '' when none.
 */
export function signalWhy(signals: Signal[] | null | undefined): string {
  const hit = (signals ?? []).map((s, i) => ({ s, i })).filter(({ s }) => s.points > 0);
  hit.sort((a, b) => b.s.points - a.s.points || a.i - b.i);
  return hit.map(({ s }) => `${signalShort(s.name)}: ${fmtNumber(s.value)} (+${fmtNumber(s.points)})`).join(', ');
}

/* ---- state ---- */

export interface AccountLike {
  suspended: boolean;
  trusted_until?: ApiTime;
}

export type AccountState = 'suspended' | 'trusted' | 'active';

/* Suspension wins over trust: a trusted account can still be suspended (sender bindings). */
export function accountState(a: AccountLike, now: number): AccountState {
  if (a.suspended) return 'suspended';
  const t = toMs(a.trusted_until);
  return t !== null && t > now ? 'trusted' : 'active';
}

/* ---- dates for "trust until" (an <input type="date">, the browser's local day) ---- */

const DAY_MS = 86400000;
/* the server takes a trust end at most this far ahead */
export const TRUST_MAX_DAYS = 366;
export const TRUST_DEFAULT_DAYS = 7;

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/* YYYY-MM-DD of a local day. */
export function dateInput(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/* The end of a local day (23:59:59.999) named YYYY-MM-DD; null when it is no date. */
export function endOfDay(date: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return null;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const da = Number(m[3]);
  const d = new Date(y, mo - 1, da, 23, 59, 59, 999);
  if (d.getFullYear() !== y || d.getMonth() !== mo - 1 || d.getDate() !== da) return null;
  return d.getTime();
}

/* The date the trust dialog proposes: today + 7 days. */
export function defaultTrustDate(now: number): string {
  return dateInput(now + TRUST_DEFAULT_DAYS * DAY_MS);
}

/* The latest day the dialog offers: the end of that day is within TRUST_MAX_DAYS. */
export function maxTrustDate(now: number): string {
  return dateInput(now + (TRUST_MAX_DAYS - 1) * DAY_MS);
}

/*
 * The trust end for a picked day (its end, local time) as the API's RFC 3339 UTC time,
 * or the reason it cannot be: not a date, not in the future, too far ahead.
 */
export function trustUntil(date: string, now: number): { until: string } | { error: string } {
  const end = endOfDay(date);
  if (end === null) return { error: 'Pick a date.' };
  if (end <= now) return { error: 'Pick a date in the future.' };
  if (end - now > TRUST_MAX_DAYS * DAY_MS) return { error: `Pick a date at most ${TRUST_MAX_DAYS} days ahead.` };
  return { until: new Date(end).toISOString() };
}

/* ---- the list's query ---- */

export type SortKey = 'score' | 'volume' | 'name';
export type Order = 'asc' | 'desc';
export interface AccountSort { sort: SortKey; order: Order }
export type StateFilter = '' | 'suspended' | 'active' | 'trusted';
export interface AccountFilter { state: StateFilter; q: string }

export const DEFAULT_SORT: AccountSort = { sort: 'score', order: 'desc' };

/* A click on a column: the same column flips; another starts with its natural order
   (highest score or volume first, names A to Z). */
export function nextSort(cur: AccountSort, key: SortKey): AccountSort {
  if (cur.sort === key) return { sort: key, order: cur.order === 'asc' ? 'desc' : 'asc' };
  return { sort: key, order: key === 'name' ? 'asc' : 'desc' };
}

/* GET /api/v1/accounts parameters of a sort and filter. */
export function accountsQuery(s: AccountSort, f: AccountFilter): Record<string, string> {
  const q: Record<string, string> = { sort: s.sort, order: s.order };
  if (f.state === 'suspended') q.suspended = 'true';
  else if (f.state === 'active') q.suspended = 'false';
  else if (f.state === 'trusted') q.trusted = 'true';
  const name = f.q.trim();
  if (name) q.q = name;
  return q;
}

const SORT_WORDS: Record<SortKey, string> = { score: 'score', volume: 'volume', name: 'name' };
const STATE_WORDS: Record<StateFilter, string> = { '': '', suspended: 'suspended', active: 'not suspended', trusted: 'trusted' };

/* Words for the query a table shows: "suspended accounts with name containing bo, by score descending". */
export function describeAccounts(s: AccountSort, f: AccountFilter): string {
  const state = STATE_WORDS[f.state];
  const name = f.q.trim();
  const what = `${state ? `${state} accounts` : 'all accounts'}${name ? ` with name containing ${name}` : ''}`;
  return `${what}, by ${SORT_WORDS[s.sort]} ${s.order === 'asc' ? 'ascending' : 'descending'}`;
}

/* ---- links to the account's mail ---- */

export function heldMailHref(user: string): string {
  return `/queue?${new URLSearchParams({ state: 'held', auth_user: user })}`;
}

export function messageLogHref(user: string): string {
  return `/messages?${new URLSearchParams({ auth_user: user })}`;
}

export function accountHref(user: string): string {
  return `/accounts/${encodeURIComponent(user)}`;
}

/* The user of /accounts/<user> ('' for the list itself or the alerts). */
export function userOfPath(path: string): string {
  const m = /^\/accounts\/(.+)$/.exec(path);
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

/* ---- lifting ---- */

export type HeldChoice = 'keep' | 'release' | 'delete';

export const HELD_CHOICES: { value: HeldChoice; label: string }[] = [
  { value: 'keep', label: 'Keep held mail in the queue (release or delete it later)' },
  { value: 'release', label: 'Release held mail for delivery now' },
  { value: 'delete', label: 'Delete held mail for good' },
];

/* What a lift did, in words: "Suspension of bob lifted; 3 held recipients released." */
export function liftResult(user: string, r: { released?: number; deleted?: number }): string {
  const parts: string[] = [];
  const n = (k: number) => `${k} held recipient${k === 1 ? '' : 's'}`;
  if (r.released) parts.push(`${n(r.released)} released`);
  if (r.deleted) parts.push(`${n(r.deleted)} deleted`);
  return `Suspension of ${user} lifted.${parts.length ? ` ${parts.join(', ').replace(/^./, (c) => c.toUpperCase())}.` : ''}`;
}

/* ---- alerts ---- */

/*
 * Whether and when an alert went out by mail and webhook. The API gives the time it was sent,
 * or null: not yet (a suspension waits for the notifier, about a second) or nothing to send
 * (trust changes are not mailed).
 */
export function notifiedText(kind: string, notified: ApiTime, fmt: (ms: number) => string): string {
  const ms = typeof notified === 'number' && notified < 0 ? null : toMs(notified);
  if (ms !== null) return `sent ${fmt(ms)}`;
  return kind === 'suspended' ? 'not sent yet' : 'not mailed';
}

/* An alert's action in words: a lift's held mail, a trust's end. */
export function alertAction(kind: string, action: string | null | undefined, fmt: (ms: number) => string): string {
  if (!action) return '';
  if (kind === 'lifted') {
    if (action === 'keep') return 'held mail kept';
    if (action === 'release') return 'held mail released';
    if (action === 'delete') return 'held mail deleted';
  }
  if (kind === 'trusted') {
    const ms = toMs(action);
    return ms === null ? `until ${action}` : `until ${fmt(ms)}`;
  }
  return action;
}
