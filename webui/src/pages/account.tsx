// One's own account (/api/v1/account) and password (/api/v1/account/password).
import { useEffect, useState } from 'preact/hooks';
import { api, type Session, type User } from '../api';
import { Button, type Errors, errorsOf, Field, FormError, fmtTime, Loading, PageTitle } from '../ui';
import { DigestInterval } from './selfservice';

export function AccountPage(props: { session: Session }) {
  const [me, setMe] = useState<User | null>(null);
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState('');
  useEffect(() => {
    api.get<User>('/api/v1/account').then(setMe, (e) => setErrors(errorsOf(e)));
  }, []);
  async function submit(e: Event) {
    e.preventDefault();
    setErrors({}); setDone('');
    if (next !== again) {
      setErrors({ again: 'The two new passwords differ.' });
      return;
    }
    setBusy(true);
    try {
      await api.put('/api/v1/account/password', { current_password: current, new_password: next });
      setCurrent(''); setNext(''); setAgain('');
      setDone('Password changed. Your other sessions have ended.');
    } catch (err) {
      setErrors(errorsOf(err));
    } finally { setBusy(false); }
  }
  return (
    <section>
      <PageTitle>My account</PageTitle>
      {!me ? <Loading what="your account" /> : (
        <dl class="card headers">
          <dt>Name</dt><dd>{me.name}</dd>
          <dt>Role</dt><dd>{props.session.admin ? 'administrator' : 'user'}</dd>
          <dt>Addresses</dt><dd>{me.addresses?.length ? me.addresses.map((a) => `${a.address} (${a.kind})`).join(', ') : '—'}</dd>
          <dt>Password changed</dt><dd>{fmtTime(me.password_changed)}</dd>
        </dl>
      )}
      <form class="card narrow" aria-label="Change password" onSubmit={submit}>
        <h2>Change password</h2>
        <Field label="Current password" name="current_password" type="password" value={current} onInput={setCurrent} errors={errors} autocomplete="current-password" required />
        <Field label="New password" name="new_password" type="password" value={next} onInput={setNext} errors={errors} autocomplete="new-password" required hint="At least 8 characters." />
        <Field label="New password again" name="again" type="password" value={again} onInput={setAgain} errors={errors} autocomplete="new-password" required />
        <FormError errors={errors} fields={['current_password', 'new_password', 'again']} />
        <Button type="submit" kind="primary" busy={busy}>Change password</Button>
        {done && <p role="status" class="notice">{done}</p>}
      </form>
      <DigestInterval />
    </section>
  );
}
