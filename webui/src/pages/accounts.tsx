// Submission accounts (/api/v1/accounts): score, counters of the current
// window and suspension state; recent alerts (/api/v1/accounts/alerts); lift a
// suspension (POST /api/v1/accounts/{user}/lift) after a confirmation.
import { useState } from 'preact/hooks';
import { api, type Account, type AccountAlert, type List } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, fmtTime, PageTitle, Pager, Results, usePaged,
} from '../ui';

/* "messages_hour" -> "messages hour" */
function counterLabel(k: string): string {
  return k.replace(/_/g, ' ');
}

/* window fields that are instants (unix ms), not counts */
function isTime(k: string): boolean {
  return k === 'updated' || k === 'start' || k.endsWith('_at');
}

function fmtScore(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function Accounts(props: { onChange: () => void }) {
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const [notice, setNotice] = useState('');
  const p = usePaged<Account>('a', (cursor) => api.get<List<Account>>('/api/v1/accounts', { cursor, limit: 50 }));
  const shown = p.items;
  const suspended = shown.filter((a) => a.suspended).length;
  return (
    <section>
      <h2>Accounts</h2>
      {!p.loading && shown.length > 0 && <p class="muted">{suspended === 0 ? 'No account on this page is suspended.' : `${suspended} suspended on this page.`}</p>}
      {notice && <p class="notice" role="status">{notice}</p>}
      <Results {...p} label="Accounts" query="all accounts" empty={<p class="muted empty">No submission account has sent mail yet.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table class="accounts">
              <thead><tr><th scope="col">User</th><th scope="col">State</th><th scope="col" class="num">Score</th>
                <th scope="col">Counters</th><th scope="col">Suspended at</th><th scope="col">Reason</th><th scope="col">Actions</th></tr></thead>
              <tbody>{items.map((a) => (
                <tr>
                  <td>{a.user}</td>
                  <td><span class={`state ${a.suspended ? 'dead' : ''}`}>{a.suspended ? 'suspended' : 'active'}</span></td>
                  <td class="num">{fmtScore(a.score)}</td>
                  <td>{Object.keys(a.window ?? {}).length === 0 ? '—' : (
                    <dl class="counters">{Object.entries(a.window).map(([k, v]) => <><dt>{counterLabel(k)}</dt><dd>{isTime(k) ? fmtTime(v) : String(v)}</dd></>)}</dl>
                  )}</td>
                  <td>{fmtTime(a.suspended_at)}</td>
                  <td>{a.reason ?? ''}</td>
                  <td>{a.suspended && (
                    <Button kind="primary" label={`Lift suspension of ${a.user}`} onClick={() => setConfirm({
                      title: `Lift the suspension of ${a.user}?`,
                      body: `1 account (${a.user}, score ${fmtScore(a.score)}) may relay mail again within a second. Mail it sent while suspended stays held in the queue.`,
                      action: 'Lift suspension',
                      run: async () => {
                        await api.post<Account>(`/api/v1/accounts/${encodeURIComponent(a.user)}/lift`); /* takes no body */
                        setNotice(`Suspension of ${a.user} lifted.`);
                        p.reload();
                        props.onChange();
                      },
                    })}>Lift suspension</Button>
                  )}</td>
                </tr>
              ))}</tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Accounts" />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}

function Alerts(props: { version: number }) {
  const p = usePaged<AccountAlert>(`al|${props.version}`, (cursor) =>
    api.get<List<AccountAlert>>('/api/v1/accounts/alerts', { cursor, limit: 25 }));
  return (
    <section>
      <h2>Recent alerts</h2>
      <Results {...p} label="Alerts" query="all alerts, newest first" empty={<p class="muted empty">No alerts.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table class="alerts">
              <thead><tr><th scope="col">Time</th><th scope="col">User</th><th scope="col" class="num">Score</th><th scope="col">Reason</th></tr></thead>
              <tbody>{items.map((a) => (
                <tr><td>{fmtTime(a.ts)}</td><td>{a.user}</td><td class="num">{fmtScore(a.score)}</td><td>{a.reason}</td></tr>
              ))}</tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Alerts" />
    </section>
  );
}

export function AccountsPage() {
  const [version, setVersion] = useState(0);
  return (
    <section>
      <PageTitle>Accounts</PageTitle>
      <p class="muted">Authenticated-submission accounts: the abuse score of the last window, its counters, and suspensions.</p>
      <Accounts onChange={() => setVersion((v) => v + 1)} />
      <Alerts version={version} />
    </section>
  );
}
