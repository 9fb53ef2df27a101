// Pure helpers of the server rules page (no DOM, no network; unit-tested in rules.test.ts):
// the condition tree of a rule (docs/rules.md) <-> the editor's rows and groups, the action
// <-> its form, the API's error paths ("rule.when.all[1].value") -> the editor control they
// name, one-line summaries, and reordering.

/* ---- the JSON model (docs/rules.md) ---- */

export interface Leaf {
  field: string;
  header?: string;
  name?: string; /* score_part: the part, e.g. BAYES */
  op: string;
  value: unknown;
  case?: 'sensitive' | 'insensitive';
}
export type Cond = { all: Cond[] } | { any: Cond[] } | { not: Cond } | Leaf;

export interface RuleAction {
  type: string;
  code?: number | string;
  enhanced?: string;
  text?: string;
  subject_prefix?: string;
  header?: string;
  address?: string;
  points?: number | string;
}

/* A rule as POST/PUT /rules, /rules/import and /rules/test take it. */
export interface RuleBody {
  name: string;
  enabled: boolean;
  when: Cond;
  except: Cond | null;
  action: RuleAction;
  comment: string;
}

/* ---- fields, operators, actions ---- */

const STRING_OPS = ['contains', 'not_contains', 'is', 'is_not', 'starts_with', 'ends_with', 'matches', 'not_matches'];
const NUMBER_OPS = ['gt', 'lt', 'is', 'is_not'];

export const FIELDS: { value: string; label: string; ops: string[] }[] = [
  { value: 'header', label: 'header', ops: [...STRING_OPS, 'in_list'] },
  { value: 'sender', label: 'sender', ops: [...STRING_OPS, 'in_list'] },
  { value: 'recipient', label: 'recipient', ops: [...STRING_OPS, 'in_list'] },
  { value: 'client_address', label: 'client address', ops: ['is', 'is_not', 'in_network', 'in_list'] },
  { value: 'client_name', label: 'client name', ops: [...STRING_OPS, 'in_list'] },
  { value: 'helo', label: 'HELO', ops: [...STRING_OPS, 'in_list'] },
  { value: 'auth_user', label: 'authenticated user', ops: [...STRING_OPS, 'in_list'] },
  { value: 'body', label: 'body text', ops: STRING_OPS },
  { value: 'raw_body', label: 'raw body', ops: STRING_OPS },
  { value: 'attachment_name', label: 'attachment name', ops: [...STRING_OPS, 'in_list'] },
  { value: 'attachment_type', label: 'attachment type', ops: [...STRING_OPS, 'in_list'] },
  { value: 'url_host', label: 'URL host', ops: [...STRING_OPS, 'in_list'] },
  { value: 'size', label: 'size (octets)', ops: NUMBER_OPS },
  { value: 'recipient_count', label: 'number of recipients', ops: NUMBER_OPS },
  { value: 'dnsbl', label: 'DNS blocklist', ops: [...STRING_OPS, 'in_list'] },
  { value: 'flag', label: 'flag', ops: ['is', 'is_not'] },
  { value: 'score', label: 'Spam score', ops: NUMBER_OPS },
  { value: 'score_part', label: 'Score part', ops: NUMBER_OPS },
];

/* Fields compared as decimals (the spam score), and the part names the score has (docs/rules.md). */
export const SCORE_FIELDS = ['score', 'score_part'];
export const SCORE_PARTS = ['BAYES', 'SPF_PASS', 'SPF_FAIL', 'SPF_SOFTFAIL', 'DKIM_PASS', 'DKIM_FAIL', 'DMARC_PASS',
  'DMARC_FAIL', 'ACCOUNT', 'DNSBL_'];
const DECIMAL = /^[+-]?\d+(\.\d+)?$/;

/* The two fields only mailbox rules take (docs/mailbox-rules.md): after FIELDS in their editor. */
export const MAILBOX_FIELDS: { value: string; label: string; ops: string[] }[] = [
  ...FIELDS,
  { value: 'to_cc', label: 'To or Cc', ops: [...STRING_OPS, 'in_list'] },
  { value: 'importance', label: 'importance', ops: ['is', 'is_not'] },
];

export const IMPORTANCE = ['high', 'normal', 'low'];

export const OP_LABELS: Record<string, string> = {
  contains: 'contains', not_contains: 'does not contain', is: 'is', is_not: 'is not',
  starts_with: 'starts with', ends_with: 'ends with', matches: 'matches regex', not_matches: 'does not match regex',
  gt: 'greater than', lt: 'less than', in_list: 'is in list', in_network: 'is in network',
};

/* short forms for summaries */
const OP_SHORT: Record<string, string> = { ...OP_LABELS, gt: '>', lt: '<', matches: 'matches', not_matches: 'does not match' };

export const FLAGS = ['mime_limit', 'mime_malformed', 'html_only', 'encrypted', 'auth', 'tls'];

export const ACTIONS: { value: string; label: string; params: (keyof ActionForm)[] }[] = [
  { value: 'accept', label: 'accept (deliver, stop)', params: [] },
  { value: 'refuse', label: 'refuse', params: ['code', 'enhanced', 'text'] },
  { value: 'defer', label: 'defer (temporary refusal)', params: ['code', 'enhanced', 'text'] },
  { value: 'quarantine', label: 'quarantine', params: [] },
  { value: 'hold', label: 'hold in the queue', params: [] },
  { value: 'discard', label: 'discard', params: [] },
  { value: 'redirect', label: 'redirect to', params: ['address'] },
  { value: 'stop', label: 'stop (deliver with tags so far)', params: [] },
  { value: 'tag', label: 'tag (and continue)', params: ['subject_prefix', 'header'] },
  { value: 'bcc', label: 'copy to (and continue)', params: ['address'] },
  { value: 'continue', label: 'count only (and continue)', params: [] },
  { value: 'score', label: 'Add score points (and continue)', params: ['points'] },
];

export function opsFor(field: string): string[] {
  return MAILBOX_FIELDS.find((f) => f.value === field)?.ops ?? STRING_OPS;
}

export function fieldLabel(field: string): string {
  return MAILBOX_FIELDS.find((f) => f.value === field)?.label ?? field;
}

/* Fields whose value is one of a fixed list (a select in the editor). */
export function fixedValues(field: string): string[] | null {
  if (field === 'flag') return FLAGS;
  if (field === 'importance') return IMPORTANCE;
  return null;
}

/* ---- the editor's state ---- */

export interface RowState {
  kind: 'row';
  key: number;
  not: boolean;
  field: string;
  header: string;
  op: string;
  value: string;
  sensitive: boolean;
  part: string; /* score_part only */
}
export interface GroupState {
  kind: 'group';
  key: number;
  not: boolean;
  mode: 'all' | 'any';
  items: NodeState[];
}
export type NodeState = RowState | GroupState;

export interface ActionForm {
  type: string;
  code: string;
  enhanced: string;
  text: string;
  subject_prefix: string;
  header: string;
  address: string;
  points: string;
}

let keySeq = 0;
export function nextKey(): number {
  return ++keySeq;
}

export function newRow(field = 'header'): RowState {
  const op = opsFor(field).includes('contains') ? 'contains' : opsFor(field)[0];
  return {
    kind: 'row', key: nextKey(), not: false, field, header: field === 'header' ? 'Subject' : '', op, value: '', sensitive: false,
    part: field === 'score_part' ? 'BAYES' : '',
  };
}

export function newGroup(mode: 'all' | 'any' = 'all', items: NodeState[] = []): GroupState {
  return { kind: 'group', key: nextKey(), not: false, mode, items };
}

/* A row after its field changed: the operator stays when the new field takes it. */
export function withField(r: RowState, field: string): RowState {
  const ops = opsFor(field);
  return {
    ...r, field, op: ops.includes(r.op) ? r.op : ops[0],
    header: field === 'header' ? r.header || 'Subject' : '',
    part: field === 'score_part' ? r.part || 'BAYES' : '',
    value: fixedValues(field) ? (fixedValues(field)!.includes(r.value) ? r.value : fixedValues(field)![0])
      : fixedValues(r.field) ? '' : r.value,
  };
}

function isGroup(c: Cond): c is { all: Cond[] } | { any: Cond[] } {
  return typeof c === 'object' && c !== null && ('all' in c || 'any' in c);
}

function valueText(v: unknown): string {
  if (Array.isArray(v)) return v.map((x) => String(x)).join(', ');
  if (v === null || v === undefined) return '';
  return String(v);
}

/* A condition -> an editor node. {"not": X} is X with its NOT toggled. */
export function nodeFromCond(c: Cond): NodeState {
  if ('not' in c) {
    const n = nodeFromCond(c.not);
    return { ...n, not: !n.not };
  }
  if (isGroup(c)) {
    const mode = 'all' in c ? 'all' : 'any';
    const items = 'all' in c ? c.all : c.any;
    return { kind: 'group', key: nextKey(), not: false, mode, items: items.map(nodeFromCond) };
  }
  return {
    kind: 'row', key: nextKey(), not: false, field: c.field, header: c.header ?? '', op: c.op,
    value: valueText(c.value), sensitive: c.case === 'sensitive', part: c.name ?? '',
  };
}

/* The top of a `when` or `except`: always a group (a lone condition is a group of one). */
export function rootFromCond(c: Cond | null | undefined): GroupState {
  if (!c) return newGroup('all');
  const n = nodeFromCond(c);
  if (n.kind === 'group' && !n.not) return n;
  return newGroup('all', [n]);
}

/* The editor control an API error path names: `${key}.value`, `${key}.op`, ... for a row,
   `${key}` for a group. */
export type PathMap = Record<string, string>;

function leafValue(r: RowState): unknown {
  const t = r.value.trim();
  if (r.field === 'size' || r.field === 'recipient_count') return /^\d+$/.test(t) ? Number(t) : r.value;
  /* a decimal as a number; anything else as typed, for the server to name */
  if (SCORE_FIELDS.includes(r.field)) return DECIMAL.test(t) ? Number(t) : r.value;
  if (r.op === 'in_network') {
    const nets = t.split(/[\s,]+/).filter(Boolean);
    return nets.length === 1 ? nets[0] : nets;
  }
  if (r.op === 'in_list' || fixedValues(r.field) || r.field === 'client_address') return t;
  return r.value;
}

/* An editor node -> its condition; records in `map` the API path of every control. A group
   of one (not negated) is that one condition. */
export function condFromNode(n: NodeState, path: string, map: PathMap): Cond {
  if (n.not) {
    map[path] = n.kind === 'row' ? `${n.key}.field` : `${n.key}`;
    return { not: condFromNode({ ...n, not: false }, `${path}.not`, map) };
  }
  if (n.kind === 'row') {
    const leaf: Leaf = { field: n.field, op: n.op, value: leafValue(n) };
    if (n.field === 'header') leaf.header = n.header.trim();
    if (n.field === 'score_part') leaf.name = n.part.trim();
    if (n.sensitive && n.field !== 'size' && n.field !== 'recipient_count' && !fixedValues(n.field) &&
      !SCORE_FIELDS.includes(n.field) && n.field !== 'client_address' && n.op !== 'in_list') leaf.case = 'sensitive';
    map[path] = `${n.key}.field`;
    for (const k of ['field', 'op', 'value', 'header', 'case']) map[`${path}.${k}`] = `${n.key}.${k === 'case' ? 'sensitive' : k}`;
    map[`${path}.name`] = `${n.key}.part`;
    return leaf;
  }
  if (n.items.length === 1) {
    map[path] = `${n.key}`;
    return condFromNode(n.items[0], path, map);
  }
  map[path] = `${n.key}`;
  map[`${path}.${n.mode}`] = `${n.key}`;
  const kids = n.items.map((it, i) => condFromNode(it, `${path}.${n.mode}[${i}]`, map));
  return n.mode === 'all' ? { all: kids } : { any: kids };
}

/* The condition of a `when` / `except` root; null for an empty except. */
export function condFromRoot(g: GroupState, path: string, map: PathMap, optional: boolean): Cond | null {
  if (optional && g.items.length === 0) return null;
  return condFromNode(g, path, map);
}

export function actionForm(a?: RuleAction): ActionForm {
  return {
    type: a?.type ?? 'quarantine',
    code: a?.code !== undefined ? String(a.code) : '',
    enhanced: a?.enhanced ?? '',
    text: a?.text ?? '',
    subject_prefix: a?.subject_prefix ?? '',
    header: a?.header ?? '',
    address: a?.address ?? '',
    points: a?.points !== undefined ? String(a.points) : '',
  };
}

/* The action of a form: only the parameters of its type, only those filled in. */
export function actionFromForm(f: ActionForm): RuleAction {
  const a: RuleAction = { type: f.type };
  const params = ACTIONS.find((x) => x.value === f.type)?.params ?? [];
  for (const p of params) {
    const v = f[p];
    if (p === 'code') {
      const t = v.trim();
      if (t) a.code = /^\d+$/.test(t) ? Number(t) : t;
    } else if (p === 'points') {
      const t = v.trim();
      if (t) a.points = DECIMAL.test(t) ? Number(t) : t;
    } else if (p === 'subject_prefix') {
      if (v !== '') a.subject_prefix = v; /* its trailing space is meant */
    } else if (v.trim()) {
      a[p] = v.trim();
    }
  }
  return a;
}

/*
 * The control an API error names, as a key of the editor's errors: "rule.name" -> "name",
 * "rule.action.code" -> "action.code", "rule.when.all[1].value" -> "<row key>.value"
 * (through `map`, the longest known path that starts the error's path; "value[2]" of a
 * network list is the value). The rule of a test request is "rules[0]". null: no control.
 */
export function errorKey(field: string | null, map: PathMap): string | null {
  if (!field) return null;
  let f = field.replace(/^rules\[0\]/, 'rule');
  if (/^(name|enabled|comment|when|except|action)\b/.test(f)) f = `rule.${f}`;
  if (!f.startsWith('rule.')) return null;
  f = f.slice(5);
  for (const k of ['name', 'comment', 'enabled']) if (f === k) return k;
  const act = /^action(?:\.(\w+))?/.exec(f);
  if (act) return act[1] && act[1] !== 'type' ? `action.${act[1]}` : 'action.type';
  let p = `rule.${f}`;
  for (;;) {
    if (map[p] !== undefined) return map[p];
    const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
    if (cut <= 4) return null;
    p = p.slice(0, cut);
  }
}

/* ---- summaries ---- */

function quote(s: string): string {
  return `“${s}”`;
}

function leafSummary(l: Leaf): string {
  const what = l.field === 'header' ? `${l.header ?? ''}` : l.field === 'score_part' ? `score part ${l.name ?? ''}`
    : l.field === 'score' ? 'score' : fieldLabel(l.field).replace(/ \(octets\)$/, '');
  const v = l.field === 'size' || l.field === 'recipient_count' || SCORE_FIELDS.includes(l.field) ? valueText(l.value)
    : l.op === 'in_network' ? valueText(l.value) : quote(valueText(l.value));
  return `${what} ${OP_SHORT[l.op] ?? l.op} ${v}`;
}

export function condSummary(c: Cond, nested = false): string {
  if ('not' in c) return `not (${condSummary(c.not)})`;
  if (isGroup(c)) {
    const kids = 'all' in c ? c.all : c.any;
    const s = kids.map((k) => condSummary(k, true)).join('all' in c ? ' and ' : ' or ');
    return nested && kids.length > 1 ? `(${s})` : s;
  }
  return leafSummary(c);
}

export function actionSummary(a: RuleAction): string {
  switch (a.type) {
    case 'refuse':
    case 'defer': {
      const parts = [a.type, String(a.code ?? (a.type === 'defer' ? 451 : 550))];
      if (a.enhanced) parts.push(a.enhanced);
      if (a.text) parts.push(quote(a.text));
      return parts.join(' ');
    }
    case 'tag': {
      const parts: string[] = [];
      if (a.subject_prefix) parts.push(`subject prefix ${quote(a.subject_prefix)}`);
      if (a.header) parts.push(`header ${quote(a.header)}`);
      return `tag ${parts.join(', ')}`;
    }
    case 'redirect':
      return `redirect to ${a.address ?? ''}`;
    case 'bcc':
      return `copy to ${a.address ?? ''}`;
    case 'score':
      return `score ${pointsText(a.points)}`;
    default:
      return a.type;
  }
}

/* Signed points as the list shows them: "+2.5", "-1". */
export function pointsText(p: number | string | undefined): string {
  const t = String(p ?? '').trim();
  return /^[-+]/.test(t) ? t : `+${t}`;
}

/* "Subject contains “Viagra” and size > 100 except sender is “a@b” → quarantine" */
export function ruleSummary(r: { when: Cond; except: Cond | null; action: RuleAction }): string {
  const ex = r.except ? ` except ${condSummary(r.except)}` : '';
  return `${condSummary(r.when)}${ex} → ${actionSummary(r.action)}`;
}

/* ---- order ---- */

/* ids with `id` moved by `delta` places (clamped); the same list when it cannot move. */
export function moveBy(ids: number[], id: number, delta: number): number[] {
  const i = ids.indexOf(id);
  if (i < 0) return ids;
  const j = Math.max(0, Math.min(ids.length - 1, i + delta));
  return moveTo(ids, id, j);
}

/* ids with `id` taking position `to` (the others shift): a drop on the row at `to`. */
export function moveTo(ids: number[], id: number, to: number): number[] {
  const i = ids.indexOf(id);
  if (i < 0 || to < 0 || to >= ids.length || i === to) return ids;
  const out = ids.filter((x) => x !== id);
  out.splice(to, 0, id);
  return out;
}

/* ---- dry run and import ---- */

/* "a@x, b@y\nc@z" -> ["a@x", "b@y", "c@z"] */
export function splitRecipients(s: string): string[] {
  return s.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);
}

/* The rules of an import: an array of rules, or {"rules": [...]}; an error names what is wrong. */
export function parseImport(text: string): { rules: unknown[] } | { error: string } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return { error: `not JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (data && typeof data === 'object' && !Array.isArray(data) && Array.isArray((data as { rules?: unknown }).rules)) {
    data = (data as { rules: unknown[] }).rules;
  }
  if (!Array.isArray(data)) return { error: 'want a JSON array of rules (as the export writes)' };
  /* the stored-only keys of a rule listing are dropped: the import takes portable rules */
  const drop = ['id', 'position', 'hits', 'last_hit', 'created_at', 'updated_at'];
  const rules = data.map((r) => {
    if (!r || typeof r !== 'object' || Array.isArray(r)) return r;
    const o: Record<string, unknown> = { ...(r as Record<string, unknown>) };
    for (const k of drop) delete o[k];
    return o;
  });
  return { rules };
}
