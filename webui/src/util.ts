// Pure helpers of the console (no DOM, no network): unit-tested in util.test.ts.

/*
 * A pasted line -> [value, comment]; null for a blank line or a line that starts with '#'.
 * The whole trimmed line is one value (values never split at a space, so "not valid@@" is
 * sent as it is and refused by the server); a comment may follow " #" (a '#' after
 * white space): "192.0.2.7  # infected PC". A '#' inside a value ("a#b@example.org") stays.
 */
export function parseLine(line: string): [string, string] | null {
  const t = line.trim();
  if (!t || t.startsWith('#')) return null;
  const m = /\s#/.exec(t);
  if (m) return [t.slice(0, m.index).trim(), t.slice(m.index + 2).trim()];
  return [t, ''];
}

/*
 * Lines for a chart of many names (checks, DNSBL sites): the `max` largest by total, in that
 * order, each with its value per bucket, and the rest summed as "other".
 */
export function topSeries(totals: Record<string, number>, rows: Record<string, number>[], max: number): { name: string; values: number[] }[] {
  const names = Object.keys(totals).filter((k) => totals[k] > 0).sort((a, b) => totals[b] - totals[a] || a.localeCompare(b));
  const shown = names.slice(0, max);
  const out = shown.map((name) => ({ name, values: rows.map((r) => r[name] ?? 0) }));
  if (names.length > max) {
    const rest = names.slice(max);
    out.push({ name: 'other', values: rows.map((r) => rest.reduce((a, k) => a + (r[k] ?? 0), 0)) });
  }
  return out;
}

/* A key of /stats/top or /queue/summary as shown: null is "(none)", '' the null sender "<>". */
export function topKey(k: string | null): string {
  return k === null ? '(none)' : k === '' ? '<>' : k;
}

export interface QueueFilter {
  state: string;
  sender: string;
  client: string;
  rcpt_domain: string;
  reason: string;
  /* the authenticated account that submitted the message (exact) */
  auth_user: string;
}

export const EMPTY_FILTER: QueueFilter = { state: '', sender: '', client: '', rcpt_domain: '', reason: '', auth_user: '' };

export type GroupKey = '' | 'state' | 'sender' | 'client' | 'rcpt_domain' | 'reason';

/* The group= of GET /api/v1/queue/summary for a grouping. */
export function summaryGroup(k: GroupKey): string {
  return k === 'rcpt_domain' ? 'domain' : k;
}

/* The filter that selects one group of /queue/summary within the current filter; null when
   no filter can name the group (a recipient without a reason). The null sender is "<>". */
export function groupFilter(f: QueueFilter, k: GroupKey, key: string | null): QueueFilter | null {
  if (!k || key === null) return null;
  return { ...f, [k]: k === 'sender' && key === '' ? '<>' : key };
}

/* A filter from a query string (?state=held&client=..., ?state=held&auth_user=bob). */
export function filterFromSearch(search: string): QueueFilter {
  const p = new URLSearchParams(search);
  const f = { ...EMPTY_FILTER };
  for (const k of Object.keys(EMPTY_FILTER) as (keyof QueueFilter)[]) f[k] = p.get(k) ?? '';
  return f;
}

/* Words for a confirmation: "state held, client 192.0.2.1". */
export function describeFilter(f: QueueFilter): string {
  const parts: string[] = [];
  if (f.state) parts.push(`state ${f.state}`);
  if (f.sender) parts.push(`sender ${f.sender}`);
  if (f.client) parts.push(`client ${f.client}`);
  if (f.rcpt_domain) parts.push(`recipient domain ${f.rcpt_domain}`);
  if (f.reason) parts.push(`reason containing “${f.reason}”`);
  if (f.auth_user) parts.push(`account ${f.auth_user}`);
  return parts.join(', ');
}

/* The body of a bulk queue action: set fields only; the list's "<>" null sender is '' there. */
export function bulkBody(f: QueueFilter): Record<string, string> {
  const b: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) if (v) b[k] = k === 'sender' && v === '<>' ? '' : v;
  return b;
}

/* ---- what a queue action changes (daemon/queue/queue_admin.c, store_queue.c) ---- */

export type QueueAction = 'release' | 'retry' | 'delete';

/* The recipient states each action changes: release held and dead, retry queued and deferred. */
export const ACTION_STATES: Record<QueueAction, string[]> = {
  release: ['held', 'dead'],
  retry: ['queued', 'deferred'],
  delete: ['queued', 'deferred', 'held', 'dead', 'done'],
};

export const ACTION_MEANS: Record<QueueAction, string> = {
  release: 'queues held and dead recipients for delivery now (queued and deferred ones are not changed)',
  retry: 'makes queued and deferred recipients due now (held and dead ones are not changed)',
  delete: 'removes the recipients in every state for good (and messages left without recipients)',
};

export interface StateGroup {
  key: string | null;
  messages: number;
  recipients: number;
}

export interface ActionCount {
  recipients: number;     /* exactly the recipients the action changes */
  messages: number;       /* their messages: exact when one state contributes, else at most */
  exact: boolean;
  changed: [string, number][];   /* state, recipients that change */
  unchanged: [string, number][]; /* state, recipients that match but stay as they are */
}

/* From /api/v1/queue/summary?group=state (with the filter): what `action` really changes. */
export function actionCount(action: QueueAction, groups: StateGroup[]): ActionCount {
  const states = ACTION_STATES[action];
  const c: ActionCount = { recipients: 0, messages: 0, exact: true, changed: [], unchanged: [] };
  for (const g of groups) {
    if (!g.recipients) continue;
    if (g.key !== null && states.includes(g.key)) {
      c.recipients += g.recipients;
      c.messages += g.messages;
      c.changed.push([g.key, g.recipients]);
    } else {
      c.unchanged.push([g.key ?? '(none)', g.recipients]);
    }
  }
  /* a message with recipients in two of the states counts once per state above */
  c.exact = c.changed.length <= 1;
  return c;
}

function n(k: number, one: string, many = one + 's'): string {
  return `${k} ${k === 1 ? one : many}`;
}

/* "3 recipients in 3 messages", "3 recipients (2 held, 1 dead) in at most 3 messages". */
export function describeCount(c: ActionCount): string {
  const states = c.changed.length > 1 ? ` (${c.changed.map(([s, k]) => `${k} ${s}`).join(', ')})` : '';
  return `${n(c.recipients, 'recipient')}${states} in ${c.exact ? '' : 'at most '}${n(c.messages, 'message')}`;
}

/* "2 deferred, 1 queued": the matching recipients an action leaves as they are. */
export function describeUnchanged(c: ActionCount): string {
  return c.unchanged.map(([s, k]) => `${k} ${s}`).join(', ');
}
