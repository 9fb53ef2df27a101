// Pure helpers of the console (no DOM, no network): unit-tested in util.test.ts.
import type { QueueRcpt } from './api';

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

/* The n most frequent keys, most frequent first; null is "(none)", '' the null sender "<>". */
export function topCounts(items: (string | null)[], n: number): [string, number][] {
  const m = new Map<string, number>();
  for (const k of items) {
    const key = k === null ? '(none)' : k === '' ? '<>' : k;
    m.set(key, (m.get(key) ?? 0) + 1);
  }
  return [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, n);
}

export interface QueueFilter {
  state: string;
  sender: string;
  client: string;
  rcpt_domain: string;
  reason: string;
}

export const EMPTY_FILTER: QueueFilter = { state: '', sender: '', client: '', rcpt_domain: '', reason: '' };

export type GroupKey = '' | 'sender' | 'client' | 'rcpt_domain' | 'reason';

/* The value of a queue recipient for a grouping, as the filter field takes it. */
export function groupValue(r: QueueRcpt, k: GroupKey): string {
  switch (k) {
    case 'sender': return r.sender === '' ? '<>' : r.sender;
    case 'client': return r.client_addr;
    case 'rcpt_domain': return r.rcpt.slice(r.rcpt.lastIndexOf('@') + 1).toLowerCase();
    case 'reason': return r.reason ?? r.last_error ?? '';
    default: return '';
  }
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
