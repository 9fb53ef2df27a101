// Pure helpers of the mailbox rules page (docs/mailbox-rules.md; no DOM, no network;
// unit-tested in mailbox.test.ts): the actions list <-> its forms, the API's error
// paths for actions ("rule.actions[1].folder") -> the control they name, one-line
// summaries, the filters of the list and a move within a filtered view.
import { type Cond, condSummary, errorKey, type PathMap, pointsText } from './rules';

export interface MailboxAction {
  type: string;
  folder?: string;
  address?: string;
  text?: string;
  prefix?: string;
  value?: string;
  name?: string;
  points?: number | string;
}

/* A mailbox rule as POST/PUT and the import take it. */
export interface MailboxRuleBody {
  name: string;
  enabled: boolean;
  when: Cond;
  except: Cond | null;
  actions: MailboxAction[];
  comment: string;
}

/* A stored mailbox rule as GET lists it. */
export interface MailboxRule extends MailboxRuleBody {
  id: number;
  position: number;
  hits: number;
  last_hit: number | null;
  created_at: number;
  updated_at: number;
}

export const ACTIONS_MAX = 8;

type Param = 'folder' | 'address' | 'text' | 'prefix' | 'value' | 'name' | 'points';

export const MAILBOX_ACTIONS: { value: string; label: string; params: Param[] }[] = [
  { value: 'move', label: 'move to folder', params: ['folder'] },
  { value: 'copy', label: 'copy to folder (and continue)', params: ['folder'] },
  { value: 'keep', label: 'keep in the inbox (stop)', params: [] },
  { value: 'forward', label: 'forward to (instead)', params: ['address'] },
  { value: 'forward_copy', label: 'send a copy to (and continue)', params: ['address'] },
  { value: 'tag_subject', label: 'tag the subject', params: ['prefix'] },
  { value: 'importance', label: 'set importance', params: ['value'] },
  { value: 'add_header', label: 'add a header', params: ['name', 'value'] },
  { value: 'quarantine', label: 'put in my quarantine', params: [] },
  { value: 'discard', label: 'discard', params: [] },
  { value: 'refuse', label: 'refuse (550 5.7.1)', params: ['text'] },
  { value: 'stop', label: 'stop here', params: [] },
  { value: 'score', label: 'Add score points (and continue)', params: ['points'] },
];

export const PARAM_LABELS: Record<Param, string> = {
  folder: 'Folder', address: 'Address', text: 'Reply text', prefix: 'Subject prefix', value: 'Value', name: 'Header name',
  points: 'Points',
};

export function paramsOf(type: string): Param[] {
  return MAILBOX_ACTIONS.find((a) => a.value === type)?.params ?? [];
}

export interface ActionRow {
  key: number;
  type: string;
  folder: string;
  address: string;
  text: string;
  prefix: string;
  value: string;
  name: string;
  points: string;
}

let seq = 0;
export function newAction(type = 'move'): ActionRow {
  return {
    key: ++seq, type, folder: '', address: '', text: '', prefix: '', value: type === 'importance' ? 'high' : '', name: '', points: '',
  };
}

export function actionRows(actions: MailboxAction[] | undefined): ActionRow[] {
  if (!actions || actions.length === 0) return [newAction()];
  return actions.map((a) => ({
    ...newAction(a.type), folder: a.folder ?? '', address: a.address ?? '', text: a.text ?? '', prefix: a.prefix ?? '',
    value: a.value ?? (a.type === 'importance' ? 'high' : ''), name: a.name ?? '',
    points: a.points !== undefined ? String(a.points) : '',
  }));
}

/* The actions of the forms: only the parameters of each type; a prefix keeps its spaces. */
export function actionsFromRows(rows: ActionRow[]): MailboxAction[] {
  return rows.map((r) => {
    const a: MailboxAction = { type: r.type };
    for (const p of paramsOf(r.type)) {
      const v = p === 'prefix' || (p === 'value' && r.type === 'add_header') ? r[p] : r[p].trim();
      if (p === 'text' && v === '') continue; /* refuse: the default text */
      if (p === 'points') {
        /* a decimal as a number; anything else as typed, for the server to name */
        a.points = /^[+-]?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
        continue;
      }
      a[p] = v;
    }
    return a;
  });
}

/* The control an API error names: "rule.actions[2].folder" -> "actions.<key>.folder"; the rest as server rules. */
export function mailboxErrorKey(field: string | null, rows: ActionRow[], map: PathMap): string | null {
  if (!field) return null;
  const m = /^(?:rule\.|rules\[0\]\.)?actions(?:\[(\d+)\](?:\.(\w+))?)?/.exec(field);
  if (m) {
    if (m[1] === undefined) return 'actions';
    const row = rows[Number(m[1])];
    if (!row) return 'actions';
    const p = m[2] && (paramsOf(row.type) as string[]).includes(m[2]) ? m[2] : 'type';
    return `actions.${row.key}.${p}`;
  }
  return errorKey(field, map);
}

export function actionSummary(a: MailboxAction): string {
  switch (a.type) {
    case 'move': return `move to ${a.folder ?? ''}`;
    case 'copy': return `copy to ${a.folder ?? ''}`;
    case 'forward': return `forward to ${a.address ?? ''}`;
    case 'forward_copy': return `copy to ${a.address ?? ''}`;
    case 'tag_subject': return `subject prefix “${a.prefix ?? ''}”`;
    case 'importance': return `importance ${a.value ?? ''}`;
    case 'add_header': return `header ${a.name ?? ''}: ${a.value ?? ''}`;
    case 'refuse': return a.text ? `refuse “${a.text}”` : 'refuse';
    case 'score': return `score ${pointsText(a.points)}`;
    default: return a.type;
  }
}

export function mailboxSummary(r: { when: Cond; except: Cond | null; actions: MailboxAction[] }): string {
  const ex = r.except ? ` except ${condSummary(r.except)}` : '';
  return `${condSummary(r.when)}${ex} → ${(r.actions ?? []).map(actionSummary).join(', ')}`;
}

/* The folders a rule files into (move and copy). */
export function foldersOf(r: { actions: MailboxAction[] }): string[] {
  return (r.actions ?? []).filter((a) => a.type === 'move' || a.type === 'copy').map((a) => a.folder ?? '');
}

/* Rules whose move/copy folder contains `folder` (any case); all when it is empty. */
export function byFolder<T extends { actions: MailboxAction[] }>(rules: T[], folder: string): T[] {
  const f = folder.trim().toLowerCase();
  if (!f) return rules;
  return rules.filter((r) => foldersOf(r).some((x) => x.toLowerCase().includes(f)));
}

/*
 * The whole order after `id` moved `delta` places among the `visible` ids (a filtered
 * view): it takes the place of the visible neighbour, every other rule keeps its order.
 * The same list when it cannot move.
 */
export function moveAmong(all: number[], visible: number[], id: number, delta: number): number[] {
  const v = visible.indexOf(id);
  const w = v + delta;
  if (v < 0 || w < 0 || w >= visible.length || delta === 0) return all;
  const target = visible[w];
  const out = all.filter((x) => x !== id);
  const t = out.indexOf(target);
  out.splice(delta < 0 ? t : t + 1, 0, id);
  return out;
}

/* The whole order with `id` at 1-based position `pos` of the whole set (clamped). */
export function moveToPosition(all: number[], id: number, pos: number): number[] {
  if (!all.includes(id) || !Number.isFinite(pos)) return all;
  const out = all.filter((x) => x !== id);
  const at = Math.max(0, Math.min(out.length, Math.floor(pos) - 1));
  out.splice(at, 0, id);
  return out;
}

/* A dry-run outcome in words. */
export interface Outcome {
  action: string;
  folder: string | null;
  copy_folders: string[];
  forward_copies: string[];
  address: string | null;
  importance: string | null;
  subject_prefixes: string[];
  headers: string[];
  text?: string;
}

export function outcomeText(o: Partial<Outcome> | undefined): string {
  if (!o || !o.action) return 'delivered to the inbox (no rule decided)';
  const parts: string[] = [];
  switch (o.action) {
    case 'deliver': case 'keep': case 'stop': case 'accept':
      parts.push(o.folder ? `delivered to folder ${o.folder}` : 'delivered to the inbox'); break;
    case 'move': parts.push(`delivered to folder ${o.folder ?? ''}`); break;
    case 'redirect': case 'forward': parts.push(`forwarded to ${o.address ?? ''}`); break;
    case 'quarantine': parts.push('put in the quarantine'); break;
    case 'discard': parts.push('discarded'); break;
    case 'refuse': parts.push(`refused${o.text ? ` “${o.text}”` : ''}`); break;
    default: parts.push(o.folder ? `${o.action}, folder ${o.folder}` : o.action);
  }
  if (o.copy_folders?.length) parts.push(`copies in ${o.copy_folders.join(', ')}`);
  if (o.forward_copies?.length) parts.push(`copies to ${o.forward_copies.join(', ')}`);
  if (o.subject_prefixes?.length) parts.push(`subject prefix ${o.subject_prefixes.map((s) => `“${s}”`).join(' ')}`);
  if (o.importance) parts.push(`importance ${o.importance}`);
  if (o.headers?.length) parts.push(`headers ${o.headers.join('; ')}`);
  return parts.join('; ');
}
