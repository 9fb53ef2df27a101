// Greylisting (docs/score.md, "Greylisting"): its settings (through
// /api/v1/policy/settings), the triplets waiting or passed with filters and
// delete (/api/v1/greylist), and the auto-allowed client networks
// (/api/v1/greylist/allowed). Counts come from the server's `total`.
import { useEffect, useState } from 'preact/hooks';
import { api, request, type Setting } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, Loading, PageTitle, Pager,
  plural, Results, usePaged,
} from '../ui';

interface Triplet {
  id: number;
  network: string;
  sender: string;
  recipient: string;
  state: 'waiting' | 'passed';
  first_seen: number;
  last_seen: number;
  attempts: number;
  passed_at: number | null;
  passes: number;
  expires: number;
}

interface AllowedNet {
  id: number;
  network: string;
  passes: number;
  first_seen: number;
  last_seen: number;
  expires: number;
}

interface Counted<T> {
  items: T[];
  next_cursor: string | null;
  total: number;
}

const KEYS = ['score_greylist', 'greylist_delay', 'greylist_window', 'greylist_lifetime', 'greylist_auto_allow'];
const LABELS: Record<string, string> = {
  score_greylist: 'Greylist from score',
  greylist_delay: 'Delay (seconds)',
  greylist_window: 'Retry window (seconds)',
  greylist_lifetime: 'Remember passed for (seconds)',
  greylist_auto_allow: 'Auto-allow a network after passes',
};

function SettingForm(props: { s: Setting; onChange: () => void }) {
  const { s } = props;
  const [value, setValue] = useState(s.value);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [said, setSaid] = useState('');
  useEffect(() => setValue(s.value), [s.value]);
  const range = s.min !== undefined ? ` (${s.min}…${s.max})` : '';
  async function run(what: () => Promise<unknown>, done: string) {
    setBusy(true); setErrors({}); setSaid('');
    try {
      await what();
      setSaid(done);
      props.onChange();
    } catch (err) {
      setErrors({ [s.key]: Object.values(errorsOf(err))[0] });
    } finally { setBusy(false); }
  }
  const path = `/api/v1/policy/settings/${encodeURIComponent(s.key)}`;
  return (
    <form class="setting" aria-label={s.key} onSubmit={(e) => { e.preventDefault(); run(() => api.put(path, { value }), 'Saved.'); }}>
      <Field label={LABELS[s.key] ?? s.key} name={s.key} value={value} onInput={setValue} errors={errors}
        type={s.type === 'int' ? 'number' : 'text'}
        hint={`${s.key}: ${s.summary}${range} — default ${s.default}${s.source === 'set' ? '; set here' : ''}`} />
      <div class="actions">
        <Button type="submit" kind="primary" busy={busy} disabled={value === s.value}>Save</Button>
        <Button onClick={() => run(() => api.del(path), 'Back to the default.')} disabled={busy || s.source === 'default'}>Reset</Button>
        <span role="status" class="muted">{said}</span>
      </div>
    </form>
  );
}

function Settings() {
  const [all, setAll] = useState<Setting[] | null>(null);
  const [err, setErr] = useState('');
  const [tick, setTick] = useState(0);
  /* the rows stay while a reload runs, so a row's "Saved." is not lost with it */
  useEffect(() => {
    api.get<{ items: Setting[] }>('/api/v1/policy/settings').then((r) => { setAll(r.items); setErr(''); },
      (e) => setErr(Object.values(errorsOf(e))[0]));
  }, [tick]);
  const items = (all ?? []).filter((s) => KEYS.includes(s.key)).sort((a, b) => KEYS.indexOf(a.key) - KEYS.indexOf(b.key));
  return (
    <section class="card" aria-labelledby="gl-settings">
      <h2 id="gl-settings">Settings</h2>
      <p class="muted">Inbound mail scoring from “Greylist from score” up to the refuse threshold is greylisted.
        A change applies to the next SMTP connection.</p>
      {err && <p class="error" role="alert">{err}</p>}
      {!all ? <Loading what="settings" /> : (
        <div class="settings">{items.map((s) => <SettingForm key={s.key} s={s} onChange={() => setTick((t) => t + 1)} />)}</div>
      )}
    </section>
  );
}

interface Filter { network: string; sender: string; recipient: string; state: string }
const EMPTY: Filter = { network: '', sender: '', recipient: '', state: '' };

function describe(f: Filter): string {
  const parts = (['state', 'network', 'sender', 'recipient'] as (keyof Filter)[]).filter((k) => f[k]).map((k) => `${k} ${f[k]}`);
  return parts.length ? `triplets with ${parts.join(', ')}` : 'all triplets';
}

function Triplets(props: { confirm: (c: ConfirmState) => void }) {
  const [form, setForm] = useState<Filter>(EMPTY);
  const [filter, setFilter] = useState<Filter>(EMPTY);
  const [total, setTotal] = useState<number | null>(null);
  const p = usePaged<Triplet>(JSON.stringify(filter), async (cursor) => {
    const r = await api.get<Counted<Triplet>>('/api/v1/greylist', { ...filter, cursor, limit: 50 });
    setTotal(r.total);
    return r;
  });
  const set = (k: keyof Filter) => (v: string) => setForm({ ...form, [k]: v });
  const fe = p.errors;
  const query = describe(filter);
  return (
    <section aria-labelledby="gl-triplets">
      <h2 id="gl-triplets">Triplets</h2>
      <form class="card form-grid filters" role="search" aria-label="Greylist search"
        onSubmit={(e) => { e.preventDefault(); setFilter({ ...form }); }}>
        <Field label="Client network" name="network" value={form.network} onInput={set('network')} errors={fe}
          hint="an address or its /24 (IPv6: /64)" />
        <Field label="Sender" name="sender" value={form.sender} onInput={set('sender')} errors={fe} hint="exact; <> the null sender; a domain when SPF passed" />
        <Field label="Recipient" name="recipient" value={form.recipient} onInput={set('recipient')} errors={fe} />
        <Field label="State" name="state" value={form.state} onInput={set('state')} errors={fe}
          options={[{ value: '', label: 'any' }, { value: 'waiting', label: 'waiting' }, { value: 'passed', label: 'passed' }]} />
        <FormError errors={fe} fields={['network', 'sender', 'recipient', 'state']} />
        <div class="actions">
          <Button type="submit" kind="primary">Search</Button>
          <Button onClick={() => { setForm(EMPTY); setFilter(EMPTY); }}>Clear</Button>
          <Button kind="danger" disabled={!total} onClick={() => props.confirm({
            title: 'Delete every triplet?',
            body: `This forgets ${plural(total ?? 0, 'triplet')}, waiting and passed, whatever the search shows: every sender is greylisted again at its next message.`,
            action: `Delete ${plural(total ?? 0, 'triplet')}`,
            run: async () => { await request('DELETE', '/api/v1/greylist', { confirm: true }); p.reload(); },
          })}>Delete all…</Button>
        </div>
      </form>
      <Results label="Greylist triplets" query={query} page={p.page} loading={p.loading} error={p.error} items={p.items}
        errorShown={Object.keys(fe).some((k) => k in EMPTY)} empty={<p class="muted">No triplets.</p>}>
        {(items) => (
          <>
            <p class="muted">{plural(total ?? items.length, 'triplet')} in all.</p>
            <div class="table-wrap">
              <table>
                <thead><tr>
                  <th scope="col">Network</th><th scope="col">Sender</th><th scope="col">Recipient</th><th scope="col">State</th>
                  <th scope="col">First seen</th><th scope="col">Last seen</th><th scope="col" class="num">Attempts</th>
                  <th scope="col" class="num">Passed</th><th scope="col">Expires</th><th scope="col">Actions</th>
                </tr></thead>
                <tbody>
                  {items.map((t) => (
                    <tr key={t.id}>
                      <td class="mono">{t.network}</td><td>{t.sender}</td><td>{t.recipient}</td>
                      <td>{t.state === 'passed' ? `passed ${fmtTime(t.passed_at)}` : 'waiting'}</td>
                      <td>{fmtTime(t.first_seen)}</td><td>{fmtTime(t.last_seen)}</td>
                      <td class="num">{t.attempts}</td><td class="num">{t.passes}</td><td>{fmtTime(t.expires)}</td>
                      <td class="actions">
                        <Button kind="danger" label={`Delete ${t.sender} to ${t.recipient} from ${t.network}`} onClick={() => props.confirm({
                          title: 'Delete this triplet?',
                          body: `Mail from ${t.sender} to ${t.recipient} through ${t.network} will be greylisted again at its next message.`,
                          action: 'Delete 1 triplet',
                          run: async () => { await api.del(`/api/v1/greylist/${t.id}`); p.reload(); },
                        })}>Delete</Button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )}
      </Results>
      <Pager p={p} label="Triplets" />
    </section>
  );
}

function Allowed(props: { confirm: (c: ConfirmState) => void }) {
  const [meta, setMeta] = useState<{ total: number; auto_allow: number } | null>(null);
  const p = usePaged<AllowedNet>('allowed', async (cursor) => {
    const r = await api.get<Counted<AllowedNet> & { auto_allow: number }>('/api/v1/greylist/allowed', { cursor, limit: 50 });
    setMeta({ total: r.total, auto_allow: r.auto_allow });
    return r;
  });
  return (
    <section aria-labelledby="gl-allowed">
      <h2 id="gl-allowed">Auto-allowed networks</h2>
      {meta && <p class="muted">{meta.auto_allow === 0 ? 'Auto-allow is off (greylist_auto_allow 0).'
        : `A network is allowed once ${plural(meta.auto_allow, 'triplet')} passed; ${plural(meta.total, 'network')} allowed now.`}</p>}
      <Results label="Auto-allowed networks" query="auto-allowed networks" page={p.page} loading={p.loading} error={p.error}
        items={p.items} empty={<p class="muted">No network is auto-allowed.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table>
              <thead><tr>
                <th scope="col">Network</th><th scope="col" class="num">Passed triplets</th><th scope="col">First passed</th>
                <th scope="col">Last use</th><th scope="col">Expires</th><th scope="col">Actions</th>
              </tr></thead>
              <tbody>
                {items.map((n) => (
                  <tr key={n.id}>
                    <td class="mono">{n.network}</td><td class="num">{n.passes}</td><td>{fmtTime(n.first_seen)}</td>
                    <td>{fmtTime(n.last_seen)}</td><td>{fmtTime(n.expires)}</td>
                    <td class="actions">
                      <Button kind="danger" label={`Delete ${n.network}`} onClick={() => props.confirm({
                        title: `Greylist ${n.network} again?`,
                        body: `This forgets 1 network (${n.network}) and its ${plural(n.passes, 'pass', 'passes')}: its mail is greylisted again.`,
                        action: 'Delete 1 network',
                        run: async () => { await api.del(`/api/v1/greylist/allowed/${n.id}`); p.reload(); },
                      })}>Delete</Button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Networks" />
    </section>
  );
}

export function GreylistPage() {
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  return (
    <section>
      <PageTitle>Greylist</PageTitle>
      <Settings />
      <Triplets confirm={setConfirm} />
      <Allowed confirm={setConfirm} />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
