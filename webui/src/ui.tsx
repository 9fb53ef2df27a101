// Shared pieces: routing, form fields with their API error, confirmation
// dialog, pagination by cursor, busy buttons, time formatting.
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState, useCallback } from 'preact/hooks';
import { ApiError } from './api';

/* ---- routing (history API; moatd falls back to index.html) ---- */

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

export function navigate(path: string): void {
  if (path === location.pathname + location.search) return;
  history.pushState(null, '', path);
  listeners.forEach((l) => l());
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const l = () => setPath(location.pathname);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return path;
}

export function Link(props: { href: string; children: ComponentChildren; class?: string; current?: boolean; label?: string }) {
  return (
    <a
      href={props.href}
      class={props.class}
      aria-label={props.label}
      aria-current={props.current ? 'page' : undefined}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

/* ---- formatting ---- */

export function fmtTime(ms: number | null | undefined): string {
  if (!ms) return '—';
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function plural(n: number, one: string, many?: string): string {
  return `${n} ${n === 1 ? one : many ?? one + 's'}`;
}

/* ---- errors ---- */

export type Errors = Record<string, string>;

/* An API error keyed by its field ("_" when it concerns no field). */
export function errorsOf(e: unknown): Errors {
  if (e instanceof ApiError) {
    return e.field ? { [e.field]: e.message } : { _: e.message };
  }
  return { _: e instanceof Error ? e.message : String(e) };
}

export function FormError(props: { errors: Errors; fields?: string[] }) {
  const known = props.fields ?? [];
  const rest = Object.entries(props.errors).filter(([k]) => !known.includes(k));
  if (rest.length === 0) return null;
  return (
    <p class="error" role="alert">
      {rest.map(([k, v]) => (k === '_' ? v : `${k}: ${v}`)).join('; ')}
    </p>
  );
}

let fieldSeq = 0;

export function Field(props: {
  label: string;
  name: string;
  errors?: Errors;
  value: string;
  onInput: (v: string) => void;
  type?: string;
  placeholder?: string;
  required?: boolean;
  autocomplete?: string;
  hint?: string;
  options?: { value: string; label: string }[];
  multiline?: boolean;
  rows?: number;
}) {
  const [id] = useState(() => `f${++fieldSeq}`);
  const err = props.errors?.[props.name];
  const describedBy = [err ? `${id}-err` : '', props.hint ? `${id}-hint` : ''].filter(Boolean).join(' ') || undefined;
  const common = {
    id,
    name: props.name,
    'aria-invalid': err ? true : undefined,
    'aria-describedby': describedBy,
    required: props.required,
  };
  let control: JSX.Element;
  if (props.options) {
    control = (
      <select {...common} value={props.value} onChange={(e) => props.onInput((e.target as HTMLSelectElement).value)}>
        {props.options.map((o) => (
          <option value={o.value}>{o.label}</option>
        ))}
      </select>
    );
  } else if (props.multiline) {
    control = (
      <textarea {...common} rows={props.rows ?? 6} value={props.value} placeholder={props.placeholder}
        onInput={(e) => props.onInput((e.target as HTMLTextAreaElement).value)} />
    );
  } else {
    control = (
      <input {...common} type={props.type ?? 'text'} value={props.value} placeholder={props.placeholder}
        autocomplete={props.autocomplete} onInput={(e) => props.onInput((e.target as HTMLInputElement).value)} />
    );
  }
  return (
    <div class={'field' + (err ? ' has-error' : '')}>
      <label for={id}>{props.label}</label>
      {control}
      {props.hint && <small id={`${id}-hint`} class="hint">{props.hint}</small>}
      {err && <small id={`${id}-err`} class="field-error" role="alert">{err}</small>}
    </div>
  );
}

/* ---- buttons and progress ---- */

export function Button(props: {
  onClick?: () => void;
  busy?: boolean;
  disabled?: boolean;
  kind?: 'primary' | 'danger' | 'plain';
  type?: 'button' | 'submit';
  children: ComponentChildren;
  label?: string;
}) {
  return (
    <button
      type={props.type ?? 'button'}
      class={`btn ${props.kind ?? 'plain'}`}
      disabled={props.disabled || props.busy}
      aria-busy={props.busy ? true : undefined}
      aria-label={props.label}
      onClick={props.onClick}
    >
      {props.busy && <span class="spinner" aria-hidden="true" />}
      {props.children}
    </button>
  );
}

export function Loading(props: { what?: string }) {
  return (
    <p class="loading" role="status">
      <span class="spinner" aria-hidden="true" /> Loading{props.what ? ` ${props.what}` : ''}…
    </p>
  );
}

/* ---- confirmation ---- */

export interface ConfirmState {
  title: string;
  body: string;
  action: string;
  run: () => Promise<void>;
}

/* A modal <dialog>: Escape cancels, focus stays inside, the button says what it does. */
export function ConfirmDialog(props: { state: ConfirmState | null; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.state && !d.open) {
      setError('');
      d.showModal();
    } else if (!props.state && d.open) {
      d.close();
    }
  }, [props.state]);
  const s = props.state;
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title" onClose={() => !busy && props.onClose()}
      onCancel={(e) => { if (busy) e.preventDefault(); }}>
      {s && (
        <form method="dialog" onSubmit={(e) => e.preventDefault()}>
          <h2 id="confirm-title">{s.title}</h2>
          <p>{s.body}</p>
          {error && <p class="error" role="alert">{error}</p>}
          <div class="actions">
            <Button onClick={() => props.onClose()} disabled={busy}>Cancel</Button>
            <Button kind="danger" busy={busy} onClick={async () => {
              setBusy(true);
              setError('');
              try {
                await s.run();
                setBusy(false);
                props.onClose();
              } catch (e) {
                setBusy(false);
                setError(errorsOf(e)._ ?? Object.values(errorsOf(e))[0]);
              }
            }}>{s.action}</Button>
          </div>
        </form>
      )}
    </dialog>
  );
}

/* ---- answers that belong to a query ---- */

/*
 * The answer to one query, by key. `data` is only ever the answer to the key of
 * this very render: when the key changes (a filter applied, another page) the
 * same render already reports loading and no data, so no label of a new query
 * ever stands over rows of the old one. A response that arrives after a newer
 * request was made is dropped, whatever order the server answers in.
 */
export interface Keyed<T> {
  data: T | null;
  loading: boolean;
  error: string;
  errors: Errors;
  reload: () => void;
}

export function useKeyed<T>(key: string, fetch: () => Promise<T>): Keyed<T> {
  const [tick, setTick] = useState(0);
  const want = JSON.stringify([tick, key]);
  /* seq: the number of the newest request made; an answer counts only while it is that one's */
  const seq = useRef(0);
  const [got, setGot] = useState<{ want: string; seq: number; data: T | null; errors: Errors } | null>(null);
  const fetchRef = useRef(fetch);
  fetchRef.current = fetch;
  useEffect(() => {
    const mine = ++seq.current;
    let alive = true;
    /* an older request's answer is stale even when it is the last to arrive */
    const settle = (data: T | null, errors: Errors) => {
      if (alive && seq.current === mine) setGot({ want, seq: mine, data, errors });
    };
    fetchRef.current().then((d) => settle(d, {}), (e) => settle(null, errorsOf(e)));
    return () => {
      alive = false;
    };
  }, [want]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  /* Back to an earlier key (A, B, A): A's first answer is not shown; A is asked again. The
     render that changes the key still sees the previous request's number, so it is loading. */
  const mineNow = got !== null && got.want === want && got.seq === seq.current;
  const errors = mineNow ? got.errors : {};
  return {
    data: mineNow ? got.data : null,
    loading: !mineNow,
    error: Object.values(errors)[0] ?? '',
    errors,
    reload,
  };
}

/* ---- lists with cursor pagination ---- */

export interface Paged<T> {
  items: T[];          /* the rows of page `page` of the current key; [] while loading */
  loading: boolean;
  error: string;
  errors: Errors;
  page: number;
  hasNext: boolean;
  next: () => void;
  prev: () => void;
  reload: () => void;
}

/* fetchPage(cursor) -> {items, next_cursor}; restarts at page 1 when key changes. */
export function usePaged<T>(key: string, fetchPage: (cursor: string | null) => Promise<{ items: T[]; next_cursor: string | null }>): Paged<T> {
  const [pos, setPos] = useState<{ key: string; cursors: (string | null)[]; page: number }>({ key, cursors: [null], page: 0 });
  /* a new key starts at page 1 in this very render: no request with an old cursor */
  const cur = pos.key === key ? pos : { key, cursors: [null], page: 0 };
  const cursor = cur.cursors[cur.page] ?? null;
  useEffect(() => {
    if (pos.key !== key) setPos({ key, cursors: [null], page: 0 });
  }, [key]);
  const r = useKeyed(JSON.stringify([key, cur.page, cursor]), () => fetchPage(cursor));
  const nextCursor = r.data?.next_cursor ?? null;
  const next = useCallback(() => {
    if (!nextCursor) return;
    setPos((p) => {
      const b = p.key === key ? p : { key, cursors: [null], page: 0 };
      return { ...b, cursors: [...b.cursors.slice(0, b.page + 1), nextCursor], page: b.page + 1 };
    });
  }, [nextCursor, key]);
  const prev = useCallback(() => setPos((p) => ({ ...p, page: Math.max(0, p.page - 1) })), []);
  return {
    items: r.data?.items ?? [], loading: r.loading, error: r.error, errors: r.errors,
    page: cur.page, hasNext: !!nextCursor, next, prev, reload: r.reload,
  };
}

let resultsSeq = 0;

/*
 * The one place a query's rows are shown: a region named `label` that is
 * aria-busy until its rows answer `query` (and `page`), says which query it
 * shows or is loading (also as data-query, for scripts and tests), and hands
 * the rows to `children` only once they belong to that query.
 */
export function Results<T>(props: {
  label: string;
  query: string;
  page?: number;
  loading: boolean;
  error: string;
  items: T[] | null;
  empty: ComponentChildren;
  /* the page shows the error itself (next to the fields of its form) */
  errorShown?: boolean;
  children: (items: T[]) => ComponentChildren;
}) {
  const [id] = useState(() => `results${++resultsSeq}`);
  const what = props.page === undefined ? props.query : `${props.query}, page ${props.page + 1}`;
  const busy = props.loading;
  let body: ComponentChildren = null;
  if (busy) body = null;
  else if (props.error) body = props.errorShown ? null : <p class="error" role="alert">{props.error}</p>;
  else if (!props.items || props.items.length === 0) body = props.empty;
  else body = props.children(props.items);
  return (
    <div class="results" role="region" aria-label={props.label} aria-busy={busy ? 'true' : 'false'}
      aria-describedby={id} data-query={what}>
      <p id={id} class={busy ? 'results-for loading' : 'results-for'} role="status">
        {busy ? <><span class="spinner" aria-hidden="true" /> Loading {what}…</> : <>Showing {what}</>}
      </p>
      {body}
    </div>
  );
}

export function Pager(props: { p: Paged<unknown>; label: string }) {
  const { p } = props;
  return (
    <nav class="pager" aria-label={`${props.label} pages`}>
      <Button onClick={p.prev} disabled={p.page === 0 || p.loading}>‹ Previous</Button>
      <span aria-live="polite">Page {p.page + 1}</span>
      <Button onClick={p.next} disabled={!p.hasNext || p.loading}>Next ›</Button>
    </nav>
  );
}

export function PageTitle(props: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return <h1 tabIndex={-1} ref={ref}>{props.children}</h1>;
}
