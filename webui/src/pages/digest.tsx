// The quarantine digest (administrators, /digest): the template's subject,
// text and HTML (/api/v1/quarantine/digest/template), a preview of the digest
// one user would get now (text, and the HTML in an <iframe sandbox> by
// srcdoc: no scripts, an opaque origin), and "send now" for that user.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { Button, type Errors, errorsOf, Field, FormError, Loading, PageTitle, plural } from '../ui';

interface Template { subject: string; text: string; html: string }

export function DigestPage() {
  const [tpl, setTpl] = useState<Template | null>(null);
  const [loadErr, setLoadErr] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState('');
  const [user, setUser] = useState('');
  const [pErrors, setPErrors] = useState<Errors>({});
  const [previewing, setPreviewing] = useState(false);
  const [sending, setSending] = useState(false);
  const [preview, setPreview] = useState<(Template & { user: string }) | null>(null);
  const [sent, setSent] = useState('');

  useEffect(() => {
    api.get<Template>('/api/v1/quarantine/digest/template').then(setTpl, (e) => setLoadErr(Object.values(errorsOf(e))[0]));
  }, []);

  const set = (k: keyof Template) => (v: string) => tpl && setTpl({ ...tpl, [k]: v });

  async function save(e: Event) {
    e.preventDefault();
    if (!tpl) return;
    setSaving(true);
    setErrors({});
    setSaved('');
    try {
      const r = await api.put<Template | undefined>('/api/v1/quarantine/digest/template', tpl);
      if (r && typeof r === 'object' && 'subject' in r) setTpl(r);
      setSaved('Template saved.');
    } catch (err) {
      setErrors(errorsOf(err));
    } finally {
      setSaving(false);
    }
  }

  async function doPreview() {
    setPreviewing(true);
    setPErrors({});
    setSent('');
    try {
      const r = await api.post<Template>('/api/v1/quarantine/digest/preview', { user: user.trim() });
      setPreview({ ...r, user: user.trim() });
    } catch (err) {
      setPreview(null);
      setPErrors(errorsOf(err));
    } finally {
      setPreviewing(false);
    }
  }

  async function sendNow() {
    setSending(true);
    setPErrors({});
    setSent('');
    try {
      const r = await api.post<{ items: number; qid: string | null }>('/api/v1/quarantine/digest/send', { user: user.trim() });
      setSent(r.items > 0
        ? `Digest of ${plural(r.items, 'item')} sent to ${user.trim()}${r.qid ? ` (queue id ${r.qid})` : ''}.`
        : `Nothing in quarantine for ${user.trim()}: no digest sent.`);
    } catch (err) {
      setPErrors(errorsOf(err));
    } finally {
      setSending(false);
    }
  }

  return (
    <section>
      <PageTitle>Quarantine digest</PageTitle>
      <p class="muted">Each user gets a mail listing what was quarantined for them at the interval they choose on their account page
        (daily unless changed), with signed links that release, delete or allow each item.</p>
      {loadErr && <p class="error" role="alert">{loadErr}</p>}
      {!tpl && !loadErr && <Loading what="the template" />}
      {tpl && (
        <form class="card" aria-label="Digest template" onSubmit={save}>
          <h2>Template</h2>
          <Field label="Subject" name="subject" value={tpl.subject} onInput={set('subject')} errors={errors} />
          <Field label="Text" name="text" value={tpl.text} onInput={set('text')} errors={errors} multiline rows={10} />
          <Field label="HTML" name="html" value={tpl.html} onInput={set('html')} errors={errors} multiline rows={10} />
          <FormError errors={errors} fields={['subject', 'text', 'html']} />
          <Button type="submit" kind="primary" busy={saving}>Save template</Button>
          {saved && <p role="status" class="notice">{saved}</p>}
        </form>
      )}
      <form class="card inline-form" aria-label="Preview or send a digest" onSubmit={(e) => { e.preventDefault(); doPreview(); }}>
        <h2>Preview or send</h2>
        <Field label="User" name="user" value={user} onInput={setUser} errors={pErrors} required hint="a console user name" />
        <FormError errors={pErrors} fields={['user']} />
        <Button type="submit" busy={previewing}>Preview</Button>
        <Button kind="primary" busy={sending} disabled={!user.trim()} onClick={sendNow}>Send now</Button>
      </form>
      {sent && <p role="status" class="notice">{sent}</p>}
      {preview && (
        <section class="card preview" role="region" aria-label={`Digest preview for ${preview.user}`}>
          <h2>Preview for {preview.user}</h2>
          <dl class="headers"><dt>Subject</dt><dd class="q-subject">{preview.subject}</dd></dl>
          <h3>Text</h3>
          <pre class="text-part">{preview.text}</pre>
          <h3>HTML</h3>
          <iframe class="html-part" sandbox="" referrerpolicy="no-referrer" title={`HTML digest for ${preview.user}`} srcdoc={preview.html} />
        </section>
      )}
    </section>
  );
}
