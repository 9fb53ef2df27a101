// The quarantine (/api/v1/quarantine): administrators see every item
// (/quarantine), end users the items of their own addresses and of the groups
// they manage (/my/quarantine: the server applies that scope to every query,
// so both pages share this code). A filter bar, columns sorted by the server,
// cursor paging; a preview pane with the decoded headers, the text part, the
// sanitised HTML part in an <iframe sandbox> (no scripts, an opaque origin)
// and the raw message to download; release, delete, release + allow sender
// and delete + block sender on one item, on the selected items, or on
// everything the filter matches after a dialog that names the count the
// server gives (/quarantine/count). Every text that comes from a message
// (sender, subject, headers, parts) is rendered as text, never as markup.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, type Session } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, errorsOf, Field, FormError, Link, Loading, PageTitle, Pager, plural, Results, usePaged,
} from '../ui';
import {
  bulkFilterBody, DEFAULT_SORT, describeQFilter, EMPTY_QFILTER, filterParams, fmtZoned, hasFilter, idsBody, nextSort,
  pageOf, QUARANTINE_KINDS, type QuarantineDetail, type QuarantineFilter, type QuarantineItem, type QuarantineResult,
  qFilterFromSearch, releaseKinds, type Sort, type SortKey,
} from '../quarantine';
import { LearnButtons } from '../learn';

type Op = 'release' | 'release_allow' | 'delete' | 'delete_block';

const OPS: { op: Op; label: string; verb: string; kind: 'plain' | 'danger' }[] = [
  { op: 'release', label: 'Release', verb: 'Release', kind: 'plain' },
  { op: 'release_allow', label: 'Release + allow sender', verb: 'Release', kind: 'plain' },
  { op: 'delete', label: 'Delete', verb: 'Delete', kind: 'danger' },
  { op: 'delete_block', label: 'Delete + block sender', verb: 'Delete', kind: 'danger' },
];

function opOf(op: Op) {
  return OPS.find((o) => o.op === op)!;
}

function isRelease(op: Op): boolean {
  return op === 'release' || op === 'release_allow';
}

function opPath(op: Op): string {
  return isRelease(op) ? '/api/v1/quarantine/release' : '/api/v1/quarantine/delete';
}

function opList(op: Op): 'allow' | 'block' | undefined {
  return op === 'release_allow' ? 'allow' : op === 'delete_block' ? 'block' : undefined;
}

/* What an action does, for its dialog. */
function opEffect(op: Op, mine: boolean): string {
  const list = mine ? 'your personal' : 'the server\'s';
  switch (op) {
    case 'release': return 'Each message goes to its original recipient only, unchanged.';
    case 'release_allow': return `Each message goes to its original recipient only, unchanged, and its sender is added to ${list} allow list.`;
    case 'delete': return 'The items are removed for good.';
    case 'delete_block': return `The items are removed for good and their senders are added to ${list} block list.`;
  }
}

function resultText(op: Op, r: QuarantineResult): string {
  const done = isRelease(op) ? 'Released' : 'Deleted';
  const listed = opList(op) ? `; ${plural(r.sender_listed, 'sender')} added to the ${opList(op)} list` : '';
  return `${done} ${plural(r.recipients, 'recipient')} of ${plural(r.messages, 'message')}${listed}.`;
}

const COLUMNS: { key: SortKey | null; label: string }[] = [
  { key: 'created_at', label: 'Received' }, { key: 'recipient', label: 'Recipient' }, { key: 'sender', label: 'Sender' },
  { key: 'subject', label: 'Subject' }, { key: null, label: 'Kind' }, { key: null, label: 'Reason' },
  { key: 'size', label: 'Size' }, { key: 'expires_at', label: 'Expires' },
];

function SortHeader(props: { col: { key: SortKey | null; label: string }; sort: Sort; onSort: (k: SortKey) => void }) {
  const { col, sort } = props;
  if (!col.key) return <th scope="col">{col.label}</th>;
  const on = sort.sort === col.key;
  const dir = on ? (sort.order === 'asc' ? 'ascending' : 'descending') : 'none';
  return (
    <th scope="col" aria-sort={dir} class={col.key === 'size' ? 'num' : undefined}>
      <button type="button" class="sort" onClick={() => props.onSort(col.key!)}
        aria-label={`Sort by ${col.label.toLowerCase()}${on ? (sort.order === 'asc' ? ', now ascending' : ', now descending') : ''}`}>
        {col.label}{on ? (sort.order === 'asc' ? ' ▲' : ' ▼') : ''}
      </button>
    </th>
  );
}

function Preview(props: {
  id: number; admin: boolean; canRelease: (kind: string) => boolean;
  onAction: (op: Op, items: QuarantineItem[]) => void; onClose: () => void;
}) {
  const [m, setM] = useState<QuarantineDetail | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    setM(null);
    setErr('');
    api.get<QuarantineDetail>(`/api/v1/quarantine/${props.id}`).then(setM, (e) => setErr(Object.values(errorsOf(e))[0]));
  }, [props.id]);
  const title = m ? `Preview of item ${m.id}` : `Preview of item ${props.id}`;
  return (
    <section class="card preview" role="region" aria-label={title} aria-busy={!m && !err ? 'true' : 'false'}>
      <div class="row-head">
        <h2>Preview</h2>
        <Button onClick={props.onClose} label="Close the preview">Close</Button>
      </div>
      {err && <p class="error" role="alert">{err}</p>}
      {!m && !err && <Loading what="the message" />}
      {m && (
        <>
          <dl class="headers summary">
            <dt>Sender</dt><dd class="q-sender">{m.sender === '' ? '<>' : m.sender}</dd>
            <dt>Recipient</dt><dd>{m.recipient}</dd>
            <dt>Subject</dt><dd class="q-subject">{m.subject}</dd>
            <dt>Kind</dt><dd><span class={`kind ${m.kind}`}>{m.kind}</span></dd>
            <dt>Reason</dt><dd>{m.reason}</dd>
            <dt>Received</dt><dd>{fmtZoned(m.created_at, false)}</dd>
            <dt>Expires</dt><dd>{fmtZoned(m.expires_at, false)}</dd>
            <dt>Client</dt><dd class="mono">{m.client_address}</dd>
            <dt>Message-ID</dt><dd class="mono">{m.message_id || '—'}</dd>
            <dt>Size</dt><dd>{m.size} bytes</dd>
            <dt>Queue id</dt><dd class="mono">{props.admin ? <Link href={`/timeline/${encodeURIComponent(m.qid)}`}>{m.qid}</Link> : m.qid}</dd>
          </dl>
          <div class="actions">
            {OPS.map((o) => {
              const blocked = isRelease(o.op) && !props.canRelease(m.kind);
              return (
                <Button kind={o.kind} disabled={blocked} label={`${o.label}: item ${m.id}`} onClick={() => props.onAction(o.op, [m])}>{o.label}</Button>
              );
            })}
            <a class="btn plain" href={`/api/v1/quarantine/${m.id}/raw`} download={`${m.qid}.eml`}>Download raw message</a>
          </div>
          <LearnButtons path={`/api/v1/quarantine/${m.id}/learn`} what={`item ${m.id}`} />
          {!props.canRelease(m.kind) && <p class="muted">You may not release items of kind {m.kind}; an administrator can.</p>}
          {m.recipients && m.recipients.length > 0 && (
            <p>Also quarantined from this message: {m.recipients.map((r) => `${r.recipient} (${r.kind})`).join(', ')}</p>
          )}
          <details>
            <summary>Headers ({m.headers.length})</summary>
            <dl class="headers">{m.headers.map((h) => <><dt>{h.name}</dt><dd>{h.value}</dd></>)}</dl>
          </details>
          <h3>Text</h3>
          {m.text ? <pre class="text-part" aria-label="Text part">{m.text}</pre> : <p class="muted">No text part.</p>}
          {m.has_html && (
            <>
              <h3>HTML</h3>
              <iframe class="html-part" sandbox="" referrerpolicy="no-referrer" title={`HTML part of item ${m.id}`}
                src={`/api/v1/quarantine/${m.id}/html`} />
              {m.html_text && (
                <details>
                  <summary>HTML as text</summary>
                  <pre class="text-part">{m.html_text}</pre>
                </details>
              )}
            </>
          )}
          {m.attachments && m.attachments.length > 0 && (
            <>
              <h3>Attachments</h3>
              <ul class="plain">{m.attachments.map((a) => <li><span class="mono">{a.name || '(no name)'}</span> {a.type}, {a.size} bytes</li>)}</ul>
            </>
          )}
        </>
      )}
    </section>
  );
}

export function QuarantinePage(props: { session: Session; mine: boolean }) {
  const { mine } = props;
  const base = mine ? '/my/quarantine' : '/quarantine';
  const [form, setForm] = useState<QuarantineFilter>(() => qFilterFromSearch(location.search));
  const [filter, setFilter] = useState<QuarantineFilter>(form);
  const [sort, setSort] = useState<Sort>(DEFAULT_SORT);
  const [selected, setSelected] = useState<Map<number, QuarantineItem>>(new Map());
  const [open, setOpen] = useState<number | null>(null);
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const [bulkOp, setBulkOp] = useState<Op>('release');
  const [counting, setCounting] = useState(false);
  const [notice, setNotice] = useState('');
  const [err, setErr] = useState('');
  /* kinds the server refused to release for this user (403 on field "kind") */
  const [refused, setRefused] = useState<Set<string>>(new Set());
  const sessionKinds = mine ? releaseKinds((props.session as unknown as Record<string, unknown>).quarantine_release_kinds) : null;
  const canRelease = (kind: string) => !mine || (!refused.has(kind) && (sessionKinds === null || sessionKinds.includes(kind)));

  const key = JSON.stringify([filter, sort]);
  const p = usePaged<QuarantineItem>(key, (cursor) =>
    api.get<{ items: QuarantineItem[]; next?: string | null; next_cursor?: string | null }>('/api/v1/quarantine',
      { ...filterParams(filter), ...sort, cursor, limit: 50 }).then(pageOf));

  useEffect(() => {
    const qs = new URLSearchParams(Object.entries(filter).filter(([, v]) => v)).toString();
    history.replaceState(null, '', base + (qs ? `?${qs}` : ''));
    setSelected(new Map());
  }, [key]);

  const set = (k: keyof QuarantineFilter) => (v: string) => setForm({ ...form, [k]: v });
  const described = describeQFilter(filter);
  const query = `${mine ? 'your items' : 'all items'}${described ? ` with ${described}` : ''}, by ${sort.sort.replace('_at', '').replace('created', 'received')} ${sort.order === 'asc' ? 'ascending' : 'descending'}`;

  async function post(op: Op, body: Record<string, unknown>, kinds: string[]) {
    try {
      const r = await api.post<QuarantineResult>(opPath(op), body);
      setNotice(resultText(op, r));
      setSelected(new Map());
      setOpen(null);
      p.reload();
    } catch (e) {
      if (mine && e instanceof ApiError && e.status === 403 && e.field === 'kind' && kinds.length === 1) {
        setRefused(new Set([...refused, kinds[0]]));
      }
      throw e;
    }
  }

  /* One item or the selected ones. */
  function actOn(op: Op, items: QuarantineItem[]) {
    setErr('');
    setNotice('');
    const o = opOf(op);
    const kinds = [...new Set(items.map((i) => i.kind))];
    const msgs = new Set(items.map((i) => i.qid)).size;
    const one = items.length === 1 ? items[0] : null;
    setConfirm({
      title: `${o.label}: ${plural(items.length, 'item')}${msgs !== items.length ? ` of ${plural(msgs, 'message')}` : ''}?`,
      body: (one ? `The message from ${one.sender === '' ? '<>' : one.sender} to ${one.recipient} (“${one.subject}”). ` : '') + opEffect(op, mine),
      action: `${o.verb} ${plural(items.length, 'item')}`,
      run: () => post(op, idsBody(items.map((i) => i.id), opList(op)), kinds),
    });
  }

  /* Everything the applied filter matches, counted by the server first. */
  async function actOnFilter(op: Op) {
    setErr('');
    setNotice('');
    setCounting(true);
    try {
      const { count } = await api.get<{ count: number }>('/api/v1/quarantine/count', filterParams(filter));
      if (count === 0) {
        setNotice('Nothing matches this filter.');
        return;
      }
      const o = opOf(op);
      setConfirm({
        title: `${o.label}: ${plural(count, 'item')} matching the filter?`,
        body: `${described ? `Matching ${described}` : `Every item${mine ? ' of yours' : ''} (no filter)`}: ${plural(count, 'item')} now. ${opEffect(op, mine)}`,
        action: `${o.verb} ${plural(count, 'item')}`,
        run: () => post(op, bulkFilterBody(filter, opList(op)), filter.kind ? [filter.kind] : []),
      });
    } catch (e) {
      setErr(Object.values(errorsOf(e))[0]);
    } finally {
      setCounting(false);
    }
  }

  const sel = [...selected.values()];
  const selBlocked = sel.some((i) => !canRelease(i.kind));
  const fe = p.errors;
  const toggleAll = (items: QuarantineItem[], on: boolean) => {
    const n = new Map(selected);
    for (const i of items) {
      if (on) n.set(i.id, i);
      else n.delete(i.id);
    }
    setSelected(n);
  };

  return (
    <section>
      <PageTitle>{mine ? 'My quarantine' : 'Quarantine'}</PageTitle>
      {mine && <p class="muted">Messages held back from your addresses and from the groups you manage. Released mail goes to its original recipient.</p>}
      <form class="card form-grid filters" role="search" aria-label="Quarantine filter"
        onSubmit={(e) => { e.preventDefault(); setFilter({ ...form }); }}>
        <Field label="Recipient" name="recipient" value={form.recipient} onInput={set('recipient')} errors={fe} />
        <Field label="Sender" name="sender" value={form.sender} onInput={set('sender')} errors={fe} hint="exact; a trailing * matches a prefix" />
        <Field label="Subject contains" name="subject" value={form.subject} onInput={set('subject')} errors={fe} />
        <Field label="Reason contains" name="reason" value={form.reason} onInput={set('reason')} errors={fe} />
        <Field label="Kind" name="kind" value={form.kind} onInput={set('kind')} errors={fe}
          options={[{ value: '', label: 'any' }, ...QUARANTINE_KINDS.map((k) => ({ value: k, label: k }))]} />
        <Field label="Since" name="since" type="datetime-local" value={form.since} onInput={set('since')} errors={fe} />
        <Field label="Until" name="until" type="datetime-local" value={form.until} onInput={set('until')} errors={fe} />
        <Field label="Search" name="q" value={form.q} onInput={set('q')} errors={fe} hint="in sender, recipient and subject" />
        <div class="actions">
          <Button type="submit" kind="primary" busy={p.loading}>Apply filter</Button>
          <Button onClick={() => { setForm(EMPTY_QFILTER); setFilter(EMPTY_QFILTER); }}>Clear</Button>
        </div>
      </form>
      <FormError errors={fe} fields={Object.keys(EMPTY_QFILTER)} />
      <div class="toolbar" role="group" aria-label="Selected items">
        <span>{plural(sel.length, 'item')} selected</span>
        {OPS.map((o) => (
          <Button kind={o.kind} disabled={sel.length === 0 || (isRelease(o.op) && selBlocked)} label={`${o.label}: selected items`}
            onClick={() => actOn(o.op, sel)}>{o.label}</Button>
        ))}
      </div>
      <div class="toolbar" role="group" aria-label="All matching the filter">
        <Field label="Action on all matching" name="bulk_op" value={bulkOp} onInput={(v) => setBulkOp(v as Op)}
          options={OPS.map((o) => ({ value: o.op, label: o.label }))} />
        <Button kind={opOf(bulkOp).kind} busy={counting} disabled={(isRelease(bulkOp) && !!filter.kind && !canRelease(filter.kind))}
          onClick={() => actOnFilter(bulkOp)}>{hasFilter(filter) ? 'Apply to all matching…' : 'Apply to all items…'}</Button>
      </div>
      {notice && <p class="notice" role="status">{notice}</p>}
      {err && <p class="error" role="alert">{err}</p>}
      <Results {...p} label="Quarantine" query={query} errorShown
        empty={<p class="muted">{mine ? 'Nothing of yours is in quarantine' : 'The quarantine has nothing'}{described ? ' that matches' : ''}.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table class="quarantine">
              <thead><tr>
                <th scope="col"><input type="checkbox" aria-label="Select all on this page"
                  checked={items.every((i) => selected.has(i.id))}
                  onChange={(e) => toggleAll(items, (e.target as HTMLInputElement).checked)} /></th>
                {COLUMNS.map((c) => <SortHeader col={c} sort={sort} onSort={(k) => setSort(nextSort(sort, k))} />)}
                <th scope="col">Preview</th>
              </tr></thead>
              <tbody>
                {items.map((i) => (
                  <tr class={open === i.id ? 'open' : undefined} data-id={i.id}>
                    <td><input type="checkbox" aria-label={`Select item ${i.id}`} checked={selected.has(i.id)}
                      onChange={(e) => toggleAll([i], (e.target as HTMLInputElement).checked)} /></td>
                    <td>{fmtZoned(i.created_at, false)}</td>
                    <td>{i.recipient}</td>
                    <td class="q-sender">{i.sender === '' ? '<>' : i.sender}</td>
                    <td class="q-subject">{i.subject}</td>
                    <td><span class={`kind ${i.kind}`}>{i.kind}</span></td>
                    <td>{i.reason}</td>
                    <td class="num">{i.size}</td>
                    <td>{fmtZoned(i.expires_at, false)}</td>
                    <td><Button label={`Preview item ${i.id}`} onClick={() => setOpen(open === i.id ? null : i.id)}>
                      {open === i.id ? 'Hide' : 'Show'}</Button></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Quarantine" />
      {open !== null && (
        <Preview id={open} admin={props.session.admin && !mine} canRelease={canRelease} onAction={actOn} onClose={() => setOpen(null)} />
      )}
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
