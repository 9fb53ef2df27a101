// Limits and settings (/api/v1/policy/settings): each row saved on its own
// (PUT) or reset to the default (DELETE); an error shows under its field.
import { useEffect, useState } from 'preact/hooks';
import { api, type Setting } from '../api';
import { Button, type Errors, errorsOf, Field, Loading, PageTitle } from '../ui';
import { BayesPanel } from '../learn';

export function SettingRow(props: { s: Setting; onChange: (s: Setting | null) => void }) {
  const { s } = props;
  const [value, setValue] = useState(s.value);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState('');
  useEffect(() => setValue(s.value), [s.value]);
  const options = s.type === 'bool' ? [{ value: 'yes', label: 'yes' }, { value: 'no', label: 'no' }]
    : s.type === 'enum' && s.choices ? s.choices.split('|').map((c) => ({ value: c, label: c })) : undefined;
  const range = (s.type === 'int' || s.type === 'number') && s.min !== undefined ? `${s.min}…${s.max}` : '';
  async function save(e: Event) {
    e.preventDefault();
    setBusy(true); setErrors({}); setSaved('');
    try {
      const n = await api.put<Setting>(`/api/v1/policy/settings/${encodeURIComponent(s.key)}`, { value });
      props.onChange(n);
      setSaved('Saved.');
    } catch (err) {
      const ers = errorsOf(err);
      setErrors({ [s.key]: Object.values(ers)[0] });
    } finally { setBusy(false); }
  }
  async function reset() {
    setBusy(true); setErrors({}); setSaved('');
    try {
      await api.del(`/api/v1/policy/settings/${encodeURIComponent(s.key)}`);
      props.onChange(null);
      setSaved('Back to the default.');
    } catch (err) {
      setErrors({ [s.key]: Object.values(errorsOf(err))[0] });
    } finally { setBusy(false); }
  }
  return (
    <form class="setting" onSubmit={save} aria-label={s.key}>
      <Field label={s.key} name={s.key} value={value} onInput={setValue} errors={errors} options={options}
        type={s.type === 'int' ? 'number' : 'text'}
        hint={`${s.summary}${range ? ` (${range})` : ''} — default ${s.default || '(empty)'}${s.source === 'set' ? '; set here' : ''}`} />
      <div class="actions">
        <Button type="submit" kind="primary" busy={busy} disabled={value === s.value}>Save</Button>
        <Button onClick={reset} disabled={busy || s.source === 'default'}>Reset</Button>
        <span role="status" class="muted">{saved}</span>
      </div>
    </form>
  );
}

export function SettingsPage() {
  const [items, setItems] = useState<Setting[] | null>(null);
  const [generation, setGeneration] = useState(0);
  const [err, setErr] = useState('');
  const [filter, setFilter] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => {
    api.get<{ generation: number; items: Setting[] }>('/api/v1/policy/settings').then(
      (r) => { setItems(r.items); setGeneration(r.generation); },
      (e) => setErr(Object.values(errorsOf(e))[0]));
  }, [tick]);
  const shown = (items ?? []).filter((s) => !filter || s.key.includes(filter) || s.summary.toLowerCase().includes(filter.toLowerCase()));
  return (
    <section>
      <PageTitle>Settings</PageTitle>
      <p class="muted">Limits, checks and rejection texts. A change applies to the next SMTP connection. Policy generation {generation}.</p>
      {err && <p class="error" role="alert">{err}</p>}
      <BayesPanel />
      <Field label="Filter settings" name="filter" value={filter} onInput={setFilter} />
      {!items ? <Loading what="settings" /> : (
        <div class="settings">
          {shown.map((s) => (
            <SettingRow key={s.key} s={s} onChange={(n) => {
              if (n) setItems(items.map((x) => (x.key === n.key ? n : x)));
              else setTick(tick + 1);
            }} />
          ))}
        </div>
      )}
    </section>
  );
}
