// The JSON API client (api/openapi.yaml). The session cookie travels by itself
// (same origin); every state-changing request carries X-CSRF-Token. Errors come
// back as ApiError with the API's code, message and field.
import type { ApiTime, Signal } from './accounts';
import type { Cond, RuleAction } from './rules';

export class ApiError extends Error {
  status: number;
  code: string;
  field: string | null;
  constructor(status: number, code: string, message: string, field: string | null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let csrfToken = '';
let onUnauthenticated: (() => void) | null = null;

export function setCsrf(token: string | undefined): void {
  csrfToken = token ?? '';
}

export function setUnauthenticatedHandler(fn: () => void): void {
  onUnauthenticated = fn;
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function qs(q: Query | undefined): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === '') continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

const TIMEOUT_MS = 30000;

export async function request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let resp: Response;
  try {
    resp = await fetch(path + qs(query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal: ctl.signal,
    });
  } catch (e) {
    throw new ApiError(0, 'network', ctl.signal.aborted ? 'the server did not answer in time' : 'cannot reach the server', null);
  } finally {
    clearTimeout(timer);
  }
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  let data: unknown = null;
  const ctype = resp.headers.get('Content-Type') ?? '';
  if (ctype.startsWith('application/json') && text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  } else {
    data = text;
  }
  if (!resp.ok) {
    const err = (data as { error?: { code?: string; message?: string; field?: string | null } } | null)?.error;
    const e = new ApiError(resp.status, err?.code ?? 'http_' + resp.status, err?.message ?? resp.statusText, err?.field ?? null);
    if (resp.status === 401 && path !== '/api/v1/session' && onUnauthenticated) onUnauthenticated();
    throw e;
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => request<T>('GET', path, undefined, query),
  /* no body (undefined): no Content-Type either; some actions take none (415 otherwise) */
  post: <T>(path: string, body?: unknown) => request<T>('POST', path, body),
  put: <T>(path: string, body: unknown) => request<T>('PUT', path, body),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, body),
  del: <T>(path: string) => request<T>('DELETE', path),
};

export interface List<T> {
  items: T[];
  next_cursor: string | null;
}

export interface User {
  id: number;
  name: string;
  role: 'admin' | 'user';
  disabled: boolean;
  password_set: boolean;
  created: number;
  password_changed: number | null;
  addresses?: { address: string; kind: string }[];
}

export interface Session {
  via: 'session' | 'token';
  user: User;
  admin: boolean;
  csrf_token?: string;
  expires_at?: number;
}

export interface Token {
  id: number;
  user_id: number;
  user: string;
  name: string;
  prefix: string;
  scope: 'admin' | 'user';
  created: number;
  last_used: number | null;
  revoked: number | null;
  active: boolean;
  token?: string;
}

export interface Entry {
  id: number;
  list: string;
  value: string;
  comment: string;
  created: number;
}

export interface Setting {
  key: string;
  value: string;
  default: string;
  source: 'set' | 'default';
  type: 'bool' | 'int' | 'number' | 'enum' | 'text';
  summary: string;
  min?: number;
  max?: number;
  choices?: string;
}

export interface DnsblSite {
  id: number;
  zone: string;
  kind: 'block' | 'allow';
  enabled: boolean;
  action: 'refuse' | 'tag' | 'log';
  message: string;
  codes: string;
  weight: number;
  comment: string;
  created: number;
  stats: { queries: number; hits: number; tempfails: number; hits_today: number; last_hit: number | null };
}

export interface QueueRcpt {
  qid: string;
  rcpt: string;
  state: string;
  sender: string;
  client_addr: string;
  auth_user: string | null;
  last_error: string | null;
  reason: string | null;
  route: string | null;
  size: number;
  received_at: number;
  next_attempt: number;
  released_at: number | null;
  final_at: number | null;
  attempts: number;
}

export interface Message {
  id: number;
  ts: number;
  session_id: string | null;
  qid: string | null;
  client_addr: string | null;
  client_name: string | null;
  helo: string | null;
  sender: string | null;
  recipients: unknown[];
  size: number | null;
  result: string;
  code: string | null;
  reason: string | null;
  check_name: string | null;
  entry: string | null;
  auth_user: string | null;
  tls: string | null;
}

export interface HarvestItem {
  client_addr: string;
  unknown_recipients: number;
  distinct_recipients: number;
  deferred: number;
  first_ts: number;
  last_ts: number;
  denied: boolean;
}

export interface AuditEntry {
  id: number;
  ts: number;
  actor_id: number | null;
  actor: string;
  via: string;
  client_addr: string;
  action: string;
  object_type: string;
  object_id: string | null;
  before: unknown;
  after: unknown;
}

export interface DirEntry {
  address: string;
  kind: 'primary' | 'alias' | 'group';
  owner: string;
  members: string[] | null;
}

export interface Stats {
  from: number;
  to: number;
  bucket: 'hour' | 'day';
  bucket_ms: number;
  buckets: { start: number; by_result: Record<string, number>; by_check: Record<string, number> }[];
}

/* GET /api/v1/stats/checks and /api/v1/stats/dnsbl: one bucket per UTC day. */
export interface DailyStats {
  from: number;
  to: number;
  bucket_ms: number;
  time_zone: string;
  buckets: ({ start: number; counts: Record<string, number> } | { start: number; zones: Record<string, { queries: number; hits: number; tempfails: number }> })[];
  totals: Record<string, number>;
}

/* Times of the accounts API: unix ms or RFC 3339 (accounts.ts toMs reads both). */
export interface Account {
  user: string;
  suspended: boolean;
  suspended_at: ApiTime;
  reason: string | null;
  score: number;
  /* the last score's parts, every signal in a fixed order (may be []) */
  signals?: Signal[];
  trusted_until?: ApiTime;
  volume_day?: number;
  last_client?: string | null;
  window: Record<string, number>;
  auth_failures?: { recent: number; last_at: ApiTime; last_addr: string | null };
}

export interface AccountClient {
  addr: string;
  messages: number;
  new: boolean;
}

export interface AccountSample {
  qid: string;
  sender: string;
  recipient: string;
  subject: string;
  size: number;
}

export interface AccountAlert {
  id: number;
  user: string;
  ts: ApiTime;
  kind?: 'suspended' | 'lifted' | 'trusted' | 'untrusted';
  score: number | null;
  detail?: string;
  /* the older API's name for detail */
  reason?: string;
  held?: number;
  signals?: Signal[];
  clients?: AccountClient[];
  samples?: AccountSample[];
  actor?: string;
  action?: string | null;
  notified?: ApiTime;
}

export interface AccountNetwork {
  net: string;
  first_seen: ApiTime;
  last_seen: ApiTime;
  messages: number;
}

/* GET /api/v1/accounts/{user} */
export interface AccountDetail extends Account {
  alerts: AccountAlert[];
  networks: AccountNetwork[];
  held: number;
}

export interface TopItem {
  key: string | null;
  count: number;
}

export interface QueueGroup {
  key: string | null;
  messages: number;
  recipients: number;
}

/* A server rule as GET /api/v1/rules lists it (docs/rules.md; condition and action in rules.ts). */
export interface Rule {
  id: number;
  position: number;
  name: string;
  enabled: boolean;
  when: Cond;
  except: Cond | null;
  action: RuleAction;
  comment: string;
  hits: number;
  last_hit: number | null;
  created_at: number;
  updated_at: number;
}

export interface RuleRef {
  id: number | null;
  index: number;
  name: string;
}

/* One message of POST /api/v1/rules/test: the outcome per recipient and every rule that matched. */
export interface RuleTestResult {
  qid: string | null;
  subject: string | null;
  mime_flags: string[];
  recipients: {
    recipient: string;
    action: string;
    rule: RuleRef | null;
    code?: number;
    enhanced?: string;
    text?: string;
    address?: string;
    subject_prefixes: string[];
    headers: string[];
    bcc: string[];
    points: number; /* the sum of the matching rules' score actions */
  }[];
  matched: RuleRef[];
}

/* Every page of a list, following next_cursor, up to max items. */
export async function fetchAll<T>(path: string, query: Query, max: number): Promise<{ items: T[]; complete: boolean }> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (;;) {
    const page: List<T> = await api.get<List<T>>(path, { ...query, limit: 500, cursor });
    items.push(...page.items);
    if (!page.next_cursor) return { items, complete: true };
    if (items.length >= max) return { items, complete: false };
    cursor = page.next_cursor;
  }
}
