// Pure helpers of the console (no DOM, no network): unit-tested in util.test.ts.

/* A pasted line "value  # comment" or "value comment" -> [value, comment]; null for blank or '#' lines. */
export function parseLine(line: string): [string, string] | null {
  const t = line.trim();
  if (!t || t.startsWith('#')) return null;
  const hash = t.indexOf(' #');
  if (hash > 0) return [t.slice(0, hash).trim(), t.slice(hash + 2).trim()];
  const m = /^(\S+)\s+(.+)$/.exec(t);
  if (m) return [m[1], m[2].trim()];
  return [t, ''];
}

/* moat_queue_recipients{state="held"} 3 ... from /metrics -> {held: 3, ...} */
export function parseQueueMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = /^moat_queue_recipients\{state="([a-z]+)"\}\s+(\d+)/gm;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) out[m[1]] = Number(m[2]);
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
}

export const EMPTY_FILTER: QueueFilter = { state: '', sender: '', client: '', rcpt_domain: '', reason: '' };

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

/* A filter from a query string (?state=held&client=...). */
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
  return parts.join(', ');
}

/* The body of a bulk queue action: set fields only; the list's "<>" null sender is '' there. */
export function bulkBody(f: QueueFilter): Record<string, string> {
  const b: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) if (v) b[k] = k === 'sender' && v === '<>' ? '' : v;
  return b;
}
