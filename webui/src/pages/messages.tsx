// Message-log search (/api/v1/messages): time range, client, sender,
// recipient, verdict, reason, queue id, check, account; newest first, paginated.
import { useState } from 'preact/hooks';
import { api, type List, type Message } from '../api';
import { Button, Field, FormError, fmtTime, PageTitle, Pager, Results, usePaged } from '../ui';
import { TimelineView } from './timeline';
import { LearnButtons } from '../learn';

interface Search { from: string; to: string; client: string; sender: string; recipient: string; result: string; reason: string; qid: string; check: string; auth_user: string }
const EMPTY: Search = { from: '', to: '', client: '', sender: '', recipient: '', result: '', reason: '', qid: '', check: '', auth_user: '' };

/* datetime-local (local time) -> unix ms, '' when empty */
function toMs(v: string): string {
  if (!v) return '';
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? String(t) : v;
}

/* A link may open the page with filters: /messages?client=…&check=… */
function searchFromUrl(qs: string): Search {
  const p = new URLSearchParams(qs);
  const s = { ...EMPTY };
  for (const k of Object.keys(EMPTY) as (keyof Search)[]) s[k] = p.get(k) ?? '';
  return s;
}

const LABELS: Record<keyof Search, string> = {
  from: 'from', to: 'to', client: 'client', sender: 'sender', recipient: 'recipient', result: 'verdict', reason: 'reason containing',
  qid: 'queue id', check: 'check', auth_user: 'account',
};

/* Words for the search a table shows: "messages with client 192.0.2.1, check unknown_recipient". */
function describeSearch(s: Search): string {
  const parts = (Object.keys(LABELS) as (keyof Search)[]).filter((k) => s[k]).map((k) => `${LABELS[k]} ${s[k]}`);
  return parts.length ? `messages with ${parts.join(', ')}` : 'all messages';
}

export function MessagesPage() {
  const [form, setForm] = useState<Search>(() => searchFromUrl(location.search));
  const [search, setSearch] = useState<Search>(form);
  const [open, setOpen] = useState<number | null>(null);
  const p = usePaged<Message>(JSON.stringify(search), (cursor) =>
    api.get<List<Message>>('/api/v1/messages', { ...search, from: toMs(search.from), to: toMs(search.to), cursor, limit: 50 }));
  const set = (k: keyof Search) => (v: string) => setForm({ ...form, [k]: v });
  const fe = p.errors;
  return (
    <section>
      <PageTitle>Message log</PageTitle>
      <form class="card form-grid filters" role="search" aria-label="Message log search" onSubmit={(e) => { e.preventDefault(); setSearch({ ...form }); }}>
        <Field label="From" name="from" type="datetime-local" value={form.from} onInput={set('from')} errors={fe} />
        <Field label="To" name="to" type="datetime-local" value={form.to} onInput={set('to')} errors={fe} />
        <Field label="Client address" name="client" value={form.client} onInput={set('client')} errors={fe} />
        <Field label="Sender" name="sender" value={form.sender} onInput={set('sender')} errors={fe} hint="exact; <> the null sender" />
        <Field label="Recipient" name="recipient" value={form.recipient} onInput={set('recipient')} errors={fe} />
        <Field label="Verdict" name="result" value={form.result} onInput={set('result')}
          options={[{ value: '', label: 'any' }, ...['accepted', 'refused', 'deferred', 'aborted'].map((s) => ({ value: s, label: s }))]} />
        <Field label="Reason contains" name="reason" value={form.reason} onInput={set('reason')} errors={fe} />
        <Field label="Queue id" name="qid" value={form.qid} onInput={set('qid')} errors={fe} />
        <Field label="Check" name="check" value={form.check} onInput={set('check')} errors={fe} />
        <Field label="Account" name="auth_user" value={form.auth_user} onInput={set('auth_user')} errors={fe} hint="authenticated sender, exact" />
        <div class="actions">
          <Button type="submit" kind="primary" busy={p.loading}>Search</Button>
          <Button onClick={() => { setForm(EMPTY); setSearch(EMPTY); }}>Clear</Button>
        </div>
      </form>
      <FormError errors={fe} fields={['from', 'to', 'client', 'sender', 'recipient', 'result', 'reason', 'qid', 'check', 'auth_user']} />
      <Results {...p} label="Messages" query={describeSearch(search)} errorShown
        empty={<p class="muted">No messages match.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col">Time</th><th scope="col">Verdict</th><th scope="col">Client</th><th scope="col">Sender</th><th scope="col">Recipients</th><th scope="col">Reason</th><th scope="col">Details</th></tr></thead>
              <tbody>
                {items.map((m) => (
                  <>
                    <tr>
                      <td class="nowrap">{fmtTime(m.ts)}</td><td><span class={`verdict ${m.result}`}>{m.result}</span></td>
                      <td class="mono">{m.client_addr ?? ''}</td><td class="addr">{m.sender === '' ? '<>' : m.sender ?? ''}</td>
                      <td class="addr-list">{m.recipients.map((r, i) => <>{i > 0 && ', '}<span>{typeof r === 'string' ? r : JSON.stringify(r)}</span></>)}</td>
                      <td>{m.code ? `${m.code} ` : ''}{m.reason ?? ''}</td>
                      <td><Button onClick={() => setOpen(open === m.id ? null : m.id)} label={`Details of message ${m.id}`}>{open === m.id ? 'Hide' : 'Show'}</Button></td>
                    </tr>
                    {open === m.id && (
                      <tr><td colSpan={7}>
                        <dl class="headers">
                          <dt>Queue id</dt><dd>{m.qid ?? '—'}</dd><dt>Session</dt><dd>{m.session_id ?? '—'}</dd>
                          <dt>Client name</dt><dd>{m.client_name ?? '—'}</dd><dt>HELO</dt><dd>{m.helo ?? '—'}</dd>
                          <dt>Size</dt><dd>{m.size ?? '—'}</dd><dt>Check</dt><dd>{m.check_name ?? '—'}</dd>
                          <dt>Fired</dt><dd>{m.entry ?? '—'}</dd><dt>Account</dt><dd>{m.auth_user ?? '—'}</dd>
                          <dt>TLS</dt><dd>{m.tls ?? 'none'}</dd>
                        </dl>
                        {m.qid && <LearnButtons path={`/api/v1/messages/${m.id}/learn`} what={`message ${m.id}`} />}
                        <TimelineView path={`/api/v1/messages/${m.id}/timeline`} query={{}} what={`message ${m.id}`} />
                      </td></tr>
                    )}
                  </>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Messages" />
    </section>
  );
}
