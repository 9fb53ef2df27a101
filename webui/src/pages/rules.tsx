// Server rules (/api/v1/rules, docs/rules.md): the ordered set with hit counts,
// enable/disable in place, reorder by drag and drop or by Move up / Move down
// (both send the whole order), delete after a confirmation; an editor that builds
// the condition tree from rows and nested all-of / any-of groups (no syntax to
// type) with the action and its parameters; a dry run of a pasted message or of
// the last queued messages against the saved rules or the rule being edited;
// import and export of the whole set as JSON.
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type List, type Rule, type RuleTestResult } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, PageTitle, plural,
  Results, useKeyed,
} from '../ui';
import {
  ACTIONS, actionForm, actionFromForm, type ActionForm, condFromRoot, errorKey, type GroupState,
  moveBy, moveTo, newGroup, newRow, type PathMap, pointsText, rootFromCond, type RuleBody, ruleSummary, splitRecipients,
} from '../rules';
import { CondGroup, ImportExport } from '../rule-ui';

/* ---- the rule editor ---- */

export interface Built {
  body: RuleBody;
  map: PathMap;
}

function RuleEditor(props: {
  rule: Rule | null; rules: Rule[]; extErrors: Errors;
  onSaved: (r: Rule) => void; onCancel: () => void; onTest: (b: Built) => void;
}) {
  const r = props.rule;
  const [name, setName] = useState(r?.name ?? '');
  const [enabled, setEnabled] = useState(r?.enabled ?? true);
  const [comment, setComment] = useState(r?.comment ?? '');
  const [when, setWhen] = useState<GroupState>(() => (r ? rootFromCond(r.when) : newGroup('all', [newRow()])));
  const [except, setExcept] = useState<GroupState>(() => rootFromCond(r?.except ?? null));
  const [action, setAction] = useState<ActionForm>(() => actionForm(r?.action));
  const [place, setPlace] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    heading.current?.focus();
  }, []);
  const title = r ? `Edit rule “${r.name}”` : 'New rule';
  const shown = { ...props.extErrors, ...errors };

  function build(): Built {
    const map: PathMap = {};
    const body: RuleBody = {
      name, enabled, comment,
      when: condFromRoot(when, 'rule.when', map, false)!,
      except: condFromRoot(except, 'rule.except', map, true),
      action: actionFromForm(action),
    };
    return { body, map };
  }

  async function submit(e: Event) {
    e.preventDefault();
    const { body, map } = build();
    setBusy(true);
    setErrors({});
    try {
      let saved: Rule;
      if (r) saved = await api.put<Rule>(`/api/v1/rules/${r.id}`, body);
      else saved = await api.post<Rule>('/api/v1/rules', place === '' ? body : { ...body, position: Number(place) });
      props.onSaved(saved);
    } catch (err) {
      const ers = errorsOf(err);
      const [[field, msg]] = Object.entries(ers);
      const k = errorKey(field === '_' ? null : field, map);
      setErrors(k ? { [k]: msg } : ers);
    } finally {
      setBusy(false);
    }
  }

  const params = ACTIONS.find((a) => a.value === action.type)?.params ?? [];
  const setA = (k: keyof ActionForm) => (v: string) => setAction({ ...action, [k]: v });
  const reply = action.type === 'refuse' || action.type === 'defer';
  const known = ['name', 'comment', 'enabled', 'action.type', 'action.code', 'action.enhanced', 'action.text',
    'action.subject_prefix', 'action.header', 'action.address', 'action.points'];
  const formLevel: Errors = {};
  for (const [k, v] of Object.entries(shown)) if (k === '_' || (!known.includes(k) && !/^\d+(\.|$)/.test(k))) formLevel[k] = v;
  return (
    <form class="card rule-editor" aria-label={title} onSubmit={submit}>
      <h2 tabIndex={-1} ref={heading}>{title}</h2>
      <div class="form-grid">
        <Field label="Rule name" name="name" value={name} onInput={setName} errors={shown} required />
        <div class="field">
          <span class="label-like">State</span>
          <label class="check"><input type="checkbox" checked={enabled} onChange={(e) => setEnabled((e.target as HTMLInputElement).checked)} /> enabled</label>
        </div>
        {!r && (
          <Field label="Place" name="position" value={place} onInput={setPlace} errors={shown}
            options={[{ value: '', label: 'after the last rule' }, ...props.rules.map((x) => ({ value: String(x.position), label: `before ${x.position + 1}. ${x.name}` }))]} />
        )}
        <Field label="Comment" name="comment" value={comment} onInput={setComment} errors={shown} />
      </div>
      <CondGroup group={when} label="When" prefix="" errors={shown} depth={0} onChange={setWhen} />
      <CondGroup group={except} label="Except" prefix="Except " errors={shown} depth={0} onChange={setExcept} />
      <fieldset class="cond-group action">
        <legend>Then</legend>
        <div class="form-grid">
          <Field label="Action" name="action.type" value={action.type} onInput={setA('type')} errors={shown}
            options={ACTIONS.map((a) => ({ value: a.value, label: a.label }))} />
          {params.includes('code') && <Field label="Reply code" name="action.code" value={action.code} onInput={setA('code')} errors={shown}
            placeholder={action.type === 'defer' ? '451' : '550'} />}
          {params.includes('enhanced') && <Field label="Enhanced status code" name="action.enhanced" value={action.enhanced}
            onInput={setA('enhanced')} errors={shown} placeholder={action.type === 'defer' ? '4.7.1' : '5.7.1'} />}
          {params.includes('text') && <Field label="Reply text" name="action.text" value={action.text} onInput={setA('text')} errors={shown}
            placeholder={action.type === 'defer' ? 'Try again later' : 'Message refused by policy'} />}
          {params.includes('subject_prefix') && <Field label="Subject prefix" name="action.subject_prefix" value={action.subject_prefix}
            onInput={setA('subject_prefix')} errors={shown} placeholder="[SPAM] " />}
          {params.includes('header') && <Field label="Header to add" name="action.header" value={action.header} onInput={setA('header')}
            errors={shown} placeholder="X-Moat-Rule: listed" />}
          {params.includes('address') && <Field label="Address" name="action.address" value={action.address} onInput={setA('address')}
            errors={shown} placeholder="helpdesk@example.org" />}
          {params.includes('points') && <Field label="Points" name="action.points" value={action.points} onInput={setA('points')}
            errors={shown} placeholder="+2.5 or -1" hint="Added to the spam score of each recipient the rule matches (not 0, at most 1000 either way)." />}
        </div>
        {reply && <p class="hint">Empty fields take the defaults shown.</p>}
      </fieldset>
      <FormError errors={formLevel} />
      <div class="actions">
        <Button type="submit" kind="primary" busy={busy}>{r ? 'Save rule' : 'Create rule'}</Button>
        <Button onClick={() => props.onTest(build())} disabled={busy}>Test this rule</Button>
        <Button onClick={props.onCancel} disabled={busy}>Cancel</Button>
      </div>
    </form>
  );
}

/* ---- dry run ---- */

interface DryInput {
  message: string;
  sender: string;
  recipients: string;
  client_address: string;
  last: string;
}

interface DryRun {
  n: number;
  what: string;
  body: Record<string, unknown>;
  map: PathMap | null; /* set when the rule being edited is tested */
  editor: number | null; /* which editor (its key) asked */
}

function ruleRef(x: { index: number; name: string } | null): string {
  return x ? `${x.index + 1}. ${x.name}` : '—';
}

function outcome(o: RuleTestResult['recipients'][number]): string {
  const parts: string[] = [o.action];
  if (o.code) parts.push(String(o.code));
  if (o.enhanced) parts.push(o.enhanced);
  if (o.text) parts.push(`“${o.text}”`);
  if (o.address) parts.push(`→ ${o.address}`);
  return parts.join(' ');
}

function extras(o: RuleTestResult['recipients'][number]): string {
  const parts: string[] = [];
  if (o.subject_prefixes?.length) parts.push(`subject prefix ${o.subject_prefixes.map((s) => `“${s}”`).join(' ')}`);
  if (o.headers?.length) parts.push(`headers ${o.headers.join('; ')}`);
  if (o.bcc?.length) parts.push(`copies to ${o.bcc.join(', ')}`);
  if (o.points) parts.push(`score ${pointsText(o.points)}`);
  return parts.join('; ');
}

function DryRunResults(props: { items: RuleTestResult[] }) {
  return (
    <>
      {props.items.map((m, i) => {
        const title = `Message ${i + 1}${m.qid ? ` (${m.qid})` : ''}: ${m.subject ?? '(no subject)'}`;
        return (
          <div class="table-wrap dry-message">
            <table class="dryrun" aria-label={title}>
              <caption>{title}{m.mime_flags?.length ? <span class="muted"> — flags {m.mime_flags.join(', ')}</span> : null}</caption>
              <thead><tr><th scope="col">Recipient</th><th scope="col">Action</th><th scope="col">Deciding rule</th>
                <th scope="col">Tags and copies</th><th scope="col">Matched rules</th></tr></thead>
              <tbody>{m.recipients.map((o, j) => (
                <tr>
                  <td class="mono">{o.recipient}</td>
                  <td><span class={`verdict ${o.action === 'refuse' || o.action === 'discard' ? 'refused' : o.action === 'deliver' || o.action === 'accept' ? 'accepted' : 'deferred'}`}>{outcome(o)}</span></td>
                  <td>{ruleRef(o.rule)}</td>
                  <td>{extras(o) || '—'}</td>
                  {j === 0 && <td rowSpan={m.recipients.length}>{m.matched.length === 0 ? 'none' : m.matched.map(ruleRef).join(', ')}</td>}
                </tr>
              ))}</tbody>
            </table>
          </div>
        );
      })}
    </>
  );
}

/* ---- the page ---- */

export function RulesPage() {
  const list = useKeyed<List<Rule>>('rules', () => api.get<List<Rule>>('/api/v1/rules'));
  const rules = list.data?.items ?? null;
  const [editing, setEditing] = useState<{ rule: Rule | null; n: number } | null>(null);
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const [notice, setNotice] = useState('');
  const [error, setError] = useState('');
  const [orderBusy, setOrderBusy] = useState(false);
  const [toggling, setToggling] = useState<number | null>(null);
  const [dragId, setDragId] = useState<number | null>(null);
  const [dropAt, setDropAt] = useState<number | null>(null);
  const focusAfter = useRef<{ id: number; dir: number } | null>(null);
  const editSeq = useRef(0);
  const [dry, setDry] = useState<DryInput>({ message: '', sender: '', recipients: '', client_address: '', last: '10' });
  const [run, setRun] = useState<DryRun | null>(null);
  const seq = useRef(0);
  const test = useKeyed<{ results: RuleTestResult[] } | null>(JSON.stringify(run && [run.n, run.body]),
    () => (run ? api.post<{ results: RuleTestResult[] }>('/api/v1/rules/test', run.body) : Promise.resolve(null)));
  const dryRef = useRef<HTMLElement>(null);

  /* back on the moved row's button once the reloaded list is drawn */
  useEffect(() => {
    if (!rules || !focusAfter.current) return;
    const { id, dir } = focusAfter.current;
    focusAfter.current = null;
    const moves = document.querySelectorAll<HTMLButtonElement>(`table.rules tr[data-id="${id}"] td.actions button`);
    const want = moves[dir < 0 ? 0 : 1];
    if (want && !want.disabled) want.focus();
    else moves[dir < 0 ? 1 : 0]?.focus();
  }, [rules]);

  async function reorder(ids: number[], moved: Rule, dir?: number) {
    if (!rules || ids.every((x, i) => x === rules[i].id)) return;
    setOrderBusy(true);
    setError('');
    try {
      await api.put('/api/v1/rules/order', { ids });
      setNotice(`Order saved: “${moved.name}” is now rule ${ids.indexOf(moved.id) + 1} of ${ids.length}.`);
      focusAfter.current = dir ? { id: moved.id, dir } : null;
      list.reload();
    } catch (err) {
      setError(Object.values(errorsOf(err))[0]);
      list.reload();
    } finally {
      setOrderBusy(false);
    }
  }

  async function toggle(r: Rule, on: boolean) {
    setToggling(r.id);
    setError('');
    try {
      await api.patch(`/api/v1/rules/${r.id}`, { enabled: on });
      setNotice(`“${r.name}” ${on ? 'enabled' : 'disabled'}.`);
      list.reload();
    } catch (err) {
      setError(Object.values(errorsOf(err))[0]);
    } finally {
      setToggling(null);
    }
  }

  function dryBody(): Record<string, unknown> {
    const b: Record<string, unknown> = { message: dry.message };
    if (dry.sender.trim()) b.sender = dry.sender.trim();
    const rc = splitRecipients(dry.recipients);
    if (rc.length) b.recipients = rc;
    if (dry.client_address.trim()) b.client_address = dry.client_address.trim();
    return b;
  }
  function startRun(what: string, body: Record<string, unknown>, map: PathMap | null, editor: number | null = null) {
    setRun({ n: ++seq.current, what, body, map, editor });
    dryRef.current?.scrollIntoView({ block: 'start' });
  }
  const lastN = dry.last.trim() || '10';

  /* dry-run errors: next to the panel's inputs, or in the editor when they name the tested rule */
  const testErrors = test.errors;
  const panelFields = ['message', 'sender', 'recipients', 'client_address', 'last'];
  const editorErrors: Errors = {};
  const panelErrors: Errors = {};
  let errorShown = false;
  for (const [f, msg] of Object.entries(testErrors)) {
    const base = f.replace(/\[\d+\].*$/, ''); /* "recipients[1]" is the Recipients box */
    if (panelFields.includes(base)) {
      panelErrors[base] = msg;
      errorShown = true;
    } else if (run?.map && run.editor === editing?.n) {
      const k = errorKey(f, run.map);
      if (k) editorErrors[k] = msg;
    }
  }

  const rows = (items: Rule[]): JSX.Element => (
    <div class="table-wrap">
      <table class="rules">
        <thead><tr>
          <th scope="col" class="num">#</th><th scope="col">Name</th><th scope="col">Enabled</th><th scope="col">Condition → action</th>
          <th scope="col" class="num">Hits</th><th scope="col">Last hit</th><th scope="col">Actions</th>
        </tr></thead>
        <tbody>{items.map((r, i) => (
          <tr key={r.id} data-id={r.id} draggable={!orderBusy}
            class={(dragId === r.id ? 'dragging ' : '') + (dropAt === i && dragId !== r.id ? 'drop-target' : '') + (r.enabled ? '' : ' disabled-rule')}
            onDragStart={(e) => {
              e.dataTransfer?.setData('text/plain', String(r.id));
              if (e.dataTransfer) e.dataTransfer.effectAllowed = 'move';
              setDragId(r.id);
            }}
            onDragOver={(e) => {
              e.preventDefault();
              if (e.dataTransfer) e.dataTransfer.dropEffect = 'move';
              if (dropAt !== i) setDropAt(i);
            }}
            onDragLeave={() => setDropAt((d) => (d === i ? null : d))}
            onDrop={(e) => {
              e.preventDefault();
              const id = Number(e.dataTransfer?.getData('text/plain') || dragId);
              setDragId(null);
              setDropAt(null);
              const moved = items.find((x) => x.id === id);
              if (moved) void reorder(moveTo(items.map((x) => x.id), id, i), moved);
            }}
            onDragEnd={() => { setDragId(null); setDropAt(null); }}>
            <td class="num"><span class="drag-handle" aria-hidden="true" title="Drag to reorder">⠿</span> {i + 1}</td>
            <td>{r.name}{r.comment && <div class="muted small">{r.comment}</div>}</td>
            <td><label class="check"><input type="checkbox" checked={r.enabled} disabled={toggling === r.id}
              aria-label={`Enabled: ${r.name}`} onChange={(e) => toggle(r, (e.target as HTMLInputElement).checked)} />
              {r.enabled ? 'yes' : 'no'}</label></td>
            <td class="summary">{ruleSummary(r)}</td>
            <td class="num hits">{r.hits}</td>
            <td>{fmtTime(r.last_hit)}</td>
            <td class="actions">
              <Button label={`Move ${r.name} up`} disabled={i === 0 || orderBusy}
                onClick={() => reorder(moveBy(items.map((x) => x.id), r.id, -1), r, -1)}>↑</Button>
              <Button label={`Move ${r.name} down`} disabled={i === items.length - 1 || orderBusy}
                onClick={() => reorder(moveBy(items.map((x) => x.id), r.id, 1), r, 1)}>↓</Button>
              <Button label={`Edit ${r.name}`} onClick={() => setEditing({ rule: r, n: ++editSeq.current })}>Edit</Button>
              <Button kind="danger" label={`Delete ${r.name}`} onClick={() => setConfirm({
                title: `Delete rule “${r.name}”?`,
                body: `This removes 1 rule (“${r.name}”, rule ${i + 1} of ${items.length}, ${plural(r.hits, 'hit')}); the rules after it move up one place.`,
                action: 'Delete 1 rule',
                run: async () => {
                  await api.del(`/api/v1/rules/${r.id}`);
                  setNotice(`Rule “${r.name}” deleted.`);
                  if (editing?.rule?.id === r.id) setEditing(null);
                  list.reload();
                },
              })}>Delete</Button>
            </td>
          </tr>
        ))}</tbody>
      </table>
    </div>
  );

  return (
    <section>
      <PageTitle>Server rules</PageTitle>
      <p class="muted">Tried in order on every message; the first rule with a final action decides. Drag a row, or use ↑ and ↓, to change the order.</p>
      <div class="toolbar">
        <Button kind="primary" onClick={() => setEditing({ rule: null, n: ++editSeq.current })}>New rule</Button>
        <Button onClick={list.reload}>Reload</Button>
      </div>
      {notice && <p class="notice" role="status">{notice}</p>}
      {error && <p class="error" role="alert">{error}</p>}
      <div class="rules-list">
        <Results label="Rules" query="all rules in evaluation order" loading={list.loading} error={list.error} items={rules}
          empty={<p class="muted empty">No rules yet: every message goes on to delivery.</p>}>
          {rows}
        </Results>
      </div>
      {editing && (
        <RuleEditor key={editing.n} rule={editing.rule} rules={rules ?? []} extErrors={editorErrors}
          onCancel={() => setEditing(null)}
          onSaved={(saved) => {
            setEditing(null);
            setNotice(`Rule “${saved.name}” saved.`);
            list.reload();
          }}
          onTest={(b) => startRun(
            `the ${dry.message ? 'pasted message' : 'message'} against the rule being edited (“${b.body.name || 'unnamed'}”)`,
            { ...dryBody(), rules: [{ ...b.body, enabled: true }] }, b.map, editing.n)} />
      )}
      <section class="card" aria-labelledby="dry-title" ref={dryRef}>
        <h2 id="dry-title">Dry run</h2>
        <p class="muted">Nothing is delivered, refused or counted.</p>
        <form aria-label="Dry run" onSubmit={(e) => {
          e.preventDefault();
          startRun('the pasted message against the saved rules', dryBody(), null);
        }}>
          <Field label="Message (raw, headers and body)" name="message" value={dry.message} multiline rows={8}
            errors={panelErrors} onInput={(v) => setDry({ ...dry, message: v })} placeholder={'Subject: hello\n\nBody text'} />
          <div class="field">
            <label for="dry-file">Load a message file</label>
            <input id="dry-file" type="file" accept=".eml,message/rfc822,text/plain" onChange={async (e) => {
              const f = (e.target as HTMLInputElement).files?.[0];
              if (f) setDry({ ...dry, message: await f.text() });
            }} />
          </div>
          <div class="form-grid">
            <Field label="Sender" name="sender" value={dry.sender} errors={panelErrors} onInput={(v) => setDry({ ...dry, sender: v })}
              placeholder="empty: the null sender <>" />
            <Field label="Recipients" name="recipients" value={dry.recipients} errors={panelErrors} multiline rows={2}
              onInput={(v) => setDry({ ...dry, recipients: v })} hint="comma or line separated; empty: postmaster of the first local domain" />
            <Field label="Client address" name="client_address" value={dry.client_address} errors={panelErrors}
              onInput={(v) => setDry({ ...dry, client_address: v })} placeholder="127.0.0.1" />
          </div>
          <div class="actions">
            <Button type="submit" kind="primary" busy={!!run && test.loading && !run.map && !('last' in run.body)}>Test against saved rules</Button>
          </div>
        </form>
        <form class="toolbar" aria-label="Dry run over the queue" onSubmit={(e) => {
          e.preventDefault();
          startRun(`the last ${lastN} queued messages against the saved rules`, { last: /^\d+$/.test(lastN) ? Number(lastN) : lastN }, null);
        }}>
          <Field label="Queued messages" name="last" type="number" value={dry.last} errors={panelErrors}
            onInput={(v) => setDry({ ...dry, last: v })} hint="1 to 100, newest first" />
          <Button type="submit" busy={!!run && test.loading && 'last' in run.body}>{`Run over the last ${lastN} queued messages`}</Button>
        </form>
        {run && (
          <Results label="Dry run results" query={run.what} loading={test.loading} error={test.error} errorShown={errorShown}
            items={test.data?.results ?? null} empty={<p class="muted empty">No message to test (the queue is empty).</p>}>
            {(items) => <DryRunResults items={items} />}
          </Results>
        )}
      </section>
      <ImportExport count={rules?.length ?? 0} confirm={setConfirm} exportPath="/api/v1/rules/export"
        importPath="/api/v1/rules/import" filename="moat-rules.json"
        onDone={(msg) => { setNotice(msg); list.reload(); }} />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
