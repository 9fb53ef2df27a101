// Policy lists (/api/v1/policy/entries): connection, sender, recipient and
// relay allow/deny lists and local domains. Add, edit in place (PATCH: the id
// stays), delete, search, and
// paste many values at once (one request per line, with progress).
import { useState } from 'preact/hooks';
import { api, type Entry, type List } from '../api';
import {
  Button, ConfirmDialog, type ConfirmState, type Errors, errorsOf, Field, FormError, fmtTime, Link,
  PageTitle, Pager, plural, Results, usePath, usePaged,
} from '../ui';
import { parseLine } from '../util';

export const LISTS: { name: string; title: string; hint: string }[] = [
  { name: 'conn_deny', title: 'Connection deny', hint: 'Client address, CIDR range or host name (*.example.net) refused at connect.' },
  { name: 'conn_allow', title: 'Connection allow', hint: 'Clients exempt from connection checks and blocklists.' },
  { name: 'sender_deny', title: 'Sender deny', hint: 'Envelope sender address, domain, glob or <> refused at MAIL FROM.' },
  { name: 'sender_allow', title: 'Sender allow', hint: 'Senders exempt from sender checks.' },
  { name: 'rcpt_deny', title: 'Recipient deny', hint: 'Recipient address, domain or glob refused at RCPT TO.' },
  { name: 'rcpt_allow', title: 'Recipient allow', hint: 'Recipients always accepted.' },
  { name: 'local_domain', title: 'Local domains', hint: 'Domains this gateway accepts mail for; their mail goes to the downstream servers.' },
  { name: 'relay_net', title: 'Relay networks', hint: 'Client networks allowed to relay to any destination.' },
  { name: 'relay_exempt', title: 'Relay exempt hosts', hint: 'Hosts not checked by the relay rules.' },
  { name: 'relay_dest_allow', title: 'Relay destinations allowed', hint: 'Destination domains relaying may reach.' },
  { name: 'relay_dest_deny', title: 'Relay destinations denied', hint: 'Destination domains relaying may never reach.' },
];

function AddForm(props: { list: string; onDone: () => void }) {
  const [value, setValue] = useState('');
  const [comment, setComment] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  return (
    <form class="card inline-form" aria-label="Add an entry" onSubmit={async (e) => {
      e.preventDefault();
      setBusy(true);
      setErrors({});
      try {
        await api.post<Entry>('/api/v1/policy/entries', { list: props.list, value, comment });
        setValue('');
        setComment('');
        props.onDone();
      } catch (err) {
        setErrors(errorsOf(err));
      } finally {
        setBusy(false);
      }
    }}>
      <h2>Add an entry</h2>
      <Field label="Value" name="value" value={value} onInput={setValue} errors={errors} required />
      <Field label="Comment" name="comment" value={comment} onInput={setComment} errors={errors} />
      <FormError errors={errors} fields={['value', 'comment']} />
      <Button type="submit" kind="primary" busy={busy}>Add</Button>
    </form>
  );
}

function PasteForm(props: { list: string; onDone: () => void }) {
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const [failures, setFailures] = useState<string[]>([]);
  const [summary, setSummary] = useState('');
  async function run(e: Event) {
    e.preventDefault();
    /* each line is one value: nothing is cut off a line the server would refuse */
    const lines = text.split(/\r?\n/).map(parseLine).filter((x): x is [string, string] => x !== null);
    setBusy(true);
    setFailures([]);
    setSummary('');
    const failed: string[] = [];
    const keep: string[] = [];
    let added = 0;
    for (let i = 0; i < lines.length; i++) {
      setProgress({ done: i, total: lines.length });
      const [value, comment] = lines[i];
      try {
        await api.post('/api/v1/policy/entries', { list: props.list, value, comment });
        added++;
      } catch (err) {
        failed.push(`${value}: ${Object.values(errorsOf(err))[0]}`);
        keep.push(comment ? `${value} # ${comment}` : value);
      }
    }
    setProgress(null);
    setBusy(false);
    setFailures(failed);
    setText(keep.join('\n'));
    setSummary(`${plural(added, 'entry', 'entries')} added${failed.length ? `, ${failed.length} refused (left in the box)` : ''}.`);
    props.onDone();
  }
  return (
    <form class="card" aria-label="Paste many entries" onSubmit={run}>
      <h2>Paste many</h2>
      <Field label="One value a line; a comment after ' #'" name="paste" multiline value={text} onInput={setText}
        hint="The whole line is the value (spaces included); lines starting with # are skipped. A refused line stays in the box with its error."
        placeholder={'192.0.2.7  # infected PC\n198.51.100.0/24'} />
      <Button type="submit" kind="primary" busy={busy} disabled={!text.trim()}>Add all</Button>
      {progress && (
        <p role="status"><progress max={progress.total} value={progress.done} /> {progress.done} of {progress.total}</p>
      )}
      {summary && <p role="status">{summary}</p>}
      {failures.length > 0 && <ul class="error" role="alert">{failures.map((f) => <li>{f}</li>)}</ul>}
    </form>
  );
}

function EditRow(props: { entry: Entry; onDone: () => void; onCancel: () => void }) {
  const [value, setValue] = useState(props.entry.value);
  const [comment, setComment] = useState(props.entry.comment);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  return (
    <tr class="editing">
      <td colSpan={5}>
        <form class="inline-form" aria-label={`Edit ${props.entry.value}`} onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setErrors({});
          try {
            const body: Record<string, string> = {};
            if (value !== props.entry.value) body.value = value;
            if (comment !== props.entry.comment) body.comment = comment;
            if (Object.keys(body).length) await api.patch<Entry>(`/api/v1/policy/entries/${props.entry.id}`, body);
            props.onDone();
          } catch (err) {
            setErrors(errorsOf(err));
            setBusy(false);
          }
        }}>
          <Field label="Value" name="value" value={value} onInput={setValue} errors={errors} required />
          <Field label="Comment" name="comment" value={comment} onInput={setComment} errors={errors} />
          <FormError errors={errors} fields={['value', 'comment']} />
          <Button type="submit" kind="primary" busy={busy}>Save</Button>
          <Button onClick={props.onCancel} disabled={busy}>Cancel</Button>
        </form>
      </td>
    </tr>
  );
}

export function ListsPage() {
  const path = usePath();
  const name = path.split('/')[2] || 'conn_deny';
  const meta = LISTS.find((l) => l.name === name) ?? LISTS[0];
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [editing, setEditing] = useState<number | null>(null);
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const p = usePaged<Entry>(`${meta.name}|${query}`, (cursor) =>
    api.get<List<Entry>>('/api/v1/policy/entries', { list: meta.name, q: query, cursor, limit: 50 }));
  const reload = () => {
    setSelected(new Set());
    setEditing(null);
    p.reload();
  };
  function toggle(id: number) {
    const s = new Set(selected);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setSelected(s);
  }
  function askDelete(ids: number[], what: string) {
    setConfirm({
      title: `Delete ${plural(ids.length, 'entry', 'entries')}?`,
      body: `This removes ${what} from ${meta.title}. The next SMTP connection no longer sees ${ids.length === 1 ? 'it' : 'them'}.`,
      action: `Delete ${plural(ids.length, 'entry', 'entries')}`,
      run: async () => {
        for (const id of ids) await api.del(`/api/v1/policy/entries/${id}`);
        reload();
      },
    });
  }
  return (
    <section>
      <PageTitle>Lists</PageTitle>
      <nav class="tabs" aria-label="Lists">
        {LISTS.map((l) => <Link href={`/lists/${l.name}`} current={l.name === meta.name}>{l.title}</Link>)}
      </nav>
      <h2>{meta.title}</h2>
      <p class="muted">{meta.hint}</p>
      <div class="grid two">
        <AddForm list={meta.name} onDone={reload} />
        <PasteForm list={meta.name} onDone={reload} />
      </div>
      <form class="search" role="search" onSubmit={(e) => { e.preventDefault(); setQuery(q.trim()); }}>
        <Field label="Search value or comment" name="q" value={q} onInput={setQ} />
        <Button type="submit">Search</Button>
        {query && <Button onClick={() => { setQ(''); setQuery(''); }}>Clear</Button>}
      </form>
      <div class="toolbar">
        <Button kind="danger" disabled={selected.size === 0}
          onClick={() => askDelete([...selected], plural(selected.size, 'selected entry', 'selected entries'))}>
          Delete selected ({selected.size})
        </Button>
      </div>
      <Results {...p} label="Entries" query={`${meta.title} entries${query ? ` containing “${query}”` : ''}`}
        empty={<p class="muted">No entries{query ? ' match' : ''}.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col"><span class="sr-only">Select</span></th><th scope="col">Value</th><th scope="col">Comment</th><th scope="col">Added</th><th scope="col">Actions</th></tr></thead>
              <tbody>
                {items.map((e) => editing === e.id ? (
                  <EditRow entry={e} onDone={reload} onCancel={() => setEditing(null)} />
                ) : (
                  <tr>
                    <td><input type="checkbox" aria-label={`Select ${e.value}`} checked={selected.has(e.id)} onChange={() => toggle(e.id)} /></td>
                    <td class="mono">{e.value}</td>
                    <td>{e.comment}</td>
                    <td>{fmtTime(e.created)}</td>
                    <td class="actions">
                      <Button onClick={() => setEditing(e.id)} label={`Edit ${e.value}`}>Edit</Button>
                      <Button kind="danger" onClick={() => askDelete([e.id], e.value)} label={`Delete ${e.value}`}>Delete</Button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Entries" />
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
