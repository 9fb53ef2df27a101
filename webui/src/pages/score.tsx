// The spam score (docs/score.md): the global thresholds and weights (the score_*
// policy settings, saved one by one like the Settings page) and the overrides per
// domain and per directory user (/api/v1/score/thresholds), with add, change and
// delete. An empty value in an override inherits: a user's from their domain's
// row, a domain's from the global setting.
import { useEffect, useState } from 'preact/hooks';
import { api, type Setting } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, Loading, PageTitle,
} from '../ui';
import { SettingRow } from './settings';

export interface ScoreThresholds {
  tag: number;
  quarantine: number;
  refuse: number;
  greylist: number;
}

export interface ScoreOverride {
  id: number;
  scope: 'domain' | 'user';
  name: string;
  tag: number | null;
  quarantine: number | null;
  refuse: number | null;
  greylist: number | null;
  updated: number;
}

const VALUES = ['tag', 'quarantine', 'refuse', 'greylist'] as const;
type Value = (typeof VALUES)[number];
const LABELS: Record<Value, string> = {
  tag: 'Tag at', quarantine: 'Quarantine at', refuse: 'Refuse at', greylist: 'Greylist from',
};
/* The settings this page shows, in this order; the rest stay on the Settings page. */
const KEYS = [
  'score_enabled', 'sender_auth', 'score_headers', 'score_tag', 'score_tag_subject', 'score_quarantine',
  'score_refuse', 'score_greylist', 'score_spf_pass', 'score_spf_fail', 'score_spf_softfail', 'score_dkim_pass',
  'score_dkim_fail', 'score_dmarc_pass', 'score_dmarc_fail', 'score_dmarc_fail_none', 'score_bayes_spam',
  'score_bayes_ham', 'score_account',
];
const SCOPES = [{ value: 'domain', label: 'domain' }, { value: 'user', label: 'directory user' }];

type Form = Record<Value, string> & { scope: string; name: string };

function OverrideForm(props: { row?: ScoreOverride; global: ScoreThresholds; onDone: () => void; onCancel?: () => void }) {
  const r = props.row;
  const [f, setF] = useState<Form>({
    scope: r?.scope ?? 'domain', name: r?.name ?? '',
    tag: r?.tag == null ? '' : String(r.tag), quarantine: r?.quarantine == null ? '' : String(r.quarantine),
    refuse: r?.refuse == null ? '' : String(r.refuse), greylist: r?.greylist == null ? '' : String(r.greylist),
  });
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const set = (k: keyof Form) => (v: string) => setF({ ...f, [k]: v });
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    const body: Record<string, number | string | null> = {};
    for (const k of VALUES) {
      const t = f[k].trim();
      const n = Number(t);
      /* A non-number goes as typed: the server names the field. */
      body[k] = t === '' ? null : Number.isFinite(n) ? n : t;
    }
    try {
      await api.put(`/api/v1/score/thresholds/${encodeURIComponent(f.scope)}/${encodeURIComponent(f.name.trim())}`, body);
      props.onDone();
    } catch (err) {
      setErrors(errorsOf(err));
    } finally {
      setBusy(false);
    }
  }
  const title = r ? `Change ${r.scope} ${r.name}` : 'Add an override';
  return (
    <form class="card form-grid" aria-label={title} onSubmit={submit}>
      <h2>{title}</h2>
      {!r && <Field label="Scope" name="scope" value={f.scope} onInput={set('scope')} errors={errors} options={SCOPES} />}
      {!r && <Field label={f.scope === 'user' ? 'User name' : 'Domain'} name="name" value={f.name} onInput={set('name')}
        errors={errors} required placeholder={f.scope === 'user' ? 'alice' : 'example.com'}
        hint={f.scope === 'user' ? "the user's primary address and aliases" : 'exactly this domain, not its subdomains'} />}
      {VALUES.map((k) => (
        <Field key={k} label={LABELS[k]} name={k} value={f[k]} onInput={set(k)} errors={errors}
          hint={`empty: inherit (global ${props.global[k]})`} />
      ))}
      <FormError errors={errors} fields={['scope', 'name', ...VALUES]} />
      <div class="actions">
        <Button type="submit" kind="primary" busy={busy}>{r ? 'Save' : 'Add override'}</Button>
        {props.onCancel && <Button onClick={props.onCancel} disabled={busy}>Cancel</Button>}
      </div>
    </form>
  );
}

function shown(v: number | null) {
  return v == null ? <span class="muted">inherits</span> : String(v);
}

export function ScorePage() {
  const [settings, setSettings] = useState<Setting[] | null>(null);
  const [global, setGlobal] = useState<ScoreThresholds | null>(null);
  const [rows, setRows] = useState<ScoreOverride[] | null>(null);
  const [err, setErr] = useState('');
  const [editing, setEditing] = useState<number | null>(null);
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    api.get<{ items: Setting[] }>('/api/v1/policy/settings').then(
      (r) => setSettings(KEYS.map((k) => r.items.find((s) => s.key === k)).filter((s): s is Setting => !!s)),
      (e) => setErr(Object.values(errorsOf(e))[0]));
    api.get<{ global: ScoreThresholds; items: ScoreOverride[] }>('/api/v1/score/thresholds').then(
      (r) => { setGlobal(r.global); setRows(r.items); },
      (e) => setErr(Object.values(errorsOf(e))[0]));
  }, [tick]);
  const reload = () => { setEditing(null); setTick(tick + 1); };
  const row = rows?.find((x) => x.id === editing);
  return (
    <section>
      <PageTitle>Spam score</PageTitle>
      <p class="muted">
        Every message gets a score, the sum of named parts. At or above a recipient's thresholds it is tagged, quarantined
        (kind spam) or refused; inbound mail from the greylist threshold to below the refuse threshold is greylisted.
        A user's override beats their domain's, which beats the global value. Changes apply to the next message.
      </p>
      {err && <p class="error" role="alert">{err}</p>}
      <h2>Overrides per domain and user</h2>
      {!rows || !global ? <Loading what="thresholds" /> : rows.length === 0 ? <p class="muted">No overrides: every recipient has the global thresholds.</p> : (
        <div class="table-wrap">
          <table aria-label="Threshold overrides">
            <thead><tr>
              <th scope="col">Scope</th><th scope="col">Name</th>
              {VALUES.map((k) => <th scope="col" class="num">{LABELS[k]}</th>)}
              <th scope="col">Changed</th><th scope="col">Actions</th>
            </tr></thead>
            <tbody>
              {rows.map((o) => (
                <tr>
                  <td>{o.scope}</td><td class="mono">{o.name}</td>
                  {VALUES.map((k) => <td class="num">{shown(o[k])}</td>)}
                  <td>{fmtTime(o.updated)}</td>
                  <td class="actions">
                    <Button onClick={() => setEditing(o.id)} label={`Change ${o.scope} ${o.name}`}>Change</Button>
                    <Button kind="danger" label={`Delete ${o.scope} ${o.name}`} onClick={() => setConfirm({
                      title: `Delete the override of ${o.name}?`,
                      body: `This removes 1 override (${o.scope} ${o.name}); its recipients inherit the thresholds again from the next message.`,
                      action: 'Delete 1 override',
                      run: async () => { await api.del(`/api/v1/score/thresholds/${o.scope}/${encodeURIComponent(o.name)}`); reload(); },
                    })}>Delete</Button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {global && (row ? <OverrideForm key={`e${row.id}`} row={row} global={global} onDone={reload} onCancel={() => setEditing(null)} />
        : <OverrideForm key={`new${tick}`} global={global} onDone={reload} />)}
      <h2>Global thresholds and weights</h2>
      {!settings ? <Loading what="settings" /> : (
        <div class="settings">
          {settings.map((s) => (
            <SettingRow key={s.key} s={s} onChange={() => setTick(tick + 1)} />
          ))}
        </div>
      )}
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
