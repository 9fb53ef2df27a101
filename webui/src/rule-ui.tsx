// The pieces of a rule page that the server rules (pages/rules.tsx) and the mailbox
// rules (pages/mailbox-rules.tsx) share: the condition editor (rows and nested
// all-of / any-of groups, no syntax to type; the field list is the page's), a file
// download, and the JSON import/export card of a rule set.
import { useState } from 'preact/hooks';
import { api } from './api';
import { Button, type ConfirmState, type Errors, errorsOf, Field, FormError, plural } from './ui';
import {
  FIELDS, fixedValues, type GroupState, newGroup, newRow, type NodeState, OP_LABELS, opsFor, parseImport, type RowState,
  SCORE_FIELDS, SCORE_PARTS, withField,
} from './rules';

type FieldList = { value: string; label: string }[];

const MODES = [{ value: 'all', label: 'all of (AND)' }, { value: 'any', label: 'any of (OR)' }];
const NUMERIC = ['size', 'recipient_count'];

function placeholderFor(r: RowState): string {
  if (r.op === 'matches' || r.op === 'not_matches') return 'regular expression';
  if (r.op === 'in_list') return 'list name';
  if (r.op === 'in_network') return '10.0.0.0/8, 2001:db8::/32';
  if (NUMERIC.includes(r.field)) return 'a whole number';
  if (SCORE_FIELDS.includes(r.field)) return 'a decimal, e.g. 5 or -0.5';
  if (r.field === 'client_address') return '192.0.2.7';
  return '';
}

export function CondRow(props: {
  row: RowState; label: string; errors: Errors; fields?: FieldList; onChange: (r: RowState) => void; onRemove: () => void;
}) {
  const r = props.row;
  const k = r.key;
  const set = (p: Partial<RowState>) => props.onChange({ ...r, ...p });
  const fixed = fixedValues(r.field);
  const caseApplies = !NUMERIC.includes(r.field) && !SCORE_FIELDS.includes(r.field) && !fixed && r.field !== 'client_address' &&
    r.op !== 'in_list';
  return (
    <div class={'cond-row' + (r.not ? ' negated' : '')} role="group" aria-label={props.label}>
      <label class="check"><input type="checkbox" checked={r.not} onChange={(e) => set({ not: (e.target as HTMLInputElement).checked })} /> not</label>
      <Field label="Field" name={`${k}.field`} value={r.field} errors={props.errors}
        options={(props.fields ?? FIELDS).map((f) => ({ value: f.value, label: f.label }))}
        onInput={(v) => props.onChange(withField(r, v))} />
      {r.field === 'header' && (
        <Field label="Header name" name={`${k}.header`} value={r.header} errors={props.errors} onInput={(v) => set({ header: v })}
          placeholder="Subject" />
      )}
      {r.field === 'score_part' && (
        <Field label="Part name" name={`${k}.part`} value={r.part} errors={props.errors} onInput={(v) => set({ part: v })}
          placeholder="BAYES" hint={`e.g. ${SCORE_PARTS.join(', ')}zone`} />
      )}
      <Field label="Operator" name={`${k}.op`} value={r.op} errors={props.errors}
        options={opsFor(r.field).map((o) => ({ value: o, label: OP_LABELS[o] ?? o }))} onInput={(v) => set({ op: v })} />
      {fixed ? (
        <Field label="Value" name={`${k}.value`} value={r.value} errors={props.errors} options={fixed.map((f) => ({ value: f, label: f }))}
          onInput={(v) => set({ value: v })} />
      ) : (
        <Field label="Value" name={`${k}.value`} value={r.value} errors={props.errors} onInput={(v) => set({ value: v })}
          placeholder={placeholderFor(r)} />
      )}
      {caseApplies && (
        <label class="check"><input type="checkbox" checked={r.sensitive}
          onChange={(e) => set({ sensitive: (e.target as HTMLInputElement).checked })} /> case-sensitive</label>
      )}
      <Button onClick={props.onRemove} label={`Remove ${props.label}`}>Remove</Button>
    </div>
  );
}

export function CondGroup(props: {
  group: GroupState; label: string; prefix: string; errors: Errors; depth: number; fields?: FieldList;
  onChange: (g: GroupState) => void; onRemove?: () => void;
}) {
  const g = props.group;
  const setItem = (i: number, n: NodeState) => props.onChange({ ...g, items: g.items.map((x, j) => (j === i ? n : x)) });
  const removeItem = (i: number) => props.onChange({ ...g, items: g.items.filter((_, j) => j !== i) });
  const err = props.errors[String(g.key)];
  return (
    <fieldset class={'cond-group' + (g.not ? ' negated' : '')} aria-describedby={err ? `g${g.key}-err` : undefined}>
      <legend>{props.label}</legend>
      <div class="cond-head">
        <Field label="Match" name={`${g.key}.mode`} value={g.mode} options={MODES}
          onInput={(v) => props.onChange({ ...g, mode: v === 'any' ? 'any' : 'all' })} />
        <label class="check"><input type="checkbox" checked={g.not}
          onChange={(e) => props.onChange({ ...g, not: (e.target as HTMLInputElement).checked })} /> not (this group must not hold)</label>
      </div>
      {g.items.length === 0 && <p class="muted">{props.onRemove || props.prefix !== 'Except ' ? 'No condition yet.' : 'No exception.'}</p>}
      {g.items.map((n, i) => {
        const num = props.depth === 0 ? `${i + 1}` : `${props.label.replace(/^.*Group /, '')}.${i + 1}`;
        return n.kind === 'row' ? (
          <CondRow key={n.key} row={n} label={`${props.prefix}Condition ${num}`} errors={props.errors} fields={props.fields}
            onChange={(r) => setItem(i, r)} onRemove={() => removeItem(i)} />
        ) : (
          <CondGroup key={n.key} group={n} label={`${props.prefix}Group ${num}`} prefix={props.prefix} errors={props.errors}
            fields={props.fields} depth={props.depth + 1} onChange={(x) => setItem(i, x)} onRemove={() => removeItem(i)} />
        );
      })}
      {err && <p id={`g${g.key}-err`} class="field-error" role="alert">{err}</p>}
      <div class="actions">
        <Button onClick={() => props.onChange({ ...g, items: [...g.items, newRow()] })} label={`Add condition to ${props.label}`}>+ Condition</Button>
        {props.depth < 15 && (
          <Button onClick={() => props.onChange({ ...g, items: [...g.items, newGroup(g.mode === 'all' ? 'any' : 'all', [newRow()])] })}
            label={`Add group to ${props.label}`}>+ Group</Button>
        )}
        {props.onRemove && <Button onClick={props.onRemove} label={`Remove ${props.label}`}>Remove group</Button>}
      </div>
    </fieldset>
  );
}

/* Hands `text` to the browser as a download named `name`. */
export function downloadText(text: string, name: string, type: string): void {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/*
 * Export of a whole set as JSON (GET `exportPath`, saved as `filename`) and import of
 * an array of rules (POST `importPath` {rules, mode}) after a dialog that counts the
 * current and the imported rules; an error naming `rules[i]…` shows under the box.
 */
export function ImportExport(props: {
  count: number; exportPath: string; importPath: string; filename: string;
  onDone: (msg: string) => void; confirm: (c: ConfirmState) => void;
}) {
  const [text, setText] = useState('');
  const [mode, setMode] = useState('replace');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);

  async function exportSet() {
    setBusy(true);
    setErrors({});
    try {
      const data = await api.get<unknown[]>(props.exportPath);
      downloadText(JSON.stringify(data, null, 2) + '\n', props.filename, 'application/json');
      props.onDone(`Exported ${plural(Array.isArray(data) ? data.length : 0, 'rule')} to ${props.filename}.`);
    } catch (err) {
      setErrors(errorsOf(err));
    } finally {
      setBusy(false);
    }
  }

  function start(e: Event) {
    e.preventDefault();
    setErrors({});
    const parsed = parseImport(text);
    if ('error' in parsed) {
      setErrors({ rules: parsed.error });
      return;
    }
    const m = parsed.rules.length;
    const replace = mode === 'replace';
    props.confirm({
      title: replace ? `Replace the ${plural(props.count, 'current rule')} with ${plural(m, 'imported rule')}?` : `Append ${plural(m, 'rule')}?`,
      body: replace
        ? `The ${plural(props.count, 'current rule')} and their hit counts are removed and ${plural(m, 'rule')} from the import take their place. Nothing changes if any imported rule is refused.`
        : `${plural(m, 'rule')} are added after the ${plural(props.count, 'current rule')}. Nothing changes if any imported rule is refused.`,
      action: `Import ${plural(m, 'rule')}`,
      run: async () => {
        try {
          const r = await api.post<{ imported: number }>(props.importPath, { rules: parsed.rules, mode });
          setText('');
          props.onDone(`Imported ${plural(r.imported, 'rule')} (${replace ? 'replaced the set' : 'appended'}).`);
        } catch (err) {
          /* shown under the box the rules came from, naming the rule: "rules[3].when…" */
          const ers = errorsOf(err);
          const [[f, msg]] = Object.entries(ers);
          setErrors({ rules: f === '_' || f.startsWith('rules') ? msg : `${f}: ${msg}` });
        }
      },
    });
  }

  async function load(e: Event) {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) setText(await f.text());
  }

  return (
    <section class="card" aria-labelledby="io-title">
      <h2 id="io-title">Import and export</h2>
      <div class="actions">
        <Button onClick={exportSet} busy={busy}>Export JSON</Button>
        <span class="muted">the whole set, in order, without ids and counters</span>
      </div>
      <form aria-label="Import rules" onSubmit={start}>
        <Field label="Rules to import (JSON)" name="rules" value={text} onInput={setText} errors={errors} multiline rows={6}
          hint="An array of rules as Export JSON writes it." />
        <div class="toolbar">
          <div class="field">
            <label for="rules-file">Load a file</label>
            <input id="rules-file" type="file" accept=".json,application/json" onChange={load} />
          </div>
          <Field label="Mode" name="mode" value={mode} onInput={setMode} errors={errors}
            options={[{ value: 'replace', label: 'replace the whole set' }, { value: 'append', label: 'append after the current rules' }]} />
          <Button type="submit" kind="primary" disabled={!text.trim()}>Import…</Button>
        </div>
        <FormError errors={errors} fields={['rules', 'mode']} />
      </form>
    </section>
  );
}
