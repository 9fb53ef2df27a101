// The audit log (/api/v1/audit): who changed what, when, before and after.
import { useState } from 'preact/hooks';
import { api, type AuditEntry, type List } from '../api';
import { Button, Field, fmtTime, PageTitle, Pager, Results, usePaged } from '../ui';

interface Search { actor: string; action: string; object_type: string }

/* Words for the search a table shows: "entries with action user.create". */
function describeAudit(s: Search): string {
  const parts = [s.actor && `actor ${s.actor}`, s.action && `action ${s.action}`, s.object_type && `object type ${s.object_type}`].filter(Boolean);
  return parts.length ? `entries with ${parts.join(', ')}` : 'all entries';
}

export function AuditPage() {
  const [form, setForm] = useState<Search>({ actor: '', action: '', object_type: '' });
  const [search, setSearch] = useState(form);
  const [open, setOpen] = useState<number | null>(null);
  const p = usePaged<AuditEntry>(JSON.stringify(search), (cursor) => api.get<List<AuditEntry>>('/api/v1/audit', { ...search, cursor, limit: 50 }));
  return (
    <section>
      <PageTitle>Audit log</PageTitle>
      <form class="card form-grid filters" role="search" aria-label="Audit search" onSubmit={(e) => { e.preventDefault(); setSearch({ ...form }); }}>
        <Field label="Actor" name="actor" value={form.actor} onInput={(v) => setForm({ ...form, actor: v })} />
        <Field label="Action" name="action" value={form.action} onInput={(v) => setForm({ ...form, action: v })} hint="e.g. user.create, token.revoke" />
        <Field label="Object type" name="object_type" value={form.object_type} onInput={(v) => setForm({ ...form, object_type: v })} />
        <div class="actions"><Button type="submit" kind="primary">Search</Button></div>
      </form>
      <Results {...p} label="Audit entries" query={describeAudit(search)} empty={<p class="muted">No entries.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Via</th><th scope="col">From</th><th scope="col">Action</th><th scope="col">Object</th><th scope="col">Change</th></tr></thead>
              <tbody>
                {items.map((a) => (
                  <>
                    <tr>
                      <td>{fmtTime(a.ts)}</td><td>{a.actor}</td><td>{a.via}</td><td class="mono">{a.client_addr}</td>
                      <td class="mono">{a.action}</td><td>{a.object_type}{a.object_id ? ` ${a.object_id}` : ''}</td>
                      <td><Button onClick={() => setOpen(open === a.id ? null : a.id)} label={`${open === a.id ? "Hide" : "Show"} change ${a.id}`}>{open === a.id ? 'Hide' : 'Show'}</Button></td>
                    </tr>
                    {open === a.id && (
                      <tr><td colSpan={7} class="diff">
                        <div><h3>Before</h3><pre>{a.before === null ? '—' : JSON.stringify(a.before, null, 2)}</pre></div>
                        <div><h3>After</h3><pre>{a.after === null ? '—' : JSON.stringify(a.after, null, 2)}</pre></div>
                      </td></tr>
                    )}
                  </>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Results>
      <Pager p={p} label="Audit" />
    </section>
  );
}
