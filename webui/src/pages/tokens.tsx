// API tokens (/api/v1/tokens): one's own (administrators see everyone's);
// create (the token text is shown this once), revoke with confirmation.
import { useState } from 'preact/hooks';
import { api, type List, type Session, type Token } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, PageTitle,
  Pager, Results, usePaged,
} from '../ui';

export function TokensPage(props: { session: Session }) {
  const [name, setName] = useState('');
  const [scope, setScope] = useState('user');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<Token | null>(null);
  const [showRevoked, setShowRevoked] = useState('false');
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const p = usePaged<Token>(showRevoked, (cursor) => api.get<List<Token>>('/api/v1/tokens', { revoked: showRevoked === 'all' ? '' : showRevoked, cursor, limit: 50 }));
  return (
    <section>
      <PageTitle>API tokens</PageTitle>
      <form class="card inline-form" aria-label="New token" onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true); setErrors({}); setCreated(null);
        try {
          const t = await api.post<Token>('/api/v1/tokens', { name, scope });
          setCreated(t); setName(''); p.reload();
        } catch (err) { setErrors(errorsOf(err)); } finally { setBusy(false); }
      }}>
        <h2>New token</h2>
        <Field label="Name" name="name" value={name} onInput={setName} errors={errors} required hint="letters, digits and . _ @ + -" />
        {props.session.admin && (
          <Field label="Scope" name="scope" value={scope} onInput={setScope} errors={errors}
            options={[{ value: 'user', label: 'user' }, { value: 'admin', label: 'administrator' }]} />
        )}
        <FormError errors={errors} fields={['name', 'scope']} />
        <Button type="submit" kind="primary" busy={busy}>Create token</Button>
      </form>
      {created?.token && (
        <div class="card notice" role="status">
          <p>Token <strong>{created.name}</strong> — copy it now, it is not shown again:</p>
          <input class="mono token" readOnly value={created.token} aria-label="New token text" onFocus={(e) => (e.target as HTMLInputElement).select()} />
        </div>
      )}
      <Field label="Show" name="revoked" value={showRevoked} onInput={setShowRevoked}
        options={[{ value: 'false', label: 'active tokens' }, { value: 'true', label: 'revoked tokens' }, { value: 'all', label: 'all tokens' }]} />
      <Results {...p} label="Tokens" query={showRevoked === 'all' ? 'all tokens' : showRevoked === 'true' ? 'revoked tokens' : 'active tokens'}
        empty={<p class="muted">No tokens.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col">Name</th>{props.session.admin && <th scope="col">User</th>}<th scope="col">Prefix</th><th scope="col">Scope</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
              <tbody>
                {items.map((t) => (
                  <tr>
                    <td>{t.name}</td>{props.session.admin && <td>{t.user}</td>}<td class="mono">{t.prefix}…</td><td>{t.scope}</td>
                    <td>{fmtTime(t.created)}</td><td>{fmtTime(t.last_used)}</td><td>{t.active ? 'active' : `revoked ${fmtTime(t.revoked)}`}</td>
                    <td>{t.active && <Button kind="danger" label={`Revoke ${t.name}`} onClick={() => setConfirm({
                      title: `Revoke ${t.name}?`,
                      body: `This revokes 1 token (${t.name}${props.session.admin ? ` of ${t.user}` : ''}); scripts using it stop working at once.`,
                      action: 'Revoke 1 token',
                      run: async () => { await api.del(`/api/v1/tokens/${t.id}`); p.reload(); },
                    })}>Revoke</Button>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Tokens" />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
