// The directory: console users (/api/v1/users: create, role, disable,
// password, delete; addresses and aliases: /api/v1/users/{id}/addresses) and
// mail addresses, aliases and groups (/api/v1/directory; group members:
// /api/v1/directory/groups/{address}/members).
import { useEffect, useState } from 'preact/hooks';
import { api, type DirEntry, type List, type Session, type User } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, Link, Loading, PageTitle,
  Pager, plural, Results, usePaged,
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

type FullUser = User & { addresses: { address: string; kind: string }[] };

/* A user's primary address and aliases: add one, remove one after a confirmation. */
function UserAddresses(props: { user: User; onAction: (c: ConfirmState) => void; version: number; onChange: () => void }) {
  const [full, setFull] = useState<FullUser | null>(null);
  const [loadErr, setLoadErr] = useState('');
  const [address, setAddress] = useState('');
  const [kind, setKind] = useState('alias');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [tick, setTick] = useState(0);
  const id = props.user.id;
  useEffect(() => {
    let live = true;
    setLoadErr('');
    api.get<FullUser>(`/api/v1/users/${id}`).then((u) => live && setFull(u), (e) => live && setLoadErr(Object.values(errorsOf(e))[0]));
    return () => { live = false; };
  }, [id, tick, props.version]);
  /* the primary address first, then the aliases by name */
  const addrs = [...(full?.addresses ?? [])].sort((a, b) =>
    Number(b.kind === 'primary') - Number(a.kind === 'primary') || a.address.localeCompare(b.address));
  const hasPrimary = addrs.some((a) => a.kind === 'primary');
  return (
    <div class="sub" aria-label={`Addresses of ${props.user.name}`} role="group">
      <h3>Addresses of {props.user.name}</h3>
      {loadErr && <p class="error" role="alert">{loadErr}</p>}
      {!full ? !loadErr && <Loading what="addresses" /> : addrs.length === 0 ? <p class="muted">No address yet.</p> : (
        <ul class="plain">{addrs.map((a) => (
          <li><span class="mono">{a.address}</span><span class="state">{a.kind}</span>
            <Button kind="danger" label={`Remove ${a.address}`} onClick={() => props.onAction({
              title: `Remove ${a.address}?`,
              body: `This removes 1 ${a.kind === 'primary' ? 'primary address' : 'alias'} (${a.address}) of ${props.user.name}; ` +
                `${plural(addrs.length - 1, 'address', 'addresses')} stay. Mail to it is no longer accepted for this user.`,
              action: 'Remove 1 address',
              run: async () => {
                await api.del(`/api/v1/users/${id}/addresses/${encodeURIComponent(a.address)}`);
                setTick((t) => t + 1);
                props.onChange();
              },
            })}>Remove</Button>
          </li>
        ))}</ul>
      )}
      <form class="inline-form" aria-label={`Add an address for ${props.user.name}`} onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true); setErrors({});
        try {
          await api.post(`/api/v1/users/${id}/addresses`, { address: address.trim(), kind });
          setAddress('');
          setTick((t) => t + 1);
          props.onChange();
        } catch (err) { setErrors(errorsOf(err)); } finally { setBusy(false); }
      }}>
        <Field label="Address" name="address" value={address} onInput={setAddress} errors={errors} required placeholder="alice@example.org" />
        <Field label="Kind" name="kind" value={kind} onInput={setKind} errors={errors}
          options={[{ value: 'alias', label: 'alias' }, { value: 'primary', label: hasPrimary ? 'primary (replaces the current one)' : 'primary' }]} />
        <FormError errors={errors} fields={['address', 'kind']} />
        <Button type="submit" kind="primary" busy={busy}>Add address</Button>
      </form>
    </div>
  );
}

function Users(props: { session: Session; onChange: () => void }) {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const [pw, setPw] = useState<number | null>(null);
  const [addrOpen, setAddrOpen] = useState<number | null>(null);
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
      <Results {...p} label="Users" query={query ? `users matching “${query}”` : 'all users'} empty={<p class="muted">No users match.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Password changed</th><th scope="col">Actions</th></tr></thead>
              <tbody>
                {items.map((u) => (
                  <>
                    <tr>
                      <td>{u.name}</td>
                      <td>{u.role}</td>
                      <td>{u.disabled ? 'disabled' : u.password_set ? 'active' : 'no password'}</td>
                      <td>{fmtTime(u.created)}</td>
                      <td>{fmtTime(u.password_changed)}</td>
                      <td class="actions">
                        <Button disabled={u.id === props.session.user.id} label={`${u.role === 'admin' ? 'Make user' : 'Make administrator'}: ${u.name}`}
                          onClick={() => setConfirm(u.role === 'admin' ? {
                            title: `Make ${u.name} a user?`,
                            body: `${u.name} loses the administrator's pages and API: from their next request they see only their own account and tokens.`,
                            action: 'Make user',
                            run: async () => { await api.patch(`/api/v1/users/${u.id}`, { role: 'user' }); p.reload(); },
                          } : {
                            title: `Make ${u.name} an administrator?`,
                            body: `${u.name} gets every page and API route: policy, queue, message log, users and their tokens.`,
                            action: 'Make administrator',
                            run: async () => { await api.patch(`/api/v1/users/${u.id}`, { role: 'admin' }); p.reload(); },
                          })}>
                          {u.role === 'admin' ? 'Make user' : 'Make administrator'}
                        </Button>
                        {u.disabled ? (
                          <Button onClick={() => patch(u, { disabled: false })} label={`Enable ${u.name}`}>Enable</Button>
                        ) : (
                          <Button kind="danger" disabled={u.id === props.session.user.id} label={`Disable ${u.name}`} onClick={() => setConfirm({
                            title: `Disable ${u.name}?`,
                            body: `${u.name} can no longer sign in or use their API tokens until enabled again; their record, addresses and tokens are kept.`,
                            action: 'Disable user',
                            run: async () => { await api.patch(`/api/v1/users/${u.id}`, { disabled: true }); p.reload(); },
                          })}>Disable</Button>
                        )}
                        <Button onClick={() => setPw(pw === u.id ? null : u.id)}>Password…</Button>
                        <Button onClick={() => setAddrOpen(addrOpen === u.id ? null : u.id)} label={`Addresses of ${u.name}`}>
                          {addrOpen === u.id ? 'Hide addresses' : 'Addresses…'}</Button>
                        <Link class="btn plain" href={`/directory/${u.id}/rules`} label={`Rules of ${u.name}`}>Rules</Link>
                        <Button kind="danger" disabled={u.id === props.session.user.id} label={`Delete ${u.name}`} onClick={() => setConfirm({
                          title: `Delete ${u.name}?`,
                          body: `This deletes 1 user (${u.name}) with their addresses, sessions and tokens.`,
                          action: 'Delete 1 user',
                          run: async () => { await api.del(`/api/v1/users/${u.id}`); p.reload(); },
                        })}>Delete</Button>
                      </td>
                    </tr>
                    {pw === u.id && <tr><td colSpan={6}><SetPassword user={u} onDone={() => { setPw(null); p.reload(); }} /></td></tr>}
                    {addrOpen === u.id && <tr><td colSpan={6}><UserAddresses user={u} onAction={setConfirm} version={0} onChange={props.onChange} /></td></tr>}
                  </>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Results>
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

/* A group's members: add one, remove one after a confirmation. */
function GroupMembers(props: { group: DirEntry; onAction: (c: ConfirmState) => void; onChange: () => void }) {
  const [member, setMember] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const g = props.group;
  const members = g.members ?? [];
  const path = `/api/v1/directory/groups/${encodeURIComponent(g.address)}/members`;
  return (
    <div class="sub" role="group" aria-label={`Members of ${g.address}`}>
      <h3>Members of {g.address} ({members.length})</h3>
      {members.length === 0 ? <p class="muted">No members.</p> : (
        <ul class="plain">{members.map((m) => (
          <li><span class="mono">{m}</span>
            <Button kind="danger" label={`Remove member ${m}`} onClick={() => props.onAction({
              title: `Remove ${m} from ${g.address}?`,
              body: `This removes 1 member (${m}) of ${plural(members.length, 'member')}; ` +
                `${members.length - 1 === 0 ? 'the group is left with none' : `${plural(members.length - 1, 'member')} stay`}. Mail to the group no longer reaches ${m}.`,
              action: 'Remove 1 member',
              run: async () => { await api.del(`${path}/${encodeURIComponent(m)}`); props.onChange(); },
            })}>Remove</Button>
          </li>
        ))}</ul>
      )}
      <form class="inline-form" aria-label={`Add a member to ${g.address}`} onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true); setErrors({});
        try {
          await api.post(path, { member: member.trim() });
          setMember('');
          props.onChange();
        } catch (err) { setErrors(errorsOf(err)); } finally { setBusy(false); }
      }}>
        <Field label="Member address" name="member" value={member} onInput={setMember} errors={errors} required />
        <FormError errors={errors} fields={['member']} />
        <Button type="submit" kind="primary" busy={busy}>Add member</Button>
      </form>
    </div>
  );
}

/* Words for the search a table shows: "aliases matching “ali”". */
function describeDir(q: string, kind: string): string {
  const what = kind === 'primary' ? 'primary addresses' : kind === 'alias' ? 'aliases' : kind === 'group' ? 'groups' : 'all addresses';
  return q ? `${what} matching “${q}”` : what;
}

function Addresses(props: { version: number }) {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const [kind, setKind] = useState('');
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const p = usePaged<DirEntry>(`d|${query}|${kind}|${props.version}`, (cursor) => api.get<List<DirEntry>>('/api/v1/directory', { q: query, kind, cursor, limit: 50 }));
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
      <Results {...p} label="Addresses" query={describeDir(query, kind)} empty={<p class="muted">No addresses.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col">Address</th><th scope="col">Kind</th><th scope="col">Owner</th><th scope="col">Members</th><th scope="col">Actions</th></tr></thead>
              <tbody>{items.map((d) => (<>
                <tr>
                  <td class="mono">{d.address}</td><td>{d.kind}</td><td>{d.owner}</td><td>{d.members?.join(', ') ?? ''}</td>
                  <td>{d.kind === 'group' && (<div class="actions">
                    <Button label={`Members of ${d.address}`} onClick={() => setOpen(open === d.address ? null : d.address)}>
                      {open === d.address ? 'Hide members' : 'Members…'}</Button>
                    <Link class="btn plain" href={`/directory/groups/${encodeURIComponent(d.address)}/rules`} label={`Rules of ${d.address}`}>Rules</Link>
                    <Button kind="danger" label={`Delete group ${d.address}`} onClick={() => setConfirm({
                      title: `Delete group ${d.address}?`,
                      body: `This removes 1 group (${d.address}) and its ${plural(d.members?.length ?? 0, 'member')}; mail to it is no longer delivered to them.`,
                      action: 'Delete 1 group',
                      run: async () => { await api.del(`/api/v1/directory/groups/${encodeURIComponent(d.address)}`); p.reload(); },
                    })}>Delete</Button>
                  </div>)}</td>
                </tr>
                {open === d.address && d.kind === 'group' && (
                  <tr><td colSpan={5}><GroupMembers group={d} onAction={setConfirm} onChange={p.reload} /></td></tr>
                )}
              </>))}</tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Addresses" />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}

export function DirectoryPage(props: { session: Session }) {
  const [version, setVersion] = useState(0);
  return (
    <section>
      <PageTitle>Directory</PageTitle>
      <Users session={props.session} onChange={() => setVersion((v) => v + 1)} />
      <Addresses version={version} />
    </section>
  );
}
