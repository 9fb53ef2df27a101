// Pure helpers of the quarantine, digest and timeline pages (no DOM, no network):
// the shapes of their API answers, the filter as a query and as a bulk body,
// the words a table or a dialog uses for a filter, and times with their zone.
// Unit-tested in quarantine.test.ts.

export type QuarantineKind = 'spam' | 'policy' | 'virus' | 'attachment';
export const QUARANTINE_KINDS: QuarantineKind[] = ['spam', 'policy', 'virus', 'attachment'];

/* One quarantined recipient of a message (every quarantine answer uses this shape). */
export interface QuarantineItem {
  id: number;
  qid: string;
  recipient: string;
  kind: QuarantineKind;
  reason: string;
  sender: string;
  subject: string;
  message_id: string;
  client_address: string;
  size: number;
  created_at: string;
  expires_at: string;
}

export interface QuarantineDetail extends QuarantineItem {
  headers: { name: string; value: string }[];
  text: string;
  html_text: string;
  has_html: boolean;
  attachments: { name: string; type: string; size: number }[];
  recipients: QuarantineItem[];
}

export interface QuarantineResult {
  recipients: number;
  messages: number;
  sender_listed: number;
}

export interface QuarantineFilter {
  recipient: string;
  sender: string;
  subject: string;
  reason: string;
  kind: string;
  since: string; /* datetime-local text (the browser's zone) or '' */
  until: string;
  q: string;
}

export const EMPTY_QFILTER: QuarantineFilter = { recipient: '', sender: '', subject: '', reason: '', kind: '', since: '', until: '', q: '' };

export type SortKey = 'created_at' | 'expires_at' | 'size' | 'sender' | 'recipient' | 'subject';
export interface Sort { sort: SortKey; order: 'asc' | 'desc' }
export const DEFAULT_SORT: Sort = { sort: 'created_at', order: 'desc' };

/* A column's header clicked: the same column flips its order, another starts descending for
   times and sizes (newest, largest first) and ascending for text. */
export function nextSort(cur: Sort, key: SortKey): Sort {
  if (cur.sort === key) return { sort: key, order: cur.order === 'asc' ? 'desc' : 'asc' };
  const numeric = key === 'created_at' || key === 'expires_at' || key === 'size';
  return { sort: key, order: numeric ? 'desc' : 'asc' };
}

/* datetime-local ("2024-05-01T12:30", local time) -> RFC 3339 in UTC; '' stays ''; text that is
   no time goes as typed so the API names the field. */
export function localToRfc3339(v: string): string {
  if (!v) return '';
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? new Date(t).toISOString().replace(/\.000Z$/, 'Z') : v;
}

/* The filter keys the API takes (list, count and the bulk body's "filter"): set fields only. */
export function filterParams(f: QuarantineFilter): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(f) as [keyof QuarantineFilter, string][]) {
    const t = v.trim();
    if (!t) continue;
    out[k] = k === 'since' || k === 'until' ? localToRfc3339(t) : t;
  }
  return out;
}

export function hasFilter(f: QuarantineFilter): boolean {
  return Object.keys(filterParams(f)).length > 0;
}

/* The body of a release or delete of everything a filter matches; an empty filter must say all. */
export function bulkFilterBody(f: QuarantineFilter, senderList?: 'allow' | 'block'): Record<string, unknown> {
  const filter = filterParams(f);
  const b: Record<string, unknown> = { filter };
  if (Object.keys(filter).length === 0) b.all = true;
  if (senderList) b.sender_list = senderList;
  return b;
}

/* The body of a release or delete of chosen items. */
export function idsBody(ids: number[], senderList?: 'allow' | 'block'): Record<string, unknown> {
  const b: Record<string, unknown> = { ids: [...ids].sort((a, b) => a - b) };
  if (senderList) b.sender_list = senderList;
  return b;
}

const QLABELS: [keyof QuarantineFilter, string][] = [
  ['recipient', 'recipient'], ['sender', 'sender'], ['subject', 'subject containing'], ['reason', 'reason containing'],
  ['kind', 'kind'], ['since', 'since'], ['until', 'until'], ['q', 'text'],
];

/* Words for a filter: "recipient a@example.org, kind spam" ('' when none). */
export function describeQFilter(f: QuarantineFilter): string {
  return QLABELS.filter(([k]) => f[k].trim())
    .map(([k, l]) => `${l} ${k === 'since' || k === 'until' ? f[k].trim().replace('T', ' ') : f[k].trim()}`)
    .join(', ');
}

/* A filter from a query string (?sender=...&kind=spam). */
export function qFilterFromSearch(search: string): QuarantineFilter {
  const p = new URLSearchParams(search);
  const f = { ...EMPTY_QFILTER };
  for (const k of Object.keys(EMPTY_QFILTER) as (keyof QuarantineFilter)[]) f[k] = p.get(k) ?? '';
  return f;
}

/* The release kinds a session names (an array or a comma list), or null when it names none. */
export function releaseKinds(v: unknown): string[] | null {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  return null;
}

/* ---- times with their zone ---- */

/* An API time (RFC 3339 text or Unix milliseconds) -> ms, or null. */
export function toMs(t: string | number | null | undefined): number | null {
  if (t === null || t === undefined || t === '') return null;
  if (typeof t === 'number') return Number.isFinite(t) ? t : null;
  if (/^\d+$/.test(t)) return Number(t);
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms : null;
}

/* "+02:00" for an offset in minutes east of UTC (Date#getTimezoneOffset is west, so negated). */
export function zoneOffset(minutesEast: number): string {
  const sign = minutesEast < 0 ? '-' : '+';
  const m = Math.abs(minutesEast);
  return `${sign}${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

/* Local time with milliseconds and its UTC offset: "2024-05-01 14:30:05.120 +02:00". */
export function fmtZoned(t: string | number | null | undefined, withMs = true): string {
  const ms = toMs(t);
  if (ms === null) return '—';
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const frac = withMs ? `.${p(d.getMilliseconds(), 3)}` : '';
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${frac} ${zoneOffset(-d.getTimezoneOffset())}`;
}

/* ---- the timeline ---- */

export interface TimelineEvent {
  ts: string | number;
  stage: string;
  event: string;
  recipient?: string | null;
  detail?: Record<string, unknown> | null;
  actor?: string | null;
}

export interface Timeline {
  qid: string | null;
  message_id: string | null;
  events: TimelineEvent[];
}

/* One line for an event's detail: "host=mx.example reply=250 2.0.0 OK result=delivered". */
export function detailText(d: Record<string, unknown> | null | undefined): string {
  if (!d) return '';
  return Object.entries(d)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/* Events in time order (the API sends them so; equal times keep the server's order). */
export function ordered(events: TimelineEvent[]): TimelineEvent[] {
  return events.map((e, i) => ({ e, i, t: toMs(e.ts) ?? 0 })).sort((a, b) => a.t - b.t || a.i - b.i).map((x) => x.e);
}

/* ---- lists that may call their cursor "next" or "next_cursor" ---- */

export function pageOf<T>(r: { items: T[]; next?: string | null; next_cursor?: string | null }): { items: T[]; next_cursor: string | null } {
  return { items: r.items ?? [], next_cursor: r.next_cursor ?? r.next ?? null };
}
