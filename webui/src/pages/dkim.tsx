// DKIM signing keys (docs/sender-auth.md, "Signing"; /api/v1/dkim/keys): the keys with
// the DNS record each needs (a copy button), generating one for a local domain,
// enable/disable, delete with a confirmation. The private key never reaches the console.
import { useState } from 'preact/hooks';
import { api, type Entry, type List } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, Loading, PageTitle,
  plural, useKeyed,
} from '../ui';

export interface DkimKey {
  id: number;
  domain: string;
  selector: string;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  bits: number;
  enabled: boolean;
  created_at: number;
  record_name: string;
  record_value: string;
  record_zone: string;
}

function CopyButton(props: { text: string; label: string }) {
  const [said, setSaid] = useState('');
  return (
    <>
      <Button label={props.label} onClick={async () => {
        try {
          await navigator.clipboard.writeText(props.text);
          setSaid('Copied.');
        } catch {
          setSaid('Copying is not allowed here: select the text and copy it.');
        }
      }}>Copy</Button>
      <span role="status" class="muted">{said}</span>
    </>
  );
}

function Record(props: { k: DkimKey }) {
  const { k } = props;
  return (
    <div class="dkim-record">
      <p>Publish a TXT record at <code>{k.record_name}</code>:</p>
      <textarea class="mono" readOnly rows={k.algorithm === 'rsa-sha256' ? 4 : 2} value={k.record_zone}
        aria-label={`DNS record of ${k.selector} for ${k.domain}`}
        onFocus={(e) => (e.target as HTMLTextAreaElement).select()} />
      <div class="actions">
        <CopyButton text={k.record_zone} label={`Copy the record of ${k.selector} for ${k.domain}`} />
      </div>
    </div>
  );
}

function Generate(props: { domains: string[]; onDone: (k: DkimKey) => void }) {
  const [domain, setDomain] = useState('');
  const [selector, setSelector] = useState('');
  const [algorithm, setAlgorithm] = useState('rsa-sha256');
  const [bits, setBits] = useState('2048');
  const [enabled, setEnabled] = useState('true');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const chosen = domain || props.domains[0] || '';
  return (
    <form class="card form-grid" aria-label="New DKIM key" onSubmit={async (e) => {
      e.preventDefault();
      setBusy(true); setErrors({});
      try {
        const body: Record<string, unknown> = { domain: chosen, selector, algorithm, enabled: enabled === 'true' };
        if (algorithm === 'rsa-sha256') body.bits = Number(bits);
        const k = await api.post<DkimKey>('/api/v1/dkim/keys', body);
        setSelector('');
        props.onDone(k);
      } catch (err) { setErrors(errorsOf(err)); } finally { setBusy(false); }
    }}>
      <h2>New key</h2>
      {props.domains.length === 0 ? (
        <p class="muted">Add a local domain first (Lists → Local domains): only our own domains are signed.</p>
      ) : (
        <>
          <Field label="Domain" name="domain" value={chosen} onInput={setDomain} errors={errors}
            options={props.domains.map((d) => ({ value: d, label: d }))}
            hint="it signs mail from this domain and its subdomains" />
          <Field label="Selector" name="selector" value={selector} onInput={setSelector} errors={errors} required
            hint="e.g. mail2026: letters, digits, '-', dots between labels" />
          <Field label="Algorithm" name="algorithm" value={algorithm} onInput={setAlgorithm} errors={errors}
            options={[{ value: 'rsa-sha256', label: 'RSA (every receiver checks it)' },
              { value: 'ed25519-sha256', label: 'Ed25519 (short; not every receiver checks it)' }]} />
          {algorithm === 'rsa-sha256' && (
            <Field label="Bits" name="bits" value={bits} onInput={setBits} errors={errors}
              options={['1024', '2048', '3072', '4096'].map((b) => ({ value: b, label: b }))} />
          )}
          <Field label="Sign with it" name="enabled" value={enabled} onInput={setEnabled} errors={errors}
            options={[{ value: 'true', label: 'at once' }, { value: 'false', label: 'not yet (publish the record first)' }]} />
          <FormError errors={errors} fields={['domain', 'selector', 'algorithm', 'bits', 'enabled']} />
          <div class="actions"><Button type="submit" kind="primary" busy={busy}>Generate key</Button></div>
        </>
      )}
    </form>
  );
}

export function DkimPage() {
  const keys = useKeyed('dkim-keys', () => api.get<List<DkimKey>>('/api/v1/dkim/keys'));
  const locals = useKeyed('dkim-domains', () =>
    api.get<List<Entry>>('/api/v1/policy/entries', { list: 'local_domain', limit: 500 }));
  const [made, setMade] = useState<DkimKey | null>(null);
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const [error, setError] = useState('');
  const domains = (locals.data?.items ?? []).map((e) => e.value).filter((v) => !v.startsWith('*'));
  const items = keys.data?.items ?? [];
  async function toggle(k: DkimKey) {
    setError('');
    try {
      await api.patch(`/api/v1/dkim/keys/${k.id}`, { enabled: !k.enabled });
      keys.reload();
    } catch (e) { setError(Object.values(errorsOf(e))[0]); }
  }
  return (
    <section>
      <PageTitle>DKIM signing</PageTitle>
      <p class="muted">Mail from authenticated users, relay networks and allowed clients is signed with the newest
        enabled key of its From: domain (or of the nearest parent domain). To rotate, generate the new key “not yet”,
        publish its record, enable it, then disable the old one.</p>
      <Generate domains={domains} onDone={(k) => { setMade(k); keys.reload(); }} />
      {made && (
        <div class="card notice" role="status" aria-label="New key">
          <p>Key <strong>{made.selector}</strong> for <strong>{made.domain}</strong> generated
            {made.enabled ? ' and signing' : ', not signing yet'}.</p>
          <Record k={made} />
        </div>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      {keys.loading ? <Loading what="keys" /> : keys.error ? <p class="error" role="alert">{keys.error}</p> : (
        items.length === 0 ? <p class="muted">No keys: outgoing mail is not signed.</p> : (
          <>
            <p class="muted">{plural(items.length, 'key')}.</p>
            <div class="table-wrap">
              <table aria-label="DKIM keys">
                <thead><tr>
                  <th scope="col">Domain</th><th scope="col">Selector</th><th scope="col">Algorithm</th>
                  <th scope="col">Created</th><th scope="col">State</th><th scope="col">DNS record</th><th scope="col">Actions</th>
                </tr></thead>
                <tbody>
                  {items.map((k) => (
                    <tr>
                      <td>{k.domain}</td><td class="mono">{k.selector}</td>
                      <td>{k.algorithm === 'rsa-sha256' ? `RSA ${k.bits}` : 'Ed25519'}</td>
                      <td>{fmtTime(k.created_at)}</td><td>{k.enabled ? 'signing' : 'disabled'}</td>
                      <td><Record k={k} /></td>
                      <td>
                        <Button label={`${k.enabled ? 'Disable' : 'Enable'} ${k.selector} for ${k.domain}`}
                          onClick={() => toggle(k)}>{k.enabled ? 'Disable' : 'Enable'}</Button>
                        <Button kind="danger" label={`Delete ${k.selector} for ${k.domain}`} onClick={() => setConfirm({
                          title: `Delete key ${k.selector} of ${k.domain}?`,
                          body: `This deletes 1 key for good${k.enabled ? ', and mail from ' + k.domain + ' stops being signed with it at once' : ''}. Keep its DNS record published a while for mail still on its way.`,
                          action: 'Delete 1 key',
                          run: async () => { await api.del(`/api/v1/dkim/keys/${k.id}`); if (made?.id === k.id) setMade(null); keys.reload(); },
                        })}>Delete</Button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )
      )}
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
