// Submission accounts and their defence (docs/submission.md): the list
// (GET /api/v1/accounts, sorted by the server by score, 24-hour volume or name,
// filtered by state and name) with each account's score and why, volume, last
// client and failed SMTP AUTH logins, links to its held mail (the queue page,
// state=held&auth_user=) and message log (auth_user=), and its actions: suspend
// now (a reason), lift (keep, release or delete the held mail), trust for bulk
// mail until a date, remove trust. One account at /accounts/<user>
// (GET /api/v1/accounts/{user}): its signals, networks, recent alerts and held
// count. The alerts (GET /api/v1/accounts/alerts, newest first), each opened to
// its signals, client addresses, sample messages and notification.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  api, type Account, type AccountAlert, type AccountDetail, type List,
} from '../api';
import {
  accountHref, accountsQuery, accountState, type AccountFilter, type AccountSort, alertAction, DEFAULT_SORT, defaultTrustDate,
  describeAccounts, fmtNumber, type HeldChoice, HELD_CHOICES, heldMailHref, liftResult, maxTrustDate, messageLogHref, nextSort,
  notifiedText, type Signal, signalWhy, type SortKey, type StateFilter, toMs, trustUntil, userOfPath, dateInput,
} from '../accounts';
import {
  Button, ConfirmDialog, type ConfirmState, errorsOf, Field, fmtTime, Link, PageTitle, Pager, plural, Results, useKeyed, usePaged, usePath,
} from '../ui';

const fmtMs = (ms: number) => fmtTime(ms);
const when = (t: Parameters<typeof toMs>[0]) => fmtTime(toMs(t));

/* ---- state, score ---- */

function StateCell(props: { a: Account }) {
  const { a } = props;
  const st = accountState(a, Date.now());
  return (
    <>
      <span class={`state ${st === 'suspended' ? 'dead' : st === 'trusted' ? 'trusted' : ''}`}>{st}</span>
      {st === 'suspended' && (
        <small class="state-note">since {when(a.suspended_at)}{a.reason ? `: ${a.reason}` : ''}</small>
      )}
      {st === 'trusted' && <small class="state-note">until {when(a.trusted_until)}</small>}
    </>
  );
}

function Why(props: { signals: Signal[] | undefined }) {
  const why = signalWhy(props.signals);
  return why ? <small class="why">{why}</small> : null;
}

function AuthFailures(props: { a: Account }) {
  const f = props.a.auth_failures;
  if (!f) return <>—</>;
  if (!f.recent && !f.last_at) return <>0</>;
  return (
    <>
      <span class="auth-recent">{f.recent}</span>
      {(f.last_at || f.last_addr) && (
        <small class="state-note">last {when(f.last_at)}{f.last_addr ? <> from <span class="mono">{f.last_addr}</span></> : ''}</small>
      )}
    </>
  );
}

/* ---- actions ---- */

type ActKind = 'suspend' | 'lift' | 'trust' | 'untrust';
interface Act { kind: ActKind; a: Account; held?: number }

/* The console's modal dialog with fields: Escape cancels, focus stays inside, the button says what it does. */
function FormDialog(props: {
  open: boolean; title: string; action: string; danger?: boolean; onClose: () => void; run: () => Promise<void>; children: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) {
      setError('');
      d.showModal();
    } else if (!props.open && d.open) {
      d.close();
    }
  }, [props.open]);
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await props.run();
      setBusy(false);
      props.onClose();
    } catch (err) {
      setBusy(false);
      const es = errorsOf(err);
      setError(es._ ?? Object.values(es)[0]);
    }
  }
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="account-dialog-title" onClose={() => !busy && props.onClose()}
      onCancel={(e) => { if (busy) e.preventDefault(); }}>
      {props.open && (
        <form onSubmit={submit}>
          <h2 id="account-dialog-title">{props.title}</h2>
          {props.children}
          {error && <p class="error" role="alert">{error}</p>}
          <div class="actions">
            <Button onClick={() => props.onClose()} disabled={busy}>Cancel</Button>
            <Button type="submit" kind={props.danger ? 'danger' : 'primary'} busy={busy}>{props.action}</Button>
          </div>
        </form>
      )}
    </dialog>
  );
}

const enc = encodeURIComponent;

/* The dialogs of one action at a time, for the list and the account page. */
function ActionDialogs(props: { act: Act | null; onClose: () => void; onDone: (msg: string) => void }) {
  const { act } = props;
  const [reason, setReason] = useState('');
  const [choice, setChoice] = useState<HeldChoice>('keep');
  const [date, setDate] = useState('');
  const [held, setHeld] = useState<{ user: string; n: number | null } | null>(null);
  const user = act?.a.user ?? '';
  useEffect(() => {
    if (!act) return;
    setReason('');
    setChoice('keep');
    setDate(act.a.trusted_until && toMs(act.a.trusted_until)! > Date.now() ? dateInput(toMs(act.a.trusted_until)!) : defaultTrustDate(Date.now()));
    if (act.kind !== 'lift') return;
    if (act.held !== undefined) {
      setHeld({ user: act.a.user, n: act.held });
      return;
    }
    /* the held count of the account page; unknown when it cannot be read */
    setHeld(null);
    api.get<AccountDetail>(`/api/v1/accounts/${enc(act.a.user)}`).then(
      (d) => setHeld({ user: act.a.user, n: typeof d.held === 'number' ? d.held : null }),
      () => setHeld({ user: act.a.user, n: null }),
    );
  }, [act]);

  const untrust: ConfirmState | null = act?.kind === 'untrust' ? {
    title: `Remove the trust of ${user}?`,
    body: `${user} is trusted for bulk mail until ${when(act.a.trusted_until)}. Without it, its volume, bursts, identical content and new networks score again and the account rate limits apply at once.`,
    action: 'Remove trust',
    run: async () => {
      await api.del<Account>(`/api/v1/accounts/${enc(user)}/trust`);
      props.onDone(`${user} is no longer trusted for bulk mail.`);
    },
  } : null;

  const heldN = held && held.user === user ? held.n : undefined;
  const heldText = heldN === undefined ? 'Counting held mail…' : heldN === null ? 'The held mail could not be counted.'
    : heldN === 0 ? 'Nothing of it is held in the queue.' : `${plural(heldN, 'recipient')} of its mail ${heldN === 1 ? 'is' : 'are'} held in the queue.`;

  return (
    <>
      <ConfirmDialog state={untrust} onClose={props.onClose} />
      <FormDialog open={act?.kind === 'suspend'} title={`Suspend ${user} now?`} action="Suspend now" danger onClose={props.onClose}
        run={async () => {
          const r = reason.trim();
          await api.post<Account>(`/api/v1/accounts/${enc(user)}/suspend`, r ? { reason: r } : {});
          props.onDone(`${user} suspended.`);
        }}>
        <p>1 account ({user}) may no longer send mail: within a second its SMTP AUTH is refused, and what it queued in the last window is held. The administrators are alerted.</p>
        <Field label="Reason" name="reason" value={reason} onInput={setReason} placeholder="suspended by an administrator" hint="Optional, up to 200 characters; shown with the account and in the alert." />
      </FormDialog>
      <FormDialog open={act?.kind === 'lift'} title={`Lift the suspension of ${user}?`} action="Lift suspension" onClose={props.onClose}
        run={async () => {
          /* keep: no body (what the route takes by default) */
          const r = await api.post<{ released?: number; deleted?: number }>(`/api/v1/accounts/${enc(user)}/lift`, choice === 'keep' ? undefined : { held: choice });
          props.onDone(liftResult(user, r ?? {}));
        }}>
        <p>1 account ({user}, score {fmtNumber(act?.a.score ?? 0)}) may relay mail again within a second. {heldText}</p>
        <fieldset class="choices">
          <legend>Held mail{heldN ? ` (${plural(heldN, 'recipient')})` : ''}</legend>
          {HELD_CHOICES.map((c) => (
            <label class="check"><input type="radio" name="held" value={c.value} checked={choice === c.value}
              onChange={() => setChoice(c.value)} /> {c.label}</label>
          ))}
        </fieldset>
      </FormDialog>
      <FormDialog open={act?.kind === 'trust'} title={`Trust ${user} for bulk mail?`} action="Trust" onClose={props.onClose}
        run={async () => {
          const t = trustUntil(date, Date.now());
          if ('error' in t) throw new Error(t.error);
          await api.put<Account>(`/api/v1/accounts/${enc(user)}/trust`, { until: t.until });
          props.onDone(`${user} is trusted for bulk mail until ${fmtTime(toMs(t.until))}.`);
        }}>
        <p>Until the end of that day the account's volume, bursts, identical content and new networks score nothing and its account rate limits do not apply. Sender bindings and the distinct senders and From: addresses still count.</p>
        <Field label="Trusted until" name="until" type="date" value={date} onInput={setDate} required
          hint={`The end of that day, local time; at most ${maxTrustDate(Date.now())}.`} />
      </FormDialog>
    </>
  );
}

/* The links and buttons of one account (a row of the list, the account page). */
function AccountActions(props: { a: Account; onAct: (act: Act) => void; held?: number; withPageLink?: boolean }) {
  const { a } = props;
  const st = accountState(a, Date.now());
  return (
    <div class="actions account-actions">
      <Link href={heldMailHref(a.user)} label={`Held mail of ${a.user}`}>Held mail</Link>
      <Link href={messageLogHref(a.user)} label={`Message log of ${a.user}`}>Message log</Link>
      {a.suspended ? (
        <Button kind="primary" label={`Lift suspension of ${a.user}`} onClick={() => props.onAct({ kind: 'lift', a, held: props.held })}>Lift suspension</Button>
      ) : (
        <Button kind="danger" label={`Suspend ${a.user} now`} onClick={() => props.onAct({ kind: 'suspend', a })}>Suspend now</Button>
      )}
      <Button label={`Trust ${a.user} for bulk mail`} onClick={() => props.onAct({ kind: 'trust', a })}>{st === 'trusted' ? 'Change trust…' : 'Trust for bulk mail…'}</Button>
      {toMs(a.trusted_until) !== null && toMs(a.trusted_until)! > Date.now() && (
        <Button kind="danger" label={`Remove trust of ${a.user}`} onClick={() => props.onAct({ kind: 'untrust', a })}>Remove trust</Button>
      )}
    </div>
  );
}

/* ---- the list ---- */

const SORT_COLS: { key: SortKey; label: string; num?: boolean }[] = [
  { key: 'name', label: 'User' }, { key: 'score', label: 'Score', num: true }, { key: 'volume', label: 'Volume 24 h', num: true },
];

function SortHeader(props: { col: { key: SortKey; label: string; num?: boolean }; sort: AccountSort; onSort: (k: SortKey) => void }) {
  const { col, sort } = props;
  const on = sort.sort === col.key;
  const dir = on ? (sort.order === 'asc' ? 'ascending' : 'descending') : 'none';
  return (
    <th scope="col" aria-sort={dir} class={col.num ? 'num' : undefined}>
      <button type="button" class="sort" onClick={() => props.onSort(col.key)}
        aria-label={`Sort by ${col.label.toLowerCase()}${on ? (sort.order === 'asc' ? ', now ascending' : ', now descending') : ''}`}>
        {col.label}{on ? (sort.order === 'asc' ? ' ▲' : ' ▼') : ''}
      </button>
    </th>
  );
}

const EMPTY: AccountFilter = { state: '', q: '' };

function Accounts(props: { onChange: () => void }) {
  const [form, setForm] = useState<AccountFilter>(EMPTY);
  const [filter, setFilter] = useState<AccountFilter>(EMPTY);
  const [sort, setSort] = useState<AccountSort>(DEFAULT_SORT);
  const [act, setAct] = useState<Act | null>(null);
  const [notice, setNotice] = useState('');
  const query = accountsQuery(sort, filter);
  const p = usePaged<Account>(JSON.stringify(query), (cursor) => api.get<List<Account>>('/api/v1/accounts', { ...query, cursor, limit: 50 }));
  const shown = p.items;
  const suspended = shown.filter((a) => a.suspended).length;
  const [hSort, hScore, hVolume] = SORT_COLS.map((c) => <SortHeader col={c} sort={sort} onSort={(k) => setSort(nextSort(sort, k))} />);
  return (
    <section>
      <h2>Accounts</h2>
      <form class="card form-grid filters" role="search" aria-label="Accounts filter" onSubmit={(e) => { e.preventDefault(); setFilter({ ...form }); }}>
        <Field label="State" name="state" value={form.state} onInput={(v) => setForm({ ...form, state: v as StateFilter })}
          options={[{ value: '', label: 'any' }, { value: 'suspended', label: 'suspended' }, { value: 'active', label: 'not suspended' }, { value: 'trusted', label: 'trusted for bulk mail' }]} />
        <Field label="Name contains" name="q" value={form.q} onInput={(v) => setForm({ ...form, q: v })} />
        <div class="actions">
          <Button type="submit" kind="primary">Apply filter</Button>
          <Button onClick={() => { setForm(EMPTY); setFilter(EMPTY); }}>Clear</Button>
        </div>
      </form>
      {!p.loading && shown.length > 0 && <p class="muted">{suspended === 0 ? 'No account on this page is suspended.' : `${suspended} suspended on this page.`}</p>}
      {notice && <p class="notice" role="status">{notice}</p>}
      <Results {...p} label="Accounts" query={describeAccounts(sort, filter)} page={p.page}
        empty={<p class="muted empty">{filter.state || filter.q ? 'No account matches.' : 'No submission account has sent mail yet.'}</p>}>
        {(items) => (
          <div class="table-wrap">
            <table class="accounts">
              <thead><tr>{hSort}<th scope="col">State</th>{hScore}{hVolume}<th scope="col">Last client</th>
                <th scope="col">AUTH failures</th><th scope="col">Actions</th></tr></thead>
              <tbody>{items.map((a) => (
                <tr data-user={a.user}>
                  <td class="addr"><Link href={accountHref(a.user)} label={a.user}>{a.user}</Link></td>
                  <td class="acct-state"><StateCell a={a} /></td>
                  <td class="num acct-score"><span class="score">{fmtNumber(a.score)}</span><Why signals={a.signals} /></td>
                  <td class="num">{a.volume_day ?? '—'}</td>
                  <td class="mono">{a.last_client ?? '—'}</td>
                  <td class="acct-auth"><AuthFailures a={a} /></td>
                  <td><AccountActions a={a} onAct={(x) => { setNotice(''); setAct(x); }} /></td>
                </tr>
              ))}</tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Accounts" />
      <ActionDialogs act={act} onClose={() => setAct(null)} onDone={(msg) => { setNotice(msg); p.reload(); props.onChange(); }} />
    </section>
  );
}

/* ---- alerts ---- */

function SignalsTable(props: { signals: Signal[]; caption?: string }) {
  if (props.signals.length === 0) return <p class="muted">No signals recorded.</p>;
  return (
    <div class="table-wrap">
      <table class="signals">
        {props.caption && <caption>{props.caption}</caption>}
        <thead><tr><th scope="col">Signal</th><th scope="col" class="num">Value</th><th scope="col" class="num">Weight</th><th scope="col" class="num">Points</th></tr></thead>
        <tbody>{props.signals.map((s) => (
          <tr data-signal={s.name} class={s.points > 0 ? 'scored' : undefined}>
            <td>{s.label} <small class="mono muted">{s.name}</small></td>
            <td class="num">{fmtNumber(s.value)}</td><td class="num">{fmtNumber(s.weight)}</td><td class="num">{fmtNumber(s.points)}</td>
          </tr>
        ))}</tbody>
      </table>
    </div>
  );
}

function AlertDetail(props: { a: AccountAlert }) {
  const { a } = props;
  const kind = a.kind ?? 'suspended';
  const action = alertAction(kind, a.action, fmtMs);
  return (
    <div class="details alert-detail" role="region" aria-label={`Alert ${a.id}`}>
      <dl class="headers">
        <dt>Detail</dt><dd>{a.detail ?? a.reason ?? '—'}</dd>
        {action && <><dt>Action</dt><dd>{action}</dd></>}
        <dt>Held</dt><dd>{a.held ? <>{plural(a.held, 'recipient')} (<Link href={heldMailHref(a.user)}>held mail of {a.user}</Link>)</> : 'nothing'}</dd>
        <dt>Notified</dt><dd class="notified">{notifiedText(kind, a.notified, fmtMs)}</dd>
      </dl>
      {(a.signals?.length ?? 0) > 0 && <><h3>Signals</h3><SignalsTable signals={a.signals!} /></>}
      {(a.clients?.length ?? 0) > 0 && (
        <>
          <h3>Client addresses</h3>
          <ul class="plain clients">{a.clients!.map((c) => (
            <li><span class="mono">{c.addr}</span> {plural(c.messages, 'message')}{c.new && <span class="kind new-net">new network</span>}</li>
          ))}</ul>
        </>
      )}
      {(a.samples?.length ?? 0) > 0 && (
        <>
          <h3>Sample messages</h3>
          <div class="table-wrap">
            <table class="samples">
              <thead><tr><th scope="col">Queue id</th><th scope="col">Sender</th><th scope="col">Recipient</th><th scope="col">Subject</th><th scope="col" class="num">Size</th></tr></thead>
              <tbody>{a.samples!.map((s) => (
                <tr>
                  <td class="mono">{s.qid ? <Link href={`/timeline/${enc(s.qid)}`} label={`Timeline of ${s.qid}`}>{s.qid}</Link> : '—'}</td>
                  <td class="addr">{s.sender === '' ? '<>' : s.sender}</td><td class="addr">{s.recipient}</td>
                  <td class="subject">{s.subject}</td><td class="num">{s.size}</td>
                </tr>
              ))}</tbody>
            </table>
          </div>
        </>
      )}
    </div>
  );
}

function AlertsTable(props: { items: AccountAlert[]; showUser: boolean }) {
  const [open, setOpen] = useState<number | null>(null);
  const cols = props.showUser ? 8 : 7;
  return (
    <div class="table-wrap">
      <table class="alerts">
        <thead><tr><th scope="col">Time</th>{props.showUser && <th scope="col">User</th>}<th scope="col">Kind</th><th scope="col" class="num">Score</th>
          <th scope="col" class="num">Held</th><th scope="col">By</th><th scope="col">Reason</th><th scope="col">Details</th></tr></thead>
        <tbody>{props.items.map((a) => (
          <>
            <tr data-id={a.id} class={open === a.id ? 'open' : undefined}>
              <td class="nowrap">{when(a.ts)}</td>
              {props.showUser && <td class="addr"><Link href={accountHref(a.user)}>{a.user}</Link></td>}
              <td><span class={`kind alert-${a.kind ?? 'suspended'}`}>{a.kind ?? 'suspended'}</span></td>
              <td class="num">{a.score === null || a.score === undefined ? '—' : fmtNumber(a.score)}</td>
              <td class="num">{a.held ?? 0}</td>
              <td>{a.actor ?? ''}</td>
              <td class="alert-reason">{a.detail ?? a.reason ?? ''}</td>
              <td><Button label={`Details of alert ${a.id}`} onClick={() => setOpen(open === a.id ? null : a.id)}>{open === a.id ? 'Hide' : 'Show'}</Button></td>
            </tr>
            {open === a.id && <tr class="open"><td colSpan={cols}><AlertDetail a={a} /></td></tr>}
          </>
        ))}</tbody>
      </table>
    </div>
  );
}

function Alerts(props: { version: number }) {
  const p = usePaged<AccountAlert>(`al|${props.version}`, (cursor) =>
    api.get<List<AccountAlert>>('/api/v1/accounts/alerts', { cursor, limit: 25 }));
  return (
    <section>
      <h2>Recent alerts</h2>
      <Results {...p} label="Alerts" query="all alerts, newest first" page={p.page} empty={<p class="muted empty">No alerts.</p>}>
        {(items) => <AlertsTable items={items} showUser />}
      </Results>
      <Pager p={p} label="Alerts" />
    </section>
  );
}

/* ---- one account ---- */

function AccountView(props: { user: string }) {
  const { user } = props;
  const [ver, setVer] = useState(0);
  const [act, setAct] = useState<Act | null>(null);
  const [notice, setNotice] = useState('');
  const r = useKeyed<AccountDetail>(JSON.stringify([user, ver]), () => api.get<AccountDetail>(`/api/v1/accounts/${enc(user)}`));
  return (
    <section>
      <PageTitle>Account {user}</PageTitle>
      <p><Link href="/accounts">All accounts</Link></p>
      {notice && <p class="notice" role="status">{notice}</p>}
      <Results label="Account" query={`account ${user}`} loading={r.loading} error={r.error} items={r.data ? [r.data] : null}
        empty={<p class="muted">No such account.</p>}>
        {([a]) => (
          <>
            <section class="card">
              <dl class="headers account-summary">
                <dt>State</dt><dd class="acct-state"><StateCell a={a} /></dd>
                <dt>Score</dt><dd><span class="score">{fmtNumber(a.score)}</span> <Why signals={a.signals} /></dd>
                <dt>Volume 24 h</dt><dd>{a.volume_day ?? '—'} messages</dd>
                <dt>Last client</dt><dd class="mono">{a.last_client ?? '—'}</dd>
                <dt>AUTH failures</dt><dd class="acct-auth"><AuthFailures a={a} /></dd>
                <dt>Totals</dt><dd>{Object.keys(a.window ?? {}).length === 0 ? '—' : Object.entries(a.window)
                  .filter(([k]) => k !== 'updated').map(([k, v]) => `${v} ${k.replace(/_/g, ' ')}`).join(', ')}
                  {a.window?.updated ? `; updated ${when(a.window.updated)}` : ''}</dd>
                <dt>Held</dt><dd class="acct-held">{plural(a.held ?? 0, 'recipient')} held — <Link href={heldMailHref(a.user)}>held mail of {a.user}</Link></dd>
              </dl>
              <AccountActions a={a} held={a.held} onAct={(x) => { setNotice(''); setAct(x); }} />
            </section>
            <section class="acct-part">
              <h2>Signals</h2>
              <p class="muted">The parts of the last score: each signal's value times its weight gives its points.</p>
              <SignalsTable signals={a.signals ?? []} />
            </section>
            <section class="acct-part">
              <h2>Networks</h2>
              {(a.networks ?? []).length === 0 ? <p class="muted">No client network recorded.</p> : (
                <div class="table-wrap">
                  <table class="networks">
                    <thead><tr><th scope="col">Network</th><th scope="col">First seen</th><th scope="col">Last seen</th><th scope="col" class="num">Messages</th></tr></thead>
                    <tbody>{a.networks.map((n) => (
                      <tr><td class="mono">{n.net}</td><td class="nowrap">{when(n.first_seen)}</td><td class="nowrap">{when(n.last_seen)}</td><td class="num">{n.messages}</td></tr>
                    ))}</tbody>
                  </table>
                </div>
              )}
            </section>
            <section class="acct-part">
              <h2>Recent alerts</h2>
              {(a.alerts ?? []).length === 0 ? <p class="muted">No alerts.</p> : <AlertsTable items={a.alerts} showUser={false} />}
            </section>
          </>
        )}
      </Results>
      <ActionDialogs act={act} onClose={() => setAct(null)} onDone={(msg) => { setNotice(msg); setVer((v) => v + 1); }} />
    </section>
  );
}

export function AccountsPage() {
  const path = usePath();
  const [version, setVersion] = useState(0);
  const user = userOfPath(path);
  if (user) return <AccountView key={user} user={user} />;
  return (
    <section>
      <PageTitle>Accounts</PageTitle>
      <p class="muted">Authenticated-submission accounts: the abuse score of the last window and why, the volume of the last 24 hours, failed SMTP AUTH logins, suspensions and trust for bulk mail.</p>
      <Accounts onChange={() => setVersion((v) => v + 1)} />
      <Alerts version={version} />
    </section>
  );
}
