// An end user's own settings: "My senders" (/my/senders), the personal allow
// and block list applied to mail for one's own addresses
// (/api/v1/account/senders), and the quarantine digest interval shown on
// "My account" (/api/v1/account/digest).
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, PageTitle, Pager, Results, usePaged,
} from '../ui';
import { fmtZoned, pageOf } from '../quarantine';

interface SenderEntry {
  id: number;
  kind: 'allow' | 'block';
  value: string;
  created: number | string;
}

const KIND_LABEL = { allow: 'allow (never quarantined as spam)', block: 'block (refused)' };

export function MySendersPage() {
  const [kind, setKind] = useState<'allow' | 'block'>('block');
  const [value, setValue] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [show, setShow] = useState('');
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const p = usePaged<SenderEntry>(show, (cursor) =>
    api.get<{ items: SenderEntry[]; next?: string | null; next_cursor?: string | null }>('/api/v1/account/senders', { kind: show, cursor, limit: 100 })
      .then(pageOf));
  async function add(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      await api.post<SenderEntry>('/api/v1/account/senders', { kind, value: value.trim() });
      setValue('');
      p.reload();
    } catch (err) {
      setErrors(errorsOf(err));
    } finally {
      setBusy(false);
    }
  }
  const rows = show ? p.items.filter((s) => s.kind === show) : p.items;
  return (
    <section>
      <PageTitle>My senders</PageTitle>
      <p class="muted">Senders you block are refused for your addresses; senders you allow are never quarantined as spam for you.
        A value is an address (user@example.com) or a whole domain (@example.com). Changes apply to the next message.</p>
      <form class="card inline-form" aria-label="Add a sender" onSubmit={add}>
        <h2>Add a sender</h2>
        <Field label="List" name="kind" value={kind} onInput={(v) => setKind(v as 'allow' | 'block')} errors={errors}
          options={[{ value: 'block', label: KIND_LABEL.block }, { value: 'allow', label: KIND_LABEL.allow }]} />
        <Field label="Sender" name="value" value={value} onInput={setValue} errors={errors} required placeholder="user@example.com or @example.com" />
        <FormError errors={errors} fields={['kind', 'value']} />
        <Button type="submit" kind="primary" busy={busy}>Add sender</Button>
      </form>
      <Field label="Show" name="show" value={show} onInput={setShow}
        options={[{ value: '', label: 'both lists' }, { value: 'allow', label: 'allowed senders' }, { value: 'block', label: 'blocked senders' }]} />
      <Results {...p} items={p.loading ? null : rows} label="My senders" query={show ? `${show === 'allow' ? 'allowed' : 'blocked'} senders` : 'allowed and blocked senders'}
        empty={<p class="muted">No senders on {show ? 'this list' : 'your lists'} yet.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table class="senders">
              <thead><tr><th scope="col">Sender</th><th scope="col">List</th><th scope="col">Added</th><th scope="col">Actions</th></tr></thead>
              <tbody>
                {items.map((s) => (
                  <tr>
                    <td class="mono">{s.value}</td>
                    <td><span class={`kind ${s.kind}`}>{s.kind}</span></td>
                    <td>{typeof s.created === 'number' ? fmtTime(s.created) : fmtZoned(s.created, false)}</td>
                    <td><Button kind="danger" label={`Remove ${s.value}`} onClick={() => setConfirm({
                      title: `Remove ${s.value}?`,
                      body: `This removes 1 sender (${s.value}) from your ${s.kind} list.`,
                      action: 'Remove 1 sender',
                      run: async () => { await api.del(`/api/v1/account/senders/${s.id}`); p.reload(); },
                    })}>Remove</Button></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="My senders" />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}

const INTERVALS = [
  { value: 'none', label: 'never' }, { value: 'hourly', label: 'hourly' }, { value: 'daily', label: 'daily' }, { value: 'weekly', label: 'weekly' },
];

/* The quarantine digest interval, a card of "My account". */
export function DigestInterval() {
  const [interval, setIntervalValue] = useState<string | null>(null);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState('');
  const [absent, setAbsent] = useState(false);
  useEffect(() => {
    api.get<{ interval: string }>('/api/v1/account/digest').then((r) => setIntervalValue(r.interval), (e) => {
      if (e instanceof ApiError && e.status === 404) setAbsent(true);
      else setErrors(errorsOf(e));
    });
  }, []);
  if (absent) return null;
  return (
    <form class="card narrow" aria-label="Quarantine digest" onSubmit={async (e) => {
      e.preventDefault();
      if (interval === null) return;
      setBusy(true);
      setErrors({});
      setDone('');
      try {
        const r = await api.put<{ interval: string }>('/api/v1/account/digest', { interval });
        setIntervalValue(r?.interval ?? interval);
        setDone('Saved.');
      } catch (err) {
        setErrors(errorsOf(err));
      } finally {
        setBusy(false);
      }
    }}>
      <h2>Quarantine digest</h2>
      <p class="muted">A mail listing what was quarantined for you, with links to release or delete each item.</p>
      <Field label="Send the digest" name="interval" value={interval ?? ''} onInput={setIntervalValue} errors={errors}
        options={interval === null ? [{ value: '', label: 'loading…' }] : INTERVALS} />
      <FormError errors={errors} fields={['interval']} />
      <Button type="submit" kind="primary" busy={busy} disabled={interval === null}>Save digest interval</Button>
      {done && <p role="status" class="notice">{done}</p>}
    </form>
  );
}
