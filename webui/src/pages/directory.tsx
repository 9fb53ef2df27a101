// The directory: console users (/api/v1/users: create, role, disable,
// password, delete) and mail addresses, aliases and groups (/api/v1/directory,
// read-only in the API).
import { useState } from 'preact/hooks';
import { api, type DirEntry, type List, type Session, type User } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, Loading, PageTitle,
  Pager, plural, usePaged,
} from '../ui';

function NewUser(props: { onDone: () => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState('user');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  return (
    <form class="card inline-form" aria-label="New user" onSubmit={async (e) => {
      e.preventDefault();
      setBusy(true); setErrors({});
      try {
        const body: Record<string, string> = { name, role };
        if (password) body.password = password;
        await api.post('/api/v1/users', body);
        setName(''); setPassword('');
        props.onDone();
      } catch (err) { setErrors(errorsOf(err)); } finally { setBusy(false); }
    }}>
      <h2>New user</h2>
      <Field label="Name" name="name" value={name} onInput={setName} errors={errors} required />
      <Field label="Password" name="password" type="password" value={password} onInput={setPassword} errors={errors}
        autocomplete="new-password" hint="At least 8 characters; empty: the user cannot log in yet." />
      <Field label="Role" name="role" value={role} onInput={setRole} errors={errors}
        options={[{ value: 'user', label: 'user' }, { value: 'admin', label: 'administrator' }]} />
      <FormError errors={errors} fields={['name', 'password', 'role']} />
      <Button type="submit" kind="primary" busy={busy}>Create user</Button>
    </form>
  );
}

function SetPassword(props: { user: User; onDone: () => void }) {
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  return (
    <form class="inline-form" aria-label={`New password for ${props.user.name}`} onSubmit={async (e) => {
      e.preventDefault();
      setBusy(true); setErrors({});
      try { await api.patch(`/api/v1/users/${props.user.id}`, { password }); props.onDone(); }
      catch (err) { setErrors(errorsOf(err)); } finally { setBusy(false); }
    }}>
      <Field label={`New password for ${props.user.name}`} name="password" type="password" value={password} onInput={setPassword}
        errors={errors} autocomplete="new-password" required />
      <FormError errors={errors} fields={['password']} />
      <Button type="submit" kind="primary" busy={busy}>Set password</Button>
    </form>
  );
}

function Users(props: { session: Session }) {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const [pw, setPw] = useState<number | null>(null);
  const [err, setErr] = useState('');
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const p = usePaged<User>(`u|${query}`, (cursor) => api.get<List<User>>('/api/v1/users', { q: query, cursor, limit: 25 }));
  async function patch(u: User, body: Record<string, unknown>) {
    setErr('');
    try { await api.patch(`/api/v1/users/${u.id}`, body); p.reload(); } catch (e) { setErr(`${u.name}: ${Object.values(errorsOf(e))[0]}`); }
  }
  return (
    <section>
      <h2>Users</h2>
      <NewUser onDone={p.reload} />
      <form class="search" role="search" onSubmit={(e) => { e.preventDefault(); setQuery(q.trim()); }}>
        <Field label="Search users" name="q" value={q} onInput={setQ} />
        <Button type="submit">Search</Button>
      </form>
      {err && <p class="error" role="alert">{err}</p>}
      {p.error && <p class="error" role="alert">{p.error}</p>}
      {p.loading ? <Loading what="users" /> : (
        <div class="table-wrap">
          <table>
            <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Password changed</th><th scope="col">Actions</th></tr></thead>
            <tbody>
              {p.items.map((u) => (
                <>
                  <tr>
                    <td>{u.name}</td>
                    <td>{u.role}</td>
                    <td>{u.disabled ? 'disabled' : u.password_set ? 'active' : 'no password'}</td>
                    <td>{fmtTime(u.created)}</td>
                    <td>{fmtTime(u.password_changed)}</td>
                    <td class="actions">
                      <Button onClick={() => patch(u, { role: u.role === 'admin' ? 'user' : 'admin' })} disabled={u.id === props.session.user.id}>
                        {u.role === 'admin' ? 'Make user' : 'Make administrator'}
                      </Button>
                      <Button onClick={() => patch(u, { disabled: !u.disabled })} disabled={u.id === props.session.user.id}>
                        {u.disabled ? 'Enable' : 'Disable'}
                      </Button>
                      <Button onClick={() => setPw(pw === u.id ? null : u.id)}>Password…</Button>
                      <Button kind="danger" disabled={u.id === props.session.user.id} label={`Delete ${u.name}`} onClick={() => setConfirm({
                        title: `Delete ${u.name}?`,
                        body: `This deletes 1 user (${u.name}) with their addresses, sessions and tokens.`,
                        action: 'Delete 1 user',
                        run: async () => { await api.del(`/api/v1/users/${u.id}`); p.reload(); },
                      })}>Delete</Button>
                    </td>
                  </tr>
                  {pw === u.id && <tr><td colSpan={6}><SetPassword user={u} onDone={() => { setPw(null); p.reload(); }} /></td></tr>}
                </>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager p={p} label="Users" />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}

function NewGroup(props: { onDone: () => void }) {
  const [address, setAddress] = useState('');
  const [name, setName] = useState('');
  const [members, setMembers] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  return (
    <form class="card inline-form" aria-label="New group" onSubmit={async (e) => {
      e.preventDefault();
      setBusy(true); setErrors({});
      try {
        const body: Record<string, unknown> = { address: address.trim(), members: members.split(/[\s,;]+/).filter(Boolean) };
        if (name.trim()) body.name = name.trim();
        await api.post('/api/v1/directory/groups', body);
        setAddress(''); setName(''); setMembers('');
        props.onDone();
      } catch (err) { setErrors(errorsOf(err)); } finally { setBusy(false); }
    }}>
      <h2>New group</h2>
      <Field label="Group address" name="address" value={address} onInput={setAddress} errors={errors} required placeholder="staff@example.org" />
      <Field label="Group name" name="name" value={name} onInput={setName} errors={errors} />
      <Field label="Members (one address a line)" name="members" multiline rows={3} value={members} onInput={setMembers} errors={errors} />
      <FormError errors={errors} fields={['address', 'name', 'members']} />
      <Button type="submit" kind="primary" busy={busy}>Create group</Button>
    </form>
  );
}

function Addresses() {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const [kind, setKind] = useState('');
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const p = usePaged<DirEntry>(`d|${query}|${kind}`, (cursor) => api.get<List<DirEntry>>('/api/v1/directory', { q: query, kind, cursor, limit: 50 }));
  return (
    <section>
      <h2>Addresses, aliases and groups</h2>
      <NewGroup onDone={p.reload} />
      <form class="search" role="search" onSubmit={(e) => { e.preventDefault(); setQuery(q.trim()); }}>
        <Field label="Address or owner" name="dq" value={q} onInput={setQ} />
        <Field label="Kind" name="kind" value={kind} onInput={setKind}
          options={[{ value: '', label: 'all' }, { value: 'primary', label: 'primary' }, { value: 'alias', label: 'alias' }, { value: 'group', label: 'group' }]} />
        <Button type="submit">Search</Button>
      </form>
      {p.error && <p class="error" role="alert">{p.error}</p>}
      {p.loading ? <Loading what="addresses" /> : p.items.length === 0 ? <p class="muted">No addresses.</p> : (
        <div class="table-wrap">
          <table>
            <thead><tr><th scope="col">Address</th><th scope="col">Kind</th><th scope="col">Owner</th><th scope="col">Members</th><th scope="col">Actions</th></tr></thead>
            <tbody>{p.items.map((d) => (
              <tr>
                <td class="mono">{d.address}</td><td>{d.kind}</td><td>{d.owner}</td><td>{d.members?.join(', ') ?? ''}</td>
                <td>{d.kind === 'group' && (
                  <Button kind="danger" label={`Delete group ${d.address}`} onClick={() => setConfirm({
                    title: `Delete group ${d.address}?`,
                    body: `This removes 1 group (${d.address}) and its ${plural(d.members?.length ?? 0, 'member')}; mail to it is no longer delivered to them.`,
                    action: 'Delete 1 group',
                    run: async () => { await api.del(`/api/v1/directory/groups/${encodeURIComponent(d.address)}`); p.reload(); },
                  })}>Delete</Button>
                )}</td>
              </tr>
            ))}</tbody>
          </table>
        </div>
      )}
      <Pager p={p} label="Addresses" />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}

export function DirectoryPage(props: { session: Session }) {
  return (
    <section>
      <PageTitle>Directory</PageTitle>
      <Users session={props.session} />
      <Addresses />
    </section>
  );
}
