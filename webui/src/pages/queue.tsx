// The queue (/api/v1/queue): recipients filtered by state, sender, client
// address, recipient domain or reason; grouped by state or any of those
// (counted by the server, /api/v1/queue/summary) with release and delete per
// group; bulk release, retry and delete by the same filter after a
// confirmation that counts what the action touches; one message's details.
import { useEffect, useState } from 'preact/hooks';
import { api, fetchAll, type List, type Query, type QueueGroup, type QueueRcpt } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, errorsOf, Field, fmtTime, Loading, PageTitle, Pager, plural, Results, useKeyed, usePaged,
} from '../ui';
import {
  bulkBody, describeFilter, EMPTY_FILTER, filterFromSearch, type GroupKey, groupFilter, type QueueFilter, summaryGroup, topKey,
} from '../util';

const COUNT_MAX = 100000;
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
      <p>{plural(m.recipients.length, 'recipient')}: {m.recipients.map((r) => `${r.rcpt} (${r.state})`).join(', ')}; {m.size} bytes{m.spool_file ? '' : '; spool file missing'}.</p>
      <dl class="headers">{m.headers.map((h) => <><dt>{h.name}</dt><dd>{h.value}</dd></>)}</dl>
      <div class="actions">
        {(['release', 'retry', 'delete'] as const).map((action) => {
          const verb = action === 'delete' ? 'Delete' : action === 'release' ? 'Release' : 'Retry';
          const n = m.recipients.length;
          return (
            <Button kind={action === 'delete' ? 'danger' : 'plain'} label={`${verb} message ${props.qid}`} onClick={() => props.onAction({
              title: `${verb} 1 message (${plural(n, 'recipient')})?`,
              body: `Message ${props.qid}: ${action === 'delete' ? 'removed for good with its spool file' : action === 'release' ? 'held and dead recipients are queued for delivery now' : 'queued and deferred recipients are due now'}.`,
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

  async function bulk(action: 'release' | 'retry' | 'delete') {
    setErr('');
    setNotice('');
    setCounting(action);
    try {
      const all = await fetchAll<QueueRcpt>('/api/v1/queue', query, COUNT_MAX);
      const n = all.items.length;
      const msgs = new Set(all.items.map((r) => r.qid)).size;
      if (n === 0) {
        setNotice('Nothing matches this filter.');
        return;
      }
      const count = `${all.complete ? '' : 'at least '}${plural(n, 'recipient')} in ${plural(msgs, 'message')}`;
      const verb = action === 'delete' ? 'Delete' : action === 'release' ? 'Release' : 'Retry';
      const what = action === 'delete' ? 'removes them for good (and messages left without recipients)'
        : action === 'release' ? 'queues held and dead ones for delivery now' : 'makes queued and deferred ones due now';
      setConfirm({
        title: `${verb} ${count}?`,
        body: `Matching ${describeFilter(filter)}: this ${what}.`,
        action: `${verb} ${plural(n, 'recipient')}`,
        run: async () => {
          const r = await api.post<{ recipients: number; messages_removed: number }>(`/api/v1/queue/${action}`, bulkBody(filter));
          setNotice(`${verb}: ${plural(r.recipients, 'recipient')} done${action === 'delete' ? `, ${plural(r.messages_removed, 'message')} removed` : ''}.`);
          p.reload();
          setVer((v) => v + 1);
        },
      });
    } catch (e) {
      setErr(Object.values(errorsOf(e))[0]);
    } finally {
      setCounting('');
    }
  }

  /* Release or delete one group of the summary: the bulk endpoint with the group's filter. */
  function bulkGroup(action: 'release' | 'delete', g: QueueGroup, gf: Filter) {
    setErr('');
    setNotice('');
    const verb = action === 'delete' ? 'Delete' : 'Release';
    const label = `${GROUP_LABEL[groupBy].toLowerCase()} ${topKey(g.key)}`;
    const loose = groupBy === 'reason' ? ' (the filter matches reasons containing this text: possibly more)' : '';
    setConfirm({
      title: `${verb} ${plural(g.recipients, 'recipient')} in ${plural(g.messages, 'message')}?`,
      body: `The group ${label}, matching ${describeFilter(gf)}${loose}: this ${action === 'delete'
        ? 'removes them for good (and messages left without recipients)' : 'queues held and dead ones for delivery now'}.`,
      action: `${verb} ${plural(g.recipients, 'recipient')}`,
      run: async () => {
        const r = await api.post<{ recipients: number; messages_removed: number }>(`/api/v1/queue/${action}`, bulkBody(gf));
        setNotice(`${verb}: ${plural(r.recipients, 'recipient')} done${action === 'delete' ? `, ${plural(r.messages_removed, 'message')} removed` : ''}.`);
        p.reload();
        setVer((v) => v + 1);
      },
    });
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
        <Button onClick={() => bulk('release')} busy={counting === 'release'} disabled={!hasFilter || !!counting}>Release matching…</Button>
        <Button onClick={() => bulk('retry')} busy={counting === 'retry'} disabled={!hasFilter || !!counting}>Retry matching…</Button>
        <Button kind="danger" onClick={() => bulk('delete')} busy={counting === 'delete'} disabled={!hasFilter || !!counting}>Delete matching…</Button>
      </div>
      {!hasFilter && <p class="muted">Bulk actions need a filter.</p>}
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
                          <Button label={`Release group ${name}`} onClick={() => bulkGroup('release', g, gf)}>Release…</Button>
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
                      <td class="mono">{r.qid}</td><td>{r.rcpt}</td><td><span class={`state ${r.state}`}>{r.state}</span></td>
                      <td>{r.sender === '' ? '<>' : r.sender}</td><td class="mono">{r.client_addr}</td>
                      <td>{r.reason ?? r.last_error ?? ''}</td><td>{fmtTime(r.received_at)}</td><td class="num">{r.attempts}</td>
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
