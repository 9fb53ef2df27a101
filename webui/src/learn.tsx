// Teaching the statistical filter from the console (docs/score.md, "Learning"):
// "Learn as spam" / "Learn as not spam" on a quarantine item or a message log
// entry (POST .../learn), and the "Statistical filter" panel of the settings
// page (GET /api/v1/bayes). The server says the outcome (learned, already,
// moved ...); a 409 means the message's content is no longer kept.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { Button, errorsOf, Loading } from './ui';

export interface LearnResult { class: string; outcome: string; user_id?: number; user_outcome?: string }

export function learnMessage(r: LearnResult): string {
  const what = r.class === 'spam' ? 'as spam' : r.class === 'ham' ? 'as not spam' : 'forgotten';
  const own = r.user_outcome ? `; your own filter: ${r.user_outcome}` : '';
  return `Learned ${what}: ${r.outcome}${own}.`;
}

export function LearnButtons(props: { path: string; what: string }) {
  const [busy, setBusy] = useState<'' | 'spam' | 'ham'>('');
  const [msg, setMsg] = useState('');
  const [err, setErr] = useState('');
  async function learn(cls: 'spam' | 'ham') {
    setBusy(cls); setMsg(''); setErr('');
    try {
      setMsg(learnMessage(await api.post<LearnResult>(props.path, { class: cls })));
    } catch (e) {
      setErr(Object.values(errorsOf(e))[0] ?? 'Learning failed.');
    } finally { setBusy(''); }
  }
  return (
    <div class="actions learn">
      <Button busy={busy === 'spam'} disabled={busy !== ''} label={`Learn as spam: ${props.what}`} onClick={() => learn('spam')}>Learn as spam</Button>
      <Button busy={busy === 'ham'} disabled={busy !== ''} label={`Learn as not spam: ${props.what}`} onClick={() => learn('ham')}>Learn as not spam</Button>
      <span role="status" class="muted">{msg}</span>
      {err && <span role="alert" class="error">{err}</span>}
    </div>
  );
}

interface BayesModel { user_id: number; user: string | null; spam: number; ham: number; tokens: number; learned: number }
interface Bayes { generation: number; store_bytes: number; min_learned: number; models: BayesModel[] }

export function BayesPanel() {
  const [b, setB] = useState<Bayes | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    api.get<Bayes>('/api/v1/bayes').then(setB, (e) => setErr(Object.values(errorsOf(e))[0]));
  }, []);
  return (
    <section class="card" aria-label="Statistical filter">
      <h2>Statistical filter</h2>
      {err && <p class="error" role="alert">{err}</p>}
      {!b && !err && <Loading what="the statistical filter" />}
      {b && (
        <>
          <p class="muted">A model is used once it has learned {b.min_learned} spam and {b.min_learned} ham.
            Store {(b.store_bytes / 1e6).toFixed(1)} MB, generation {b.generation}.</p>
          {b.models.length === 0 ? <p>Nothing learned yet.</p> : (
            <table>
              <thead><tr><th scope="col">Model</th><th scope="col">Spam</th><th scope="col">Ham</th><th scope="col">Tokens</th><th scope="col">In use</th></tr></thead>
              <tbody>
                {b.models.map((m) => (
                  <tr key={m.user_id}>
                    <td>{m.user_id === 0 ? 'Global' : (m.user ?? `user ${m.user_id}`)}</td>
                    <td>{m.spam}</td><td>{m.ham}</td><td>{m.tokens}</td>
                    <td>{m.spam >= b.min_learned && m.ham >= b.min_learned ? 'yes' : 'not yet'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
