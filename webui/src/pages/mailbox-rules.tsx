// Mailbox rules (docs/mailbox-rules.md): one owner's ordered set — "My rules" for the
// signed-in user (/my/rules), a group's set for its managers (/my/rules/groups/<address>),
// and the same page for an administrator acting for a user (/directory/<user id>/rules)
// or a group (/directory/groups/<address>/rules); only the API base differs.
// Built for hundreds of rules on a phone: the whole set is read once, shown 50 at a
// time; a search (the server's `q`), an enabled filter and a folder filter narrow it;
// ↑ / ↓ and "Move to position" next to each rule (drag and drop too, on a pointer
// device) send the whole order; bulk enable / disable / delete of the selected rules
// after a dialog with their count; duplicate; the editor (conditions as for server
// rules plus importance and To/Cc; a list of up to 8 actions); a dry run on a pasted
// message or one of my quarantined messages; JSON and Sieve export and import (the
// skipped Sieve lines listed); "apply to my quarantined mail now" with its counts.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type List } from '../api';
import type { QuarantineItem } from '../quarantine';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, Link, navigate, PageTitle,
  plural, Results, useKeyed,
} from '../ui';
import { condFromRoot, type GroupState, MAILBOX_FIELDS, moveTo, newGroup, newRow, type PathMap, rootFromCond } from '../rules';
import { CondGroup, downloadText, ImportExport } from '../rule-ui';
import {
  ACTIONS_MAX, type ActionRow, actionRows, actionsFromRows, byFolder, MAILBOX_ACTIONS, type MailboxRule,
  type MailboxRuleBody, mailboxErrorKey, mailboxSummary, moveAmong, moveToPosition, newAction, type Outcome,
  outcomeText, PARAM_LABELS, paramsOf,
} from '../mailbox';

const PAGE = 50;

/* Whose set a path names: the API base and how to say it. null: not a rules path. */
export function rulesOwner(path: string): { base: string; title: string; mine: boolean } | null {
  let m = /^\/my\/rules\/?$/.exec(path);
  if (m) return { base: '/api/v1/account/rules', title: 'My rules', mine: true };
  m = /^\/my\/rules\/groups\/([^/]+)\/?$/.exec(path);
  if (m) {
    const g = decodeURIComponent(m[1]);
    return { base: `/api/v1/directory/groups/${encodeURIComponent(g)}/rules`, title: `Rules of group ${g}`, mine: true };
  }
  m = /^\/directory\/groups\/([^/]+)\/rules\/?$/.exec(path);
  if (m) {
    const g = decodeURIComponent(m[1]);
    return { base: `/api/v1/directory/groups/${encodeURIComponent(g)}/rules`, title: `Rules of group ${g}`, mine: false };
  }
  m = /^\/directory\/(\d+)\/rules\/?$/.exec(path);
  if (m) return { base: `/api/v1/users/${m[1]}/rules`, title: `Rules of user ${m[1]}`, mine: false };
  return null;
}

/* ---- the editor ---- */

function ActionsEditor(props: { rows: ActionRow[]; errors: Errors; onChange: (r: ActionRow[]) => void }) {
  const { rows } = props;
  const set = (i: number, p: Partial<ActionRow>) => props.onChange(rows.map((r, j) => (j === i ? { ...r, ...p } : r)));
  const move = (i: number, d: number) => {
    const out = rows.slice();
    const [x] = out.splice(i, 1);
    out.splice(i + d, 0, x);
    props.onChange(out);
  };
  return (
    <fieldset class="cond-group action">
      <legend>Then, in order</legend>
      {rows.map((r, i) => {
        const label = `Action ${i + 1}`;
        return (
          <div class="cond-row" role="group" aria-label={label} key={r.key}>
            <Field label="Action" name={`actions.${r.key}.type`} value={r.type} errors={props.errors}
              options={MAILBOX_ACTIONS.map((a) => ({ value: a.value, label: a.label }))}
              onInput={(v) => set(i, { type: v, value: v === 'importance' && !['high', 'normal', 'low'].includes(r.value) ? 'high' : r.value })} />
            {paramsOf(r.type).map((p) => (p === 'value' && r.type === 'importance' ? (
              <Field label="Importance" name={`actions.${r.key}.value`} value={r.value} errors={props.errors}
                options={['high', 'normal', 'low'].map((x) => ({ value: x, label: x }))} onInput={(v) => set(i, { value: v })} />
            ) : (
              <Field label={PARAM_LABELS[p]} name={`actions.${r.key}.${p}`} value={r[p]} errors={props.errors}
                onInput={(v) => set(i, { [p]: v })}
                placeholder={p === 'folder' ? 'Ships/Seven' : p === 'address' ? 'me@example.org' : p === 'prefix' ? '[Fleet] '
                  : p === 'name' ? 'X-Sorted' : p === 'text' ? 'Not accepted here' : ''} />
            )))}
            <Button label={`Move ${label} up`} disabled={i === 0} onClick={() => move(i, -1)}>↑</Button>
            <Button label={`Move ${label} down`} disabled={i === rows.length - 1} onClick={() => move(i, 1)}>↓</Button>
            <Button label={`Remove ${label}`} disabled={rows.length === 1} onClick={() => props.onChange(rows.filter((_, j) => j !== i))}>Remove</Button>
          </div>
        );
      })}
      {props.errors.actions && <p class="field-error" role="alert">{props.errors.actions}</p>}
      <div class="actions">
        <Button disabled={rows.length >= ACTIONS_MAX} onClick={() => props.onChange([...rows, newAction('stop')])}>+ Action</Button>
        <span class="muted small">up to {ACTIONS_MAX}; move, keep, forward, quarantine, discard, refuse and stop end the rules</span>
      </div>
    </fieldset>
  );
}

function RuleEditor(props: {
  base: string; rule: MailboxRule | null; total: number; stored: number[]; onSaved: (r: MailboxRule) => void; onCancel: () => void;
}) {
  const r = props.rule;
  const [name, setName] = useState(r?.name ?? '');
  const [enabled, setEnabled] = useState(r?.enabled ?? true);
  const [comment, setComment] = useState(r?.comment ?? '');
  const [when, setWhen] = useState<GroupState>(() => (r ? rootFromCond(r.when) : newGroup('all', [newRow()])));
  const [except, setExcept] = useState<GroupState>(() => rootFromCond(r?.except ?? null));
  const [acts, setActs] = useState<ActionRow[]>(() => actionRows(r?.actions));
  const [place, setPlace] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    heading.current?.focus();
    heading.current?.scrollIntoView({ block: 'start' });
  }, []);
  const title = r ? `Edit rule “${r.name}”` : 'New rule';

  async function submit(e: Event) {
    e.preventDefault();
    const map: PathMap = {};
    const body: MailboxRuleBody = {
      name, enabled, comment,
      when: condFromRoot(when, 'rule.when', map, false)!,
      except: condFromRoot(except, 'rule.except', map, true),
      actions: actionsFromRows(acts),
    };
    setBusy(true);
    setErrors({});
    try {
      let saved: MailboxRule;
      if (r) saved = await api.put<MailboxRule>(`${props.base}/${r.id}`, body);
      else {
        const pos = place.trim();
        /* the place the user counts (1 = first) -> the stored position of the rule now there */
        const at = /^\d+$/.test(pos) ? props.stored[Math.max(0, Number(pos) - 1)] : undefined;
        saved = await api.post<MailboxRule>(props.base, at !== undefined ? { ...body, position: at } : body);
      }
      props.onSaved(saved);
    } catch (err) {
      const ers = errorsOf(err);
      const [[field, msg]] = Object.entries(ers);
      const k = mailboxErrorKey(field === '_' ? null : field, acts, map);
      setErrors(k ? { [k]: msg } : ers);
    } finally {
      setBusy(false);
    }
  }

  const known = ['name', 'comment', 'enabled', 'position', 'actions'];
  const formLevel: Errors = {};
  for (const [k, v] of Object.entries(errors)) {
    if (k === '_' || (!known.includes(k) && !/^\d+(\.|$)/.test(k) && !k.startsWith('actions.'))) formLevel[k] = v;
  }
  return (
    <form class="card rule-editor" aria-label={title} onSubmit={submit}>
      <h2 tabIndex={-1} ref={heading}>{title}</h2>
      <div class="form-grid">
        <Field label="Rule name" name="name" value={name} onInput={setName} errors={errors} required />
        <div class="field">
          <span class="label-like">State</span>
          <label class="check"><input type="checkbox" checked={enabled} onChange={(e) => setEnabled((e.target as HTMLInputElement).checked)} /> enabled</label>
        </div>
        {!r && <Field label="Position" name="position" type="number" value={place} onInput={setPlace} errors={errors}
          hint={`1 to ${props.total + 1}; empty: after the last rule`} />}
        <Field label="Comment" name="comment" value={comment} onInput={setComment} errors={errors} />
      </div>
      <CondGroup group={when} label="When" prefix="" errors={errors} depth={0} fields={MAILBOX_FIELDS} onChange={setWhen} />
      <CondGroup group={except} label="Except" prefix="Except " errors={errors} depth={0} fields={MAILBOX_FIELDS} onChange={setExcept} />
      <ActionsEditor rows={acts} errors={errors} onChange={setActs} />
      <FormError errors={formLevel} />
      <div class="actions">
        <Button type="submit" kind="primary" busy={busy}>{r ? 'Save rule' : 'Create rule'}</Button>
        <Button onClick={props.onCancel} disabled={busy}>Cancel</Button>
      </div>
    </form>
  );
}

/* ---- dry run ---- */

interface TestAnswer {
  address: string;
  rules: { id: number; name: string; matched: boolean; state: string }[];
  outcome: Partial<Outcome>;
}

function DryRun(props: { base: string; mine: boolean; positions: Map<number, number> }) {
  const [message, setMessage] = useState('');
  const [address, setAddress] = useState('');
  const [run, setRun] = useState<{ n: number; body: Record<string, unknown> } | null>(null);
  const [picked, setPicked] = useState('');
  const [pickErr, setPickErr] = useState('');
  const seq = useRef(0);
  const test = useKeyed<TestAnswer | null>(JSON.stringify(run && [run.n]),
    () => (run ? api.post<TestAnswer>(`${props.base}/test`, run.body) : Promise.resolve(null)));
  const recent = useKeyed<List<QuarantineItem> | null>(props.mine ? 'recent' : 'none',
    () => (props.mine ? api.get<List<QuarantineItem>>('/api/v1/quarantine', { limit: 20 }) : Promise.resolve(null)));

  async function pick(id: string) {
    setPicked(id);
    setPickErr('');
    if (!id) return;
    try {
      const raw = await api.get<string>(`/api/v1/quarantine/${id}/raw`);
      setMessage(typeof raw === 'string' ? raw : JSON.stringify(raw));
    } catch (err) {
      setPickErr(Object.values(errorsOf(err))[0]);
    }
  }

  const panelErrors: Errors = {};
  let shown = false;
  for (const [f, msg] of Object.entries(test.errors)) if (f === 'message' || f === 'address') { panelErrors[f] = msg; shown = true; }
  const matched = test.data?.rules.filter((x) => x.matched) ?? [];
  return (
    <section class="card" aria-labelledby="dry-title">
      <h2 id="dry-title">Dry run</h2>
      <p class="muted">What would my rules do to this message? Nothing is delivered, moved or counted.</p>
      <form aria-label="Dry run" onSubmit={(e) => {
        e.preventDefault();
        const body: Record<string, unknown> = { message };
        if (address.trim()) body.address = address.trim();
        setRun({ n: ++seq.current, body });
      }}>
        {props.mine && (
          <div class="field">
            <label for="dry-pick">One of my recent (quarantined) messages</label>
            <select id="dry-pick" value={picked} onChange={(e) => pick((e.target as HTMLSelectElement).value)}>
              <option value="">— paste one below instead —</option>
              {(recent.data?.items ?? []).map((q) => (
                <option value={String(q.id)}>{`${q.created_at.slice(0, 16).replace('T', ' ')} ${q.sender || '<>'}: ${q.subject || '(no subject)'}`}</option>
              ))}
            </select>
            {pickErr && <small class="field-error" role="alert">{pickErr}</small>}
          </div>
        )}
        <Field label="Message (raw, headers and body)" name="message" value={message} multiline rows={8} errors={panelErrors}
          onInput={setMessage} placeholder={'From: someone@example.com\nSubject: hello\n\nBody text'} />
        <Field label="Recipient address" name="address" value={address} errors={panelErrors} onInput={setAddress}
          hint="empty: the owner's primary address" />
        <div class="actions">
          <Button type="submit" kind="primary" disabled={!message.trim()} busy={!!run && test.loading}>Test my rules</Button>
        </div>
      </form>
      {run && (
        <Results label="Dry run result" query={`the message, test ${run.n}`} loading={test.loading} error={test.error} errorShown={shown}
          items={test.data ? [test.data] : null} empty={null}>
          {([t]) => (
            <div class="dry-result">
              <p><strong>Outcome for {t.address}:</strong> <span class="outcome">{outcomeText(t.outcome)}</span></p>
              <p>{plural(matched.length, 'rule')} of {t.rules.length} matched{t.rules.some((x) => x.state === 'not_reached')
                ? `; ${plural(t.rules.filter((x) => x.state === 'not_reached').length, 'rule')} not reached (a rule before them ended the run)` : ''}.</p>
              {matched.length > 0 && (
                <ol class="matched" aria-label="Matching rules">
                  {matched.map((x) => <li>{`${props.positions.get(x.id) ?? '?'}. ${x.name}`}</li>)}
                </ol>
              )}
            </div>
          )}
        </Results>
      )}
    </section>
  );
}

/* ---- Sieve ---- */

function SieveCard(props: { base: string; count: number; confirm: (c: ConfirmState) => void; onDone: (msg: string) => void }) {
  const [text, setText] = useState('');
  const [mode, setMode] = useState('append');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ imported: number; total?: number; skipped: { line: number; reason: string }[] } | null>(null);

  async function exportSieve() {
    setBusy(true);
    setErrors({});
    try {
      const script = await api.get<string>(`${props.base}/sieve`);
      downloadText(String(script), 'moat-rules.sieve', 'application/sieve');
      props.onDone('Exported the rules as a Sieve script (moat-rules.sieve).');
    } catch (err) {
      setErrors(errorsOf(err));
    } finally {
      setBusy(false);
    }
  }

  function start(e: Event) {
    e.preventDefault();
    setErrors({});
    setResult(null);
    const replace = mode === 'replace';
    props.confirm({
      title: replace ? `Replace the ${plural(props.count, 'current rule')} with the Sieve script's rules?` : 'Append the Sieve script\'s rules?',
      body: (replace ? `The ${plural(props.count, 'current rule')} are removed. ` : '') +
        'What the editor cannot express is not imported and is listed after the import. Nothing changes if the script is refused.',
      action: 'Import Sieve',
      run: async () => {
        try {
          const r = await api.post<{ imported: number; total?: number; skipped: { line: number; reason: string }[] }>(
            `${props.base}/sieve`, { script: text, mode });
          setResult(r);
          setText('');
          props.onDone(`Imported ${plural(r.imported, 'rule')} from Sieve; ${plural(r.skipped?.length ?? 0, 'part')} skipped.`);
        } catch (err) {
          setErrors(errorsOf(err));
        }
      },
    });
  }

  return (
    <section class="card" aria-labelledby="sieve-title">
      <h2 id="sieve-title">Sieve</h2>
      <div class="actions">
        <Button onClick={exportSieve} busy={busy}>Download Sieve script</Button>
        <span class="muted">for a mail server that runs Sieve (RFC 5228) itself</span>
      </div>
      <form aria-label="Import Sieve" onSubmit={start}>
        <Field label="Sieve script to import" name="script" value={text} onInput={setText} errors={errors} multiline rows={6}
          hint="fileinto, redirect, keep, discard, reject, addheader and the tests the editor offers" />
        <div class="toolbar">
          <div class="field">
            <label for="sieve-file">Load a script</label>
            <input id="sieve-file" type="file" accept=".sieve,.siv,text/plain" onChange={async (e) => {
              const f = (e.target as HTMLInputElement).files?.[0];
              if (f) setText(await f.text());
            }} />
          </div>
          <Field label="Mode" name="mode" value={mode} onInput={setMode} errors={errors}
            options={[{ value: 'append', label: 'append after the current rules' }, { value: 'replace', label: 'replace the whole set' }]} />
          <Button type="submit" kind="primary" disabled={!text.trim()}>Import Sieve…</Button>
        </div>
        <FormError errors={errors} fields={['script', 'mode']} />
      </form>
      {result && (
        <div class="sieve-result" role="status">
          <p>{`Imported ${plural(result.imported, 'rule')}.`}{result.skipped.length === 0 ? ' Nothing was skipped.' : ''}</p>
          {result.skipped.length > 0 && (
            <div class="table-wrap">
              <table aria-label="Not imported">
                <caption>Not imported ({result.skipped.length})</caption>
                <thead><tr><th scope="col" class="num">Line</th><th scope="col">Why</th></tr></thead>
                <tbody>{result.skipped.map((s) => <tr><td class="num">{s.line}</td><td>{s.reason}</td></tr>)}</tbody>
              </table>
            </div>
          )}
        </div>
      )}
    </section>
  );
}

/* ---- the page ---- */

export function MailboxRulesPage(props: { path: string }) {
  const owner = rulesOwner(props.path);
  if (!owner) return <section><h1>Page not found</h1></section>;
  return <RulesOf key={owner.base} {...owner} />;
}

function RulesOf(props: { base: string; title: string; mine: boolean }) {
  const { base } = props;
  const all = useKeyed<List<MailboxRule>>(`${base} all`, () => api.get<List<MailboxRule>>(base));
  const [form, setForm] = useState({ q: '', enabled: '', folder: '' });
  const [applied, setApplied] = useState({ q: '', enabled: '', folder: '' });
  const server = applied.q !== '' || applied.enabled !== '';
  const match = useKeyed<List<MailboxRule> | null>(`${base} ${applied.q} ${applied.enabled}`,
    () => (server ? api.get<List<MailboxRule>>(base, { q: applied.q, enabled: applied.enabled }) : Promise.resolve(null)));
  const [page, setPage] = useState(0);
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [editing, setEditing] = useState<{ rule: MailboxRule | null; n: number } | null>(null);
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const [notice, setNotice] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [moving, setMoving] = useState<number | null>(null);
  const [moveTo_, setMoveTo] = useState('');
  const [dragId, setDragId] = useState<number | null>(null);
  const [applyResult, setApplyResult] = useState<Record<string, unknown> | null>(null);
  const editSeq = useRef(0);
  const focusAfter = useRef<{ id: number; dir: number } | null>(null);

  const rules = all.data?.items ?? null;
  const ids = rules?.map((r) => r.id) ?? [];
  const positions = new Map(ids.map((id, i) => [id, i + 1]));
  const matchIds = match.data ? new Set(match.data.items.map((r) => r.id)) : null;
  const visible = rules ? byFolder(rules.filter((r) => !matchIds || matchIds.has(r.id)), applied.folder) : null;
  const pages = visible ? Math.max(1, Math.ceil(visible.length / PAGE)) : 1;
  const pageNow = Math.min(page, pages - 1);
  const shown = visible?.slice(pageNow * PAGE, pageNow * PAGE + PAGE) ?? null;
  const loading = all.loading || match.loading;
  const describe = [
    applied.q ? `rules matching “${applied.q}”` : 'all rules',
    applied.enabled === 'true' ? 'enabled' : applied.enabled === 'false' ? 'disabled' : '',
    applied.folder ? `folder “${applied.folder}”` : '',
  ].filter(Boolean).join(', ');

  useEffect(() => {
    if (!shown || !focusAfter.current) return;
    const { id, dir } = focusAfter.current;
    focusAfter.current = null;
    const b = document.querySelectorAll<HTMLButtonElement>(`li.mb-rule[data-id="${id}"] .moves button`);
    const want = b[dir < 0 ? 0 : 1];
    if (want && !want.disabled) want.focus();
    else b[dir < 0 ? 1 : 0]?.focus();
  }, [all.data]);

  function reload() {
    all.reload();
    match.reload();
  }

  async function reorder(order: number[], moved: MailboxRule, dir = 0) {
    if (order.every((x, i) => x === ids[i])) return;
    setBusy(true);
    setError('');
    try {
      await api.put(`${base}/order`, { ids: order });
      setNotice(`Order saved: “${moved.name}” is now rule ${order.indexOf(moved.id) + 1} of ${order.length}.`);
      focusAfter.current = dir ? { id: moved.id, dir } : null;
      /* keep the moved rule on screen: the page of the filtered view it lands on */
      const vis = visible ? order.filter((x) => visible.some((v) => v.id === x)) : [];
      const at = vis.indexOf(moved.id);
      if (at >= 0) setPage(Math.floor(at / PAGE));
      reload();
    } catch (err) {
      setError(Object.values(errorsOf(err))[0]);
      reload();
    } finally {
      setBusy(false);
      setMoving(null);
    }
  }

  async function toggle(r: MailboxRule) {
    setBusy(true);
    setError('');
    try {
      await api.patch(`${base}/${r.id}`, { enabled: !r.enabled });
      setNotice(`“${r.name}” ${r.enabled ? 'disabled' : 'enabled'}.`);
      reload();
    } catch (err) {
      setError(Object.values(errorsOf(err))[0]);
    } finally {
      setBusy(false);
    }
  }

  async function duplicate(r: MailboxRule) {
    setBusy(true);
    setError('');
    try {
      const c = await api.post<MailboxRule>(`${base}/${r.id}/duplicate`);
      setNotice(`“${r.name}” duplicated as “${c.name}”, right after it.`);
      reload();
    } catch (err) {
      setError(Object.values(errorsOf(err))[0]);
    } finally {
      setBusy(false);
    }
  }

  function bulk(op: 'enable' | 'disable' | 'delete') {
    const chosen = ids.filter((id) => selected.has(id));
    const n = chosen.length;
    const verb = op === 'delete' ? 'Delete' : op === 'enable' ? 'Enable' : 'Disable';
    setConfirm({
      title: `${verb} ${plural(n, 'rule')}?`,
      body: op === 'delete'
        ? `${plural(n, 'rule')} of ${ids.length} and their hit counts are removed; the others keep their order.`
        : `${plural(n, 'rule')} of ${ids.length} will be ${op === 'enable' ? 'enabled' : 'disabled'}.`,
      action: `${verb} ${plural(n, 'rule')}`,
      run: async () => {
        const r = await api.post<{ changed: number }>(`${base}/bulk`, { ids: chosen, op });
        setNotice(`${verb}d ${plural(r.changed, 'rule')}.`);
        setSelected(new Set());
        reload();
      },
    });
  }

  function applyQuarantine() {
    setConfirm({
      title: 'Apply my rules to my quarantined mail now?',
      body: 'Each quarantined message my rules would deliver is released (to its folder), each one they would discard is deleted; the rest stay.',
      action: 'Apply now',
      run: async () => {
        const r = await api.post<Record<string, unknown>>(`${base}/apply-quarantine`);
        setApplyResult(r);
        setNotice('Rules applied to the quarantine.');
      },
    });
  }

  const allShownSelected = !!visible && visible.length > 0 && visible.every((r) => selected.has(r.id));
  const nSel = ids.filter((id) => selected.has(id)).length;

  return (
    <section class="mailbox-rules">
      <PageTitle>{props.title}</PageTitle>
      <p class="muted">Run in order on every message to {props.mine && props.title === 'My rules' ? 'my addresses' : 'this owner\'s addresses'}, after
        the server's rules; a rule's actions run in order until one ends the run. Use ↑ and ↓ (or drag a rule) to change the order.</p>
      {props.mine && props.title === 'My rules' && (
        <GroupPicker />
      )}
      <div class="toolbar">
        <Button kind="primary" onClick={() => setEditing({ rule: null, n: ++editSeq.current })}>New rule</Button>
        <Button onClick={reload}>Reload</Button>
        <Button onClick={applyQuarantine}>Apply to my quarantined mail now…</Button>
      </div>
      {notice && <p class="notice" role="status">{notice}</p>}
      {error && <p class="error" role="alert">{error}</p>}
      {applyResult && (
        <p class="notice" role="status" aria-label="Quarantine applied">{Object.entries(applyResult)
          .filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v}`).join(', ') || 'done'}</p>
      )}
      {editing && (
        <RuleEditor key={editing.n} base={base} rule={editing.rule} total={ids.length} stored={rules?.map((x) => x.position) ?? []} onCancel={() => setEditing(null)}
          onSaved={(s) => {
            setEditing(null);
            setNotice(`Rule “${s.name}” saved.`);
            reload();
          }} />
      )}
      <form class="toolbar filters" aria-label="Search rules" onSubmit={(e) => {
        e.preventDefault();
        setApplied({ ...form });
        setPage(0);
      }}>
        <Field label="Search" name="q" value={form.q} onInput={(v) => setForm({ ...form, q: v })} errors={match.errors}
          placeholder="name, comment or value" />
        <Field label="Folder" name="folder" value={form.folder} onInput={(v) => setForm({ ...form, folder: v })} placeholder="Ships" />
        <Field label="State" name="enabled" value={form.enabled} onInput={(v) => setForm({ ...form, enabled: v })}
          options={[{ value: '', label: 'all' }, { value: 'true', label: 'enabled' }, { value: 'false', label: 'disabled' }]} />
        <Button type="submit">Search</Button>
      </form>
      <div class="toolbar bulk" role="group" aria-label="Selected rules">
        <label class="check"><input type="checkbox" checked={allShownSelected} disabled={!visible || visible.length === 0}
          onChange={(e) => {
            const on = (e.target as HTMLInputElement).checked;
            const s = new Set(selected);
            for (const r of visible ?? []) on ? s.add(r.id) : s.delete(r.id);
            setSelected(s);
          }} /> {`select all ${visible?.length ?? 0} found`}</label>
        <span>{`${nSel} selected`}</span>
        <Button disabled={nSel === 0} onClick={() => bulk('enable')}>Enable…</Button>
        <Button disabled={nSel === 0} onClick={() => bulk('disable')}>Disable…</Button>
        <Button kind="danger" disabled={nSel === 0} onClick={() => bulk('delete')}>Delete…</Button>
      </div>
      <Results label="Rules" query={describe} page={pageNow} loading={loading} error={all.error || match.error} items={shown}
        empty={<p class="muted empty">{rules && rules.length === 0 ? 'No rules yet: every message goes to the inbox.' : 'No rule matches.'}</p>}>
        {(items) => (
          <>
            <p class="muted small">{`${visible!.length} of ${plural(ids.length, 'rule')}`}</p>
            <ol class="mb-rules">
              {items.map((r) => {
                const pos = positions.get(r.id)!;
                const vis = visible!.map((x) => x.id);
                const vi = vis.indexOf(r.id);
                return (
                  <li key={r.id} data-id={r.id} class={'mb-rule' + (r.enabled ? '' : ' disabled-rule') + (dragId === r.id ? ' dragging' : '')}
                    draggable={!busy}
                    onDragStart={(e) => { e.dataTransfer?.setData('text/plain', String(r.id)); setDragId(r.id); }}
                    onDragOver={(e) => e.preventDefault()}
                    onDrop={(e) => {
                      e.preventDefault();
                      const id = Number(e.dataTransfer?.getData('text/plain') || dragId);
                      setDragId(null);
                      const m = rules!.find((x) => x.id === id);
                      if (m) void reorder(moveTo(ids, id, pos - 1), m);
                    }}
                    onDragEnd={() => setDragId(null)}>
                    <div class="mb-head">
                      <label class="check"><input type="checkbox" checked={selected.has(r.id)} aria-label={`Select ${r.name}`}
                        onChange={(e) => {
                          const s = new Set(selected);
                          (e.target as HTMLInputElement).checked ? s.add(r.id) : s.delete(r.id);
                          setSelected(s);
                        }} /></label>
                      <span class="pos" aria-label={`position ${pos}`}>{pos}.</span>
                      <strong class="mb-name">{r.name}</strong>
                      {!r.enabled && <span class="badge">disabled</span>}
                    </div>
                    <div class="summary">{mailboxSummary(r)}</div>
                    <div class="muted small">{`${plural(r.hits, 'hit')}, last ${fmtTime(r.last_hit ? r.last_hit * (r.last_hit < 1e12 ? 1000 : 1) : null)}`}
                      {r.comment ? ` — ${r.comment}` : ''}</div>
                    <div class="actions row-actions">
                      <span class="moves">
                        <Button label={`Move ${r.name} up`} disabled={vi === 0 || busy}
                          onClick={() => reorder(moveAmong(ids, vis, r.id, -1), r, -1)}>↑</Button>
                        <Button label={`Move ${r.name} down`} disabled={vi === vis.length - 1 || busy}
                          onClick={() => reorder(moveAmong(ids, vis, r.id, 1), r, 1)}>↓</Button>
                      </span>
                      <Button label={`Move ${r.name} to a position`} onClick={() => { setMoving(moving === r.id ? null : r.id); setMoveTo(String(pos)); }}>
                        Move to…</Button>
                      <Button label={`Edit ${r.name}`} onClick={() => setEditing({ rule: r, n: ++editSeq.current })}>Edit</Button>
                      <Button label={`Duplicate ${r.name}`} disabled={busy} onClick={() => duplicate(r)}>Duplicate</Button>
                      <Button label={`${r.enabled ? 'Disable' : 'Enable'} ${r.name}`} disabled={busy} onClick={() => toggle(r)}>
                        {r.enabled ? 'Disable' : 'Enable'}</Button>
                      <Button kind="danger" label={`Delete ${r.name}`} onClick={() => setConfirm({
                        title: `Delete rule “${r.name}”?`,
                        body: `This removes 1 rule (“${r.name}”, rule ${pos} of ${ids.length}, ${plural(r.hits, 'hit')}); the rules after it move up one place.`,
                        action: 'Delete 1 rule',
                        run: async () => {
                          await api.del(`${base}/${r.id}`);
                          setNotice(`Rule “${r.name}” deleted.`);
                          if (editing?.rule?.id === r.id) setEditing(null);
                          reload();
                        },
                      })}>Delete</Button>
                    </div>
                    {moving === r.id && (
                      <form class="toolbar" aria-label={`Move ${r.name}`} onSubmit={(e) => {
                        e.preventDefault();
                        void reorder(moveToPosition(ids, r.id, Number(moveTo_)), r);
                      }}>
                        <Field label={`New position (1 to ${ids.length})`} name="moveto" type="number" value={moveTo_} onInput={setMoveTo} />
                        <Button type="submit" kind="primary" busy={busy}>Move</Button>
                      </form>
                    )}
                  </li>
                );
              })}
            </ol>
          </>
        )}
      </Results>
      <nav class="pager" aria-label="Rules pages">
        <Button onClick={() => setPage(Math.max(0, pageNow - 1))} disabled={pageNow === 0 || loading}>‹ Previous</Button>
        <span aria-live="polite">{`Page ${pageNow + 1} of ${pages}`}</span>
        <Button onClick={() => setPage(Math.min(pages - 1, pageNow + 1))} disabled={pageNow >= pages - 1 || loading}>Next ›</Button>
      </nav>
      <DryRun base={base} mine={props.mine} positions={positions} />
      <ImportExport count={ids.length} confirm={setConfirm} exportPath={`${base}/export`} importPath={`${base}/import`}
        filename="moat-mailbox-rules.json" onDone={(msg) => { setNotice(msg); reload(); }} />
      <SieveCard base={base} count={ids.length} confirm={setConfirm} onDone={(msg) => { setNotice(msg); reload(); }} />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}

/* A group manager opens a group's set by its address (the server answers 404 outside their groups). */
function GroupPicker() {
  const [g, setG] = useState('');
  return (
    <form class="toolbar" aria-label="Rules of a group I manage" onSubmit={(e) => {
      e.preventDefault();
      if (g.trim()) navigate(`/my/rules/groups/${encodeURIComponent(g.trim().toLowerCase())}`);
    }}>
      <Field label="A group I manage" name="group" value={g} onInput={setG} placeholder="fleet@example.org" />
      <Button type="submit">Open its rules</Button>
      <Link href="/my/rules">My own rules</Link>
    </form>
  );
}
