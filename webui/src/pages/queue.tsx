// The queue (/api/v1/queue): recipients filtered by state, sender, client
// address, recipient domain, reason or submitting account (auth_user: the
// Accounts page links an account's held mail here); grouped by state or any
// of those but the account (counted by the server, /api/v1/queue/summary)
// with release and delete per group; bulk release, retry and delete by the
// same filter after a confirmation that counts what the action touches; one
// message's details.
import { useEffect, useState } from 'preact/hooks';
import { api, type List, type Query, type QueueGroup, type QueueRcpt } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, errorsOf, Field, fmtTime, Link, Loading, PageTitle, Pager, plural, Results, useKeyed, usePaged,
} from '../ui';
import {
  ACTION_MEANS, ACTION_STATES, actionCount, bulkBody, describeCount, describeFilter, describeUnchanged, EMPTY_FILTER, filterFromSearch,
  type GroupKey, groupFilter, type QueueAction, type QueueFilter, summaryGroup, topKey,
} from '../util';

const VERB: Record<QueueAction, string> = { release: 'Release', retry: 'Retry', delete: 'Delete' };
const GROUP_LIMIT = 100; /* the summary's default */
const GROUP_LABEL: Record<GroupKey, string> = {
  '': '', state: 'State', sender: 'Sender', client: 'Client address', rcpt_domain: 'Recipient domain', reason: 'Reason',
};
type Filter = QueueFilter;
const EMPTY = EMPTY_FILTER;

function Details(props: { qid: string; onAction: (c: ConfirmState) => void; onDone: (msg: string) => void }) {
  const [m, setM] = useState<{ headers: { name: string; value: string }[]; recipients: QueueRcpt[]; size: number; spool_file: boolean } | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    api.get<typeof m>(`/api/v1/queue/${props.qid}`).then(setM, (e) => setErr(Object.values(errorsOf(e))[0]));
  }, [props.qid]);
  if (err) return <p class="error" role="alert">{err}</p>;
  if (!m) return <Loading what="message" />;
  return (
    <div class="details">
      <p>{plural(m.recipients.length, 'recipient')}: {m.recipients.map((r) => `${r.rcpt} (${r.state})`).join(', ')}; {m.size} bytes{m.spool_file ? '' : '; spool file missing'}.
        {' '}<Link href={`/timeline/${encodeURIComponent(props.qid)}`}>Timeline of {props.qid}</Link></p>
      <dl class="headers">{m.headers.map((h) => <><dt>{h.name}</dt><dd>{h.value}</dd></>)}</dl>
      <div class="actions">
        {(['release', 'retry', 'delete'] as const).map((action) => {
          /* only the actions that change one of this message's recipients */
          const hit = m.recipients.filter((r) => ACTION_STATES[action].includes(r.state));
          const verb = VERB[action];
          const n = hit.length;
          if (n === 0) return null;
          return (
            <Button kind={action === 'delete' ? 'danger' : 'plain'} label={`${verb} message ${props.qid}`} onClick={() => props.onAction({
              title: `${verb} 1 message (${plural(n, 'recipient')})?`,
              body: `Message ${props.qid}: this ${ACTION_MEANS[action]}. ${hit.map((r) => `${r.rcpt} (${r.state})`).join(', ')}.`,
              action: `${verb} 1 message`,
              run: async () => {
                const r = await api.post<{ recipients: number; messages_removed: number }>(`/api/v1/queue/${action}`, { qid: props.qid });
                props.onDone(`${verb}: ${plural(r.recipients, 'recipient')} of message ${props.qid} done.`);
              },
            })}>{verb} message</Button>
          );
        })}
      </div>
    </div>
  );
}

export function QueuePage() {
  const [form, setForm] = useState<Filter>(() => filterFromSearch(location.search));
  const [filter, setFilter] = useState<Filter>(form);
  const [groupBy, setGroupBy] = useState<GroupKey>('');
  const [open, setOpen] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const [counting, setCounting] = useState('');
  const [notice, setNotice] = useState('');
  const [err, setErr] = useState('');
  const [ver, setVer] = useState(0);
  const key = JSON.stringify(filter);
  const query: Query = { ...filter };
  const p = usePaged<QueueRcpt>(key, (cursor) => api.get<List<QueueRcpt>>('/api/v1/queue', { ...query, cursor, limit: 50 }));

  useEffect(() => {
    const qs = new URLSearchParams(Object.entries(filter).filter(([, v]) => v)).toString();
    history.replaceState(null, '', '/queue' + (qs ? `?${qs}` : ''));
  }, [key]);

  /* no grouping: no request, an empty answer at once */
  const grouped = useKeyed<{ items: QueueGroup[] }>(JSON.stringify([key, groupBy, ver]), () => groupBy
    ? api.get<{ items: QueueGroup[] }>('/api/v1/queue/summary', { ...query, group: summaryGroup(groupBy) })
    : Promise.resolve({ items: [] }));
  const groups = grouped.data?.items ?? null;

  const set = (k: keyof Filter) => (v: string) => setForm({ ...form, [k]: v });
  const hasFilter = Object.values(filter).some(Boolean);
  /* with a state in the filter, only the actions that change that state are offered */
  const applies = (a: QueueAction) => !filter.state || ACTION_STATES[a].includes(filter.state);

  /*
   * What an action really changes, counted by the server: the filter's recipients per state
   * (/api/v1/queue/summary?group=state), of which only the action's states change. Nothing
   * that applies: a notice that says what the action means instead of an empty promise.
   */
  async function confirmAction(action: QueueAction, f: Filter, what: string) {
    const verb = VERB[action];
    const r = await api.get<{ items: QueueGroup[] }>('/api/v1/queue/summary', { ...f, group: 'state' });
    const c = actionCount(action, r.items);
    const left = describeUnchanged(c);
    if (c.recipients === 0) {
      setNotice(left ? `Nothing to ${action}: ${action} ${ACTION_MEANS[action]}; the ${left} recipients ${what} stay as they are.`
        : `Nothing matches ${what}.`);
      return;
    }
    setConfirm({
      title: `${verb} ${describeCount(c)}?`,
      body: `Matching ${what}: this ${ACTION_MEANS[action]}.${left ? ` Not changed: ${left}.` : ''}`,
      action: `${verb} ${plural(c.recipients, 'recipient')}`,
      run: async () => {
        const res = await api.post<{ recipients: number; messages_removed: number }>(`/api/v1/queue/${action}`, bulkBody(f));
        setNotice(`${verb}: ${plural(res.recipients, 'recipient')} done${action === 'delete' ? `, ${plural(res.messages_removed, 'message')} removed` : ''}.`);
        p.reload();
        setVer((v) => v + 1);
      },
    });
  }

  async function bulk(action: QueueAction) {
    setErr('');
    setNotice('');
    setCounting(action);
    try {
      await confirmAction(action, filter, describeFilter(filter));
    } catch (e) {
      setErr(Object.values(errorsOf(e))[0]);
    } finally {
      setCounting('');
    }
  }

  /* Release or delete one group of the summary: the bulk endpoint with the group's filter. */
  async function bulkGroup(action: 'release' | 'delete', g: QueueGroup, gf: Filter) {
    setErr('');
    setNotice('');
    const label = `${GROUP_LABEL[groupBy].toLowerCase()} ${topKey(g.key)}`;
    const loose = groupBy === 'reason' ? ' (the filter matches reasons containing this text: possibly more)' : '';
    try {
      await confirmAction(action, gf, `the group ${label}, ${describeFilter(gf)}${loose}`);
    } catch (e) {
      setErr(Object.values(errorsOf(e))[0]);
    }
  }

  return (
    <section>
      <PageTitle>Queue</PageTitle>
      <form class="card form-grid filters" role="search" aria-label="Queue filter" onSubmit={(e) => { e.preventDefault(); setFilter({ ...form }); }}>
        <Field label="State" name="state" value={form.state} onInput={set('state')}
          options={[{ value: '', label: 'any' }, ...['queued', 'deferred', 'held', 'dead'].map((s) => ({ value: s, label: s }))]} />
        <Field label="Sender" name="sender" value={form.sender} onInput={set('sender')} hint="exact; <> the null sender" />
        <Field label="Client address" name="client" value={form.client} onInput={set('client')} />
        <Field label="Recipient domain" name="rcpt_domain" value={form.rcpt_domain} onInput={set('rcpt_domain')} />
        <Field label="Reason contains" name="reason" value={form.reason} onInput={set('reason')} />
        <Field label="Account" name="auth_user" value={form.auth_user} onInput={set('auth_user')} hint="authenticated sender, exact" />
        <div class="actions">
          <Button type="submit" kind="primary">Apply filter</Button>
          <Button onClick={() => { setForm(EMPTY); setFilter(EMPTY); }}>Clear</Button>
        </div>
      </form>
      <div class="toolbar">
        <Field label="Group by" name="group" value={groupBy} onInput={(v) => setGroupBy(v as GroupKey)}
          options={[{ value: '', label: 'no grouping' }, { value: 'state', label: 'state' }, { value: 'sender', label: 'sender' }, { value: 'client', label: 'client address' },
            { value: 'rcpt_domain', label: 'recipient domain' }, { value: 'reason', label: 'reason' }]} />
        <span class="spacer" />
        {(['release', 'retry', 'delete'] as const).filter(applies).map((a) => (
          <Button kind={a === 'delete' ? 'danger' : 'plain'} onClick={() => bulk(a)} busy={counting === a} disabled={!hasFilter || !!counting}>
            {VERB[a]} matching…</Button>
        ))}
      </div>
      {!hasFilter && <p class="muted">Bulk actions need a filter.</p>}
      <p class="muted small">Release queues held and dead recipients for delivery; retry makes queued and deferred ones due now; delete removes any.</p>
      {notice && <p class="notice" role="status">{notice}</p>}
      {err && <p class="error" role="alert">{err}</p>}
      {groupBy && (
        <section class="card">
          <h2>Groups</h2>
          <Results loading={grouped.loading} error={grouped.error} items={groups} label="Queue groups"
            query={`${describeFilter(filter) || 'all recipients'} by ${GROUP_LABEL[groupBy].toLowerCase()}`}
            empty={<p class="muted">Nothing matches.</p>}>
            {(items) => (
              <div class="table-wrap">
                <table class="groups">
                  <thead><tr><th scope="col">{GROUP_LABEL[groupBy]}</th><th scope="col" class="num">Messages</th><th scope="col" class="num">Recipients</th><th scope="col">Actions</th></tr></thead>
                  <tbody>{items.map((g) => {
                    const gf = groupFilter(filter, groupBy, g.key);
                    const name = topKey(g.key);
                    return (
                      <tr><td class="mono">{name}</td><td class="num">{g.messages}</td><td class="num">{g.recipients}</td>
                        <td>{gf ? (<div class="actions">
                          <Button label={`Show ${name}`} onClick={() => { setForm(gf); setFilter(gf); setGroupBy(''); }}>Show</Button>
                          {(groupBy !== 'state' || ACTION_STATES.release.includes(g.key ?? '')) &&
                            <Button label={`Release group ${name}`} onClick={() => bulkGroup('release', g, gf)}>Release…</Button>}
                          <Button kind="danger" label={`Delete group ${name}`} onClick={() => bulkGroup('delete', g, gf)}>Delete…</Button>
                        </div>) : <span class="muted">no filter selects it</span>}</td></tr>
                    );
                  })}</tbody>
                </table>
              </div>
            )}
          </Results>
          {groups && groups.length >= GROUP_LIMIT && <p class="muted">The {GROUP_LIMIT} largest groups.</p>}
        </section>
      )}
      <Results {...p} label="Queue" query={describeFilter(filter) || 'all recipients'}
        empty={<p class="muted">The queue has nothing that matches.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table class="queue">
              <thead><tr><th scope="col">Queue id</th><th scope="col">Recipient</th><th scope="col">State</th><th scope="col">Sender</th><th scope="col">Client</th><th scope="col">Reason</th><th scope="col">Received</th><th scope="col" class="num">Attempts</th><th scope="col">Details</th></tr></thead>
              <tbody>
                {items.map((r) => (
                  <>
                    <tr>
                      <td class="mono qid">{r.qid}</td><td class="addr">{r.rcpt}</td><td><span class={`state ${r.state}`}>{r.state}</span></td>
                      <td class="addr">{r.sender === '' ? '<>' : r.sender}</td><td class="mono">{r.client_addr}</td>
                      <td>{r.reason ?? r.last_error ?? ''}</td><td class="nowrap">{fmtTime(r.received_at)}</td><td class="num">{r.attempts}</td>
                      <td><Button onClick={() => setOpen(open === r.qid + r.rcpt ? null : r.qid + r.rcpt)} label={`Details of ${r.qid} to ${r.rcpt}`}>
                        {open === r.qid + r.rcpt ? 'Hide' : 'Show'}</Button></td>
                    </tr>
                    {open === r.qid + r.rcpt && <tr><td colSpan={9}><Details qid={r.qid} onAction={setConfirm}
                      onDone={(msg) => { setNotice(msg); setOpen(null); p.reload(); setVer((v) => v + 1); }} /></td></tr>}
                  </>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Queue" />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
