// The Moat console: session check, login, navigation by role, routes.
// A user (not administrator) never gets an administrator's link or page;
// the server refuses those resources anyway (403).
import { render, type JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { api, ApiError, setCsrf, setUnauthenticatedHandler, type Session } from './api';
import { Button, Errors, errorsOf, Field, FormError, Link, Loading, navigate, usePath } from './ui';
import { Dashboard } from './pages/dashboard';
import { ListsPage } from './pages/lists';
import { DnsblPage } from './pages/dnsbl';
import { GreylistPage } from './pages/greylist';
import { SettingsPage } from './pages/settings';
import { ScorePage } from './pages/score';
import { DkimPage } from './pages/dkim';
import { DirectoryPage } from './pages/directory';
import { QueuePage } from './pages/queue';
import { MessagesPage } from './pages/messages';
import { AuditPage } from './pages/audit';
import { TokensPage } from './pages/tokens';
import { AccountPage } from './pages/account';
import { AccountsPage } from './pages/accounts';
import { RulesPage } from './pages/rules';
import { QuarantinePage } from './pages/quarantine';
import { MySendersPage } from './pages/selfservice';
import { DigestPage } from './pages/digest';
import { TimelinePage } from './pages/timeline';
import { MailboxRulesPage, rulesOwner } from './pages/mailbox-rules';

interface Route {
  path: string;
  title: string;
  admin: boolean;
  view: (s: Session) => JSX.Element;
  /* reachable but not in the navigation (hidden), or listed for end users only (an
     administrator's own pages cover it: the quarantine shows them every item) */
  nav?: 'hidden' | 'user';
  /* matches more than `path` and what lies under it */
  match?: (path: string) => boolean;
}

const routes: Route[] = [
  { path: '/', title: 'Dashboard', admin: true, view: () => <Dashboard /> },
  { path: '/lists', title: 'Lists', admin: true, view: () => <ListsPage /> },
  { path: '/dnsbl', title: 'DNS blocklists', admin: true, view: () => <DnsblPage /> },
  { path: '/rules', title: 'Server rules', admin: true, view: () => <RulesPage /> },
  { path: '/greylist', title: 'Greylist', admin: true, view: () => <GreylistPage /> },
  { path: '/queue', title: 'Queue', admin: true, view: () => <QueuePage /> },
  { path: '/quarantine', title: 'Quarantine', admin: true, view: (s) => <QuarantinePage session={s} mine={false} /> },
  { path: '/messages', title: 'Message log', admin: true, view: () => <MessagesPage /> },
  { path: '/directory/rules', title: 'Mailbox rules', admin: true, view: () => <MailboxRulesPage path={location.pathname} />, nav: 'hidden',
    match: (p) => p.startsWith('/directory/') && rulesOwner(p) !== null },
  { path: '/directory', title: 'Directory', admin: true, view: (s) => <DirectoryPage session={s} /> },
  { path: '/accounts', title: 'Accounts', admin: true, view: () => <AccountsPage /> },
  { path: '/score', title: 'Spam score', admin: true, view: () => <ScorePage /> },
  { path: '/dkim', title: 'DKIM', admin: true, view: () => <DkimPage /> },
  { path: '/settings', title: 'Settings', admin: true, view: () => <SettingsPage /> },
  { path: '/digest', title: 'Digest', admin: true, view: () => <DigestPage /> },
  { path: '/timeline', title: 'Timeline', admin: true, view: () => <TimelinePage />, nav: 'hidden' },
  { path: '/audit', title: 'Audit log', admin: true, view: () => <AuditPage /> },
  { path: '/tokens', title: 'API tokens', admin: false, view: (s) => <TokensPage session={s} /> },
  { path: '/account', title: 'My account', admin: false, view: (s) => <AccountPage session={s} /> },
  { path: '/my/quarantine', title: 'My quarantine', admin: false, view: (s) => <QuarantinePage session={s} mine />, nav: 'user' },
  { path: '/my/rules', title: 'My rules', admin: false, view: () => <MailboxRulesPage path={location.pathname} /> },
  { path: '/my/senders', title: 'My senders', admin: false, view: () => <MySendersPage /> },
];

function routeFor(path: string): Route | undefined {
  if (path === '/' || path === '') return routes[0];
  return routes.find((r) => r.path !== '/' && (r.match ? r.match(path) : path === r.path || path.startsWith(r.path + '/')));
}

function Login(props: { onLogin: (s: Session) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      const s = await api.post<Session>('/api/v1/session', { username, password });
      props.onLogin(s);
    } catch (err) {
      const ers = errorsOf(err);
      if (err instanceof ApiError && err.status === 401) ers._ = 'Wrong user name or password.';
      setErrors(ers);
    } finally {
      setBusy(false);
    }
  }
  return (
    <main class="login" id="main">
      <form onSubmit={submit} class="card" aria-labelledby="login-title">
        <h1 id="login-title">Moat console</h1>
        <Field label="User name" name="username" value={username} onInput={setUsername} errors={errors} autocomplete="username" required />
        <Field label="Password" name="password" type="password" value={password} onInput={setPassword} errors={errors}
          autocomplete="current-password" required />
        <FormError errors={errors} fields={['username', 'password']} />
        <Button type="submit" kind="primary" busy={busy}>Log in</Button>
      </form>
    </main>
  );
}

/* A hint (not a secret: the session cookie is HttpOnly) that a session may exist. */
const MARK = 'moat.session';
function remembered(): boolean {
  try {
    return localStorage.getItem(MARK) === '1';
  } catch {
    return true;
  }
}
function remember(): void {
  try {
    localStorage.setItem(MARK, '1');
  } catch {
    /* private mode: probe every time */
  }
}
function forget(): void {
  try {
    localStorage.removeItem(MARK);
  } catch {
    /* ignore */
  }
}

function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
      <p>There is no such page for you here. <Link href="/account">Go to your account</Link>.</p>
    </section>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [menuOpen, setMenuOpen] = useState(false);
  const path = usePath();

  useEffect(() => {
    setUnauthenticatedHandler(() => {
      setCsrf('');
      forget();
      setSession(null);
    });
    /* Only probe when this browser logged in before: no 401 noise on a first visit. */
    if (!remembered()) {
      setSession(null);
      return;
    }
    api.get<Session>('/api/v1/session').then(
      (s) => {
        setCsrf(s.csrf_token);
        setSession(s);
      },
      () => {
        forget();
        setSession(null);
      },
    );
  }, []);

  useEffect(() => setMenuOpen(false), [path]);

  if (session === undefined) return <Loading what="the console" />;
  if (session === null) {
    return (
      <Login onLogin={(s) => {
        remember();
        setCsrf(s.csrf_token);
        setSession(s);
        if (!s.admin) navigate('/account');
      }} />
    );
  }
  const route = routeFor(path);
  const allowed = route && (!route.admin || session.admin);
  if (route?.path === '/' && !session.admin) {
    navigate('/account');
    return null;
  }
  const visible = routes.filter((r) => (!r.admin || session.admin) && r.nav !== 'hidden' && !(r.nav === 'user' && session.admin));
  async function logout() {
    try {
      await api.del('/api/v1/session');
    } catch {
      /* the session may be gone already */
    }
    setCsrf('');
    forget();
    setSession(null);
    navigate('/');
  }
  return (
    <div class="shell">
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">Moat</span>
        <button type="button" class="btn plain menu-toggle" aria-expanded={menuOpen} aria-controls="nav"
          onClick={() => setMenuOpen(!menuOpen)}>Menu</button>
        <span class="who">
          {session.user.name} <span class="badge">{session.admin ? 'administrator' : 'user'}</span>
        </span>
        <Button onClick={logout}>Log out</Button>
      </header>
      <nav id="nav" class={'side' + (menuOpen ? ' open' : '')} aria-label="Main">
        <ul>
          {visible.map((r) => (
            <li><Link href={r.path} current={route === r}>{r.title}</Link></li>
          ))}
        </ul>
      </nav>
      <main id="main" class="content">
        {allowed && route ? route.view(session) : <NotFound />}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
