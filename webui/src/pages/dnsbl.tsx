// DNS blocklist sites (/api/v1/policy/dnsbl): add, change (custom rejection
// message, action, enabled, codes, weight), delete; hit statistics per site.
import { useEffect, useState } from 'preact/hooks';
import { api, type DnsblSite, type List } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, Loading, PageTitle,
} from '../ui';

const KINDS = [{ value: 'block', label: 'block list' }, { value: 'allow', label: 'allow list' }];
const ACTIONS = [{ value: 'refuse', label: 'refuse' }, { value: 'tag', label: 'tag' }, { value: 'log', label: 'log only' }];

interface Form {
  zone: string;
  kind: string;
  action: string;
  enabled: string;
  message: string;
  codes: string;
  weight: string;
  comment: string;
}

function SiteForm(props: { site?: DnsblSite; onDone: () => void; onCancel?: () => void }) {
  const s = props.site;
  const [f, setF] = useState<Form>({
    zone: s?.zone ?? '', kind: s?.kind ?? 'block', action: s?.action ?? 'refuse', enabled: s ? String(s.enabled) : 'true',
    message: s?.message ?? '', codes: s?.codes ?? '', weight: String(s?.weight ?? 1), comment: s?.comment ?? '',
  });
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const set = (k: keyof Form) => (v: string) => setF({ ...f, [k]: v });
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    const weight = Number(f.weight);
    const body: Record<string, unknown> = {
      kind: f.kind, action: f.action, enabled: f.enabled === 'true', message: f.message, comment: f.comment,
      weight: Number.isInteger(weight) ? weight : f.weight,
    };
    if (f.codes.trim()) body.codes = f.codes.trim();
    try {
      if (s) await api.patch(`/api/v1/policy/dnsbl/${encodeURIComponent(s.zone)}`, body);
      else await api.post('/api/v1/policy/dnsbl', { zone: f.zone, ...body });
      props.onDone();
    } catch (err) {
      setErrors(errorsOf(err));
    } finally {
      setBusy(false);
    }
  }
  const fields = ['zone', 'kind', 'action', 'enabled', 'message', 'codes', 'weight', 'comment'];
  return (
    <form class="card form-grid" aria-label={s ? `Change ${s.zone}` : 'Add a site'} onSubmit={submit}>
      <h2>{s ? `Change ${s.zone}` : 'Add a site'}</h2>
      {!s && <Field label="Zone" name="zone" value={f.zone} onInput={set('zone')} errors={errors} required placeholder="zen.spamhaus.org" />}
      <Field label="Kind" name="kind" value={f.kind} onInput={set('kind')} errors={errors} options={KINDS} />
      <Field label="Action on a hit" name="action" value={f.action} onInput={set('action')} errors={errors} options={ACTIONS} />
      <Field label="Enabled" name="enabled" value={f.enabled} onInput={set('enabled')} errors={errors}
        options={[{ value: 'true', label: 'yes' }, { value: 'false', label: 'no' }]} />
      <Field label="Rejection message" name="message" value={f.message} onInput={set('message')} errors={errors}
        hint="{ip} and {zone} are expanded; empty for the default text." />
      <Field label="Answer codes" name="codes" value={f.codes} onInput={set('codes')} errors={errors} hint={s ? "which answers count as a hit" : "empty: the default (127.0.0.2-127.0.0.255)"} />
      <Field label="Weight" name="weight" type="number" value={f.weight} onInput={set('weight')} errors={errors} />
      <Field label="Comment" name="comment" value={f.comment} onInput={set('comment')} errors={errors} />
      <FormError errors={errors} fields={fields} />
      <div class="actions">
        <Button type="submit" kind="primary" busy={busy}>{s ? 'Save' : 'Add site'}</Button>
        {props.onCancel && <Button onClick={props.onCancel} disabled={busy}>Cancel</Button>}
      </div>
    </form>
  );
}

export function DnsblPage() {
  const [sites, setSites] = useState<DnsblSite[] | null>(null);
  const [err, setErr] = useState('');
  const [editing, setEditing] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    api.get<List<DnsblSite>>('/api/v1/policy/dnsbl').then((l) => { setSites(l.items); setErr(''); },
      (e) => setErr(Object.values(errorsOf(e))[0]));
  }, [tick]);
  const reload = () => { setEditing(null); setTick(tick + 1); };
  const site = sites?.find((x) => x.zone === editing);
  return (
    <section>
      <PageTitle>DNS blocklists</PageTitle>
      {err && <p class="error" role="alert">{err}</p>}
      {!sites ? <Loading what="sites" /> : sites.length === 0 ? <p class="muted">No sites yet.</p> : (
        <div class="table-wrap">
          <table>
            <thead><tr>
              <th scope="col">Zone</th><th scope="col">Kind</th><th scope="col">Action</th><th scope="col">Enabled</th>
              <th scope="col">Message</th><th scope="col" class="num">Hits today</th><th scope="col" class="num">Hits</th>
              <th scope="col" class="num">Queries</th><th scope="col" class="num">Temp. failures</th><th scope="col">Last hit</th><th scope="col">Actions</th>
            </tr></thead>
            <tbody>
              {sites.map((d) => (
                <tr>
                  <td class="mono">{d.zone}</td><td>{d.kind}</td><td>{d.action}</td><td>{d.enabled ? 'yes' : 'no'}</td>
                  <td>{d.message || <span class="muted">default</span>}</td>
                  <td class="num">{d.stats.hits_today}</td><td class="num">{d.stats.hits}</td><td class="num">{d.stats.queries}</td>
                  <td class="num">{d.stats.tempfails}</td><td>{fmtTime(d.stats.last_hit)}</td>
                  <td class="actions">
                    <Button onClick={() => setEditing(d.zone)} label={`Change ${d.zone}`}>Change</Button>
                    <Button kind="danger" label={`Delete ${d.zone}`} onClick={() => setConfirm({
                      title: `Delete ${d.zone}?`,
                      body: `This removes 1 site (${d.zone}) and its statistics; connections are no longer checked against it.`,
                      action: 'Delete 1 site',
                      run: async () => { await api.del(`/api/v1/policy/dnsbl/${encodeURIComponent(d.zone)}`); reload(); },
                    })}>Delete</Button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {site ? <SiteForm key={site.zone} site={site} onDone={reload} onCancel={() => setEditing(null)} /> : <SiteForm key={`new${tick}`} onDone={reload} />}
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
