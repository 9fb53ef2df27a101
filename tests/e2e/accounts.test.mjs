// End-to-end tests of the console's Accounts pages (docs/console.md, "Accounts"):
// the real moatd (MOATD_BIN, port 0, a temp data dir) taking authenticated
// submission for example.org (AUTH PLAIN on the plain port) and delivering to
// the SMTP sink of lib.mjs, driven by Debian's chromium through playwright-core.
//
//   node --test tests/e2e/            (ctest: the "e2e" test)
//
// Flows: bob's mail is deferred while the downstream is down; bob then tries
// senders that are not his and is suspended by moatd itself, which holds his
// deferred mail; the administrator sees him first by score with the why of it,
// his held mail in the queue and his message log through the row's links, opens
// his alert (signals with values, client address, sample messages linking to
// their timelines), and lifts with "release held mail": the held messages arrive
// at the sink. carol is trusted for bulk mail until a date (the row says so,
// the API agrees), the trust is removed, she is suspended now with a reason and
// lifted keeping her (empty) held mail; a failed SMTP login for her shows in the
// AUTH failures column with its client address. Every wait is on an event (a
// region's aria-busy/data-query, a row, an API state, a mail at the sink), bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_PASSWORD, apiOf, closeBrowser, d, finishMoatd, launchBrowser, login, moatd, newPage, results, shot, sink,
  SKIP, sleep, smtpClient, startMoatd, startSink, WAIT,
} from './lib.mjs';

if (SKIP) console.log(`# e2e skipped: ${SKIP}`);

const BOB_PASSWORD = 'bob-password-1';
const CAROL_PASSWORD = 'carol-password-1';
const BY_SCORE = 'all accounts, by score descending, page 1';

before(async () => {
  if (SKIP) return;
  await startSink();
  await startMoatd({
    prefix: 'moat-e2e-acc-',
    conf: [
      'delivery = yes', `downstream = 127.0.0.1:${sink.port}`, 'downstream_tls = off',
      // AUTH on the plain port; a low score so two senders that are not bob's suspend him
      'auth_allow_plaintext = yes',
      'account_suspend_score = 10',
    ],
    prepare: async () => {
      await moatd(['policy', '--data-dir', d.data, 'add', 'local_domain', 'example.org']);
      await moatd(['policy', '--data-dir', d.data, 'set', 'recipient_verify', 'no']);
    },
  });
  sink.server.on('connection', (s) => { conns.add(s); s.on('close', () => conns.delete(s)); });
  await launchBrowser();
});

after(async () => {
  try {
    await closeBrowser();
  } finally {
    try {
      await finishMoatd();
    } finally {
      if (sink.server) sink.server.close();
    }
  }
});

const b64 = (s) => Buffer.from(s).toString('base64');

/* An authenticated session from localAddress: AUTH PLAIN user/password; the AUTH reply. */
async function authSession(user, password, localAddress = '127.0.0.1') {
  const c = await smtpClient(localAddress);
  assert.equal((await c.reply()).code, 220);
  const ehlo = await c.cmd('EHLO pc.example');
  assert.match(ehlo.text, /AUTH PLAIN/);
  const auth = await c.cmd(`AUTH PLAIN ${b64(`\0${user}\0${password}`)}`);
  return { c, auth };
}

/* One message in an open session; the reply to the end of DATA. */
async function sendIn(c, from, to, subject) {
  const mf = await c.cmd(`MAIL FROM:<${from}>`);
  assert.equal(mf.code, 250, mf.text);
  const rt = await c.cmd(`RCPT TO:<${to}>`);
  assert.equal(rt.code, 250, rt.text);
  assert.equal((await c.cmd('DATA')).code, 354);
  const body = `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nMessage-ID: <${Date.now()}.${Math.random().toString(36).slice(2)}@pc.example>\r\n\r\nHello.\r\n.`;
  return c.cmd(body);
}

/* Polls the API (bounded) until pred holds for the answer of path. */
async function until(api, path, pred, what, ms = 15000) {
  const deadline = Date.now() + ms;
  let last = null;
  while (Date.now() < deadline) {
    last = await api.get(path);
    if (pred(last)) return last;
    await sleep(200);
  }
  assert.fail(`${what}: last answer ${JSON.stringify(last)}`);
}

/* The sink's connections (moatd keeps an idle one), so the downstream can go away for real. */
const conns = new Set();

/* The downstream stops listening and drops every connection: deliveries fail (deferred). */
async function sinkDown() {
  const closed = new Promise((r) => sink.server.close(r));
  for (const s of conns) s.destroy();
  await closed;
}

async function account(api, user) {
  return api.get(`/api/v1/accounts/${encodeURIComponent(user)}`);
}

/* The Accounts page by its navigation link, once the list answers `query`. */
async function openAccounts(page, query = BY_SCORE) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Accounts', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Accounts' }).waitFor();
  return results(page, 'Accounts', query);
}

async function usersOf(region) {
  return (await region.locator('table.accounts tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-user'))));
}

test('a suspended account: first by score with its why, held mail and log linked, alert opened, lifted releasing held mail', { skip: SKIP || false }, async () => {
  const page = await newPage();
  try {
    await login(page, 'admin', ADMIN_PASSWORD);
    const api = await apiOf(page);
    for (const [name, password] of [['bob', BOB_PASSWORD], ['carol', CAROL_PASSWORD]]) {
      const u = await api.post('/api/v1/users', { name, password, role: 'user' });
      await api.post(`/api/v1/users/${u.id}/addresses`, { address: `${name}@example.org`, kind: 'primary' });
    }

    // The downstream is down (moatd keeps an idle delivery connection: those go too), so bob's
    // two messages are deferred (the next try is minutes away).
    const port = sink.port;
    await sinkDown();
    const { c, auth } = await authSession('bob', BOB_PASSWORD);
    try {
      assert.equal(auth.code, 235, auth.text);
      for (const n of [1, 2]) assert.equal((await sendIn(c, 'bob@example.org', `r${n}@example.org`, `bob sample ${n}`)).code, 250);
      await until(api, '/api/v1/queue?state=deferred', (l) => l.items.filter((r) => r.auth_user === 'bob').length === 2, 'bob deferred');
      // two senders that are not his: refused bindings, score >= 10
      for (const from of ['x1@random-a.test', 'x2@random-b.test']) {
        const r = await c.cmd(`MAIL FROM:<${from}>`);
        assert.ok(r.code >= 500, `MAIL FROM:<${from}>: ${r.text}`);
      }
      await c.cmd('QUIT');
    } finally {
      c.close();
    }
    const bob = await until(api, '/api/v1/accounts/bob', (a) => a.suspended && a.held === 2, 'bob suspended with 2 held');
    assert.ok(bob.signals.some((s) => s.points > 0), `bob's signals: ${JSON.stringify(bob.signals)}`);
    await new Promise((r, j) => { sink.server.once('error', j); sink.server.listen(port, '127.0.0.1', r); });

    // carol sends one ordinary message (delivered): an account with a score of 0
    {
      const s = await authSession('carol', CAROL_PASSWORD);
      assert.equal(s.auth.code, 235, s.auth.text);
      assert.equal((await sendIn(s.c, 'carol@example.org', 'friend@example.org', 'carol hello')).code, 250);
      await s.c.cmd('QUIT');
      s.c.close();
      await sink.waitFor((m) => m.data.includes('Subject: carol hello'), 'from carol');
    }
    assert.equal(sink.messages.filter((m) => m.data.includes('bob sample')).length, 0, 'held mail is not delivered');
    await until(api, '/api/v1/accounts?q=carol', (l) => l.items.some((a) => a.user === 'carol'), 'carol listed');

    // First by score, with the why of the score and the state.
    let region = await openAccounts(page);
    const users = await usersOf(region);
    assert.equal(users[0], 'bob', `order by score: ${users}`);
    assert.ok(users.includes('carol'));
    const row = region.locator('tr[data-user="bob"]');
    await row.locator('td.acct-state').getByText('suspended', { exact: true }).waitFor();
    assert.equal((await row.locator('span.score').innerText()).trim(), String(bob.score));
    const scored = bob.signals.filter((s) => s.points > 0).sort((a, b) => b.points - a.points)[0];
    assert.match(await row.locator('.why').innerText(), new RegExp(`\\(\\+${scored.points}\\)`));
    await shot(page, 'a01-accounts-by-score');
    // ascending: bob last
    await region.getByRole('button', { name: /^Sort by score/ }).click();
    region = await results(page, 'Accounts', 'all accounts, by score ascending, page 1');
    assert.equal((await usersOf(region)).at(-1), 'bob');
    // by name, A to Z; by volume, the rows in the server's order of volume_day
    await region.getByRole('button', { name: /^Sort by user/ }).click();
    region = await results(page, 'Accounts', 'all accounts, by name ascending, page 1');
    assert.deepEqual(await usersOf(region), ['bob', 'carol']);
    await region.getByRole('button', { name: /^Sort by volume/ }).click();
    region = await results(page, 'Accounts', 'all accounts, by volume descending, page 1');
    const vols = (await region.locator('table.accounts tbody tr td:nth-child(4)').allInnerTexts()).map(Number);
    assert.deepEqual(vols, [...vols].sort((a, b) => b - a));
    // filtered: suspended only
    const filters = page.getByRole('search', { name: 'Accounts filter' });
    await filters.getByLabel('State').selectOption('suspended');
    await filters.getByRole('button', { name: 'Apply filter' }).click();
    region = await results(page, 'Accounts', 'suspended accounts, by volume descending, page 1');
    assert.deepEqual(await usersOf(region), ['bob']);

    // Held mail: the queue filtered by state held and account bob.
    await region.getByRole('link', { name: 'Held mail of bob' }).click();
    await page.getByRole('heading', { level: 1, name: 'Queue' }).waitFor();
    const queue = await results(page, 'Queue', 'state held, account bob, page 1');
    assert.equal(await queue.locator('tbody tr').count(), 2);
    assert.equal(await page.getByRole('search', { name: 'Queue filter' }).getByLabel('Account').inputValue(), 'bob');
    await shot(page, 'a02-held-mail');
    // Message log: filtered by account.
    region = await openAccounts(page);
    await region.getByRole('link', { name: 'Message log of bob' }).click();
    await page.getByRole('heading', { level: 1, name: 'Message log' }).waitFor();
    const log = await results(page, 'Messages', 'messages with account bob, page 1');
    assert.ok(await log.locator('tbody tr').count() >= 2);

    // The alert: signals with values, the client address, the sample messages.
    region = await openAccounts(page);
    const alerts = await results(page, 'Alerts', 'all alerts, newest first, page 1');
    const alert = (await api.get('/api/v1/accounts/alerts?user=bob')).items.find((a) => a.kind === 'suspended');
    assert.ok(alert, 'an alert of kind suspended for bob');
    await alerts.getByRole('button', { name: `Details of alert ${alert.id}` }).click();
    const detail = page.getByRole('region', { name: `Alert ${alert.id}` });
    await detail.locator('table.signals').waitFor();
    for (const s of alert.signals.filter((x) => x.points > 0)) {
      const tr = detail.locator(`table.signals tr[data-signal="${s.name}"]`);
      assert.equal((await tr.locator('td').nth(1).innerText()).trim(), String(s.value));
      assert.equal((await tr.locator('td').nth(3).innerText()).trim(), String(s.points));
    }
    assert.equal(await detail.locator('table.signals tbody tr').count(), alert.signals.length);
    await detail.locator('ul.clients').getByText('127.0.0.1').waitFor();
    const samples = detail.locator('table.samples tbody tr');
    assert.ok(await samples.count() >= 1, 'sample messages shown');
    const sample = alert.samples[0];
    assert.equal(await detail.getByRole('link', { name: `Timeline of ${sample.qid}` }).getAttribute('href'), `/timeline/${sample.qid}`);
    await detail.getByText(sample.subject, { exact: true }).waitFor();
    await shot(page, 'a03-alert-opened');

    // Lift, releasing the held mail: the dialog names the held count; both messages reach the sink.
    await region.getByRole('button', { name: 'Lift suspension of bob' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.waitFor();
    await dlg.getByText('2 recipients of its mail are held in the queue.').waitFor();
    assert.match(await dlg.innerText(), /Lift the suspension of bob\?/);
    await dlg.getByLabel('Release held mail for delivery now').check();
    await shot(page, 'a04-lift-dialog');
    await dlg.getByRole('button', { name: 'Lift suspension' }).click();
    await page.getByText('Suspension of bob lifted. 2 held recipients released.').waitFor();
    for (const n of [1, 2]) await sink.waitFor((m) => m.data.includes(`Subject: bob sample ${n}`), `bob sample ${n} released`, 30000);
    region = await results(page, 'Accounts', BY_SCORE);
    await region.locator('tr[data-user="bob"] td.acct-state').getByText('active', { exact: true }).waitFor();
    const after = await account(api, 'bob');
    assert.equal(after.suspended, false);
    assert.equal(after.held, 0);
    // the lift is an alert of its own, with its action
    const lifted = await until(api, '/api/v1/accounts/alerts?user=bob&kind=lifted', (l) => l.items.length > 0, 'lift alert');
    assert.equal(lifted.items[0].action, 'release');
    assert.deepEqual(page.dialogs, []);
    page.errors = page.errors.filter((e) => !/status of 4\d\d/.test(e));
    assert.deepEqual(page.errors, []);
  } finally {
    await page.context().close();
  }
});

test('trust until a date shows and is removed; suspend now with a reason; a failed SMTP login shows; a phone-wide page', { skip: SKIP || false }, async () => {
  const page = await newPage();
  try {
    await login(page, 'admin', ADMIN_PASSWORD);
    const api = await apiOf(page);

    // A failed SMTP login for carol from 127.0.0.9.
    const { c, auth } = await authSession('carol', 'not-her-password', '127.0.0.9');
    c.close();
    assert.equal(auth.code, 535, auth.text);
    await until(api, '/api/v1/accounts/carol', (a) => a.auth_failures?.recent >= 1, 'carol auth failure');

    let region = await openAccounts(page);
    let row = region.locator('tr[data-user="carol"]');
    assert.match(await row.locator('td.acct-auth').innerText(), /^1\b[\s\S]*127\.0\.0\.9/);

    // Trust for bulk mail until a week ahead (the default the dialog proposes).
    await row.getByRole('button', { name: 'Trust carol for bulk mail' }).click();
    let dlg = page.getByRole('dialog');
    await dlg.waitFor();
    const date = await dlg.getByLabel('Trusted until').inputValue();
    const week = new Date(Date.now() + 7 * 86400000);
    const pad = (n) => String(n).padStart(2, '0');
    assert.equal(date, `${week.getFullYear()}-${pad(week.getMonth() + 1)}-${pad(week.getDate())}`);
    // a past date is refused by the console before any request
    await dlg.getByLabel('Trusted until').fill('2020-01-01');
    await dlg.getByRole('button', { name: 'Trust', exact: true }).click();
    await dlg.getByText('Pick a date in the future.').waitFor();
    await dlg.getByLabel('Trusted until').fill(date);
    await dlg.getByRole('button', { name: 'Trust', exact: true }).click();
    await page.getByText(/^carol is trusted for bulk mail until /).waitFor();
    const trusted = await account(api, 'carol');
    const trustedMs = toMs(trusted.trusted_until);
    const end = new Date(week.getFullYear(), week.getMonth(), week.getDate(), 23, 59, 59, 999).getTime();
    assert.ok(Math.abs(trustedMs - end) < 1000, `trusted_until ${trusted.trusted_until}, want the end of ${date}`);
    region = await results(page, 'Accounts', BY_SCORE);
    row = region.locator('tr[data-user="carol"]');
    await row.locator('td.acct-state').getByText('trusted', { exact: true }).waitFor();
    assert.match(await row.locator('td.acct-state').innerText(), new RegExp(`until ${date}`));
    await shot(page, 'a05-trusted');
    // filtered: trusted only
    const filters = page.getByRole('search', { name: 'Accounts filter' });
    await filters.getByLabel('State').selectOption('trusted');
    await filters.getByRole('button', { name: 'Apply filter' }).click();
    region = await results(page, 'Accounts', 'trusted accounts, by score descending, page 1');
    assert.deepEqual(await usersOf(region), ['carol']);
    await filters.getByRole('button', { name: 'Clear' }).click();

    // Remove trust: asked first.
    region = await results(page, 'Accounts', BY_SCORE);
    await region.getByRole('button', { name: 'Remove trust of carol' }).click();
    dlg = page.getByRole('dialog');
    await dlg.waitFor();
    assert.match(await dlg.innerText(), /Remove the trust of carol\?/);
    await dlg.getByRole('button', { name: 'Remove trust' }).click();
    await page.getByText('carol is no longer trusted for bulk mail.').waitFor();
    assert.equal(toMs((await account(api, 'carol')).trusted_until), null);
    const kinds = (await api.get('/api/v1/accounts/alerts?user=carol')).items.map((a) => a.kind);
    assert.ok(kinds.includes('trusted') && kinds.includes('untrusted'), `carol's alerts: ${kinds}`);

    // Suspend now with a reason, from carol's own page; then lift, keeping held mail.
    region = await results(page, 'Accounts', BY_SCORE);
    await region.getByRole('link', { name: 'carol', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Account carol' }).waitFor();
    const acct = await results(page, 'Account', 'account carol');
    await acct.locator('table.signals').waitFor();
    await acct.getByRole('button', { name: 'Suspend carol now' }).click();
    dlg = page.getByRole('dialog');
    await dlg.waitFor();
    await dlg.getByLabel('Reason').fill('phoned in: laptop stolen');
    await dlg.getByRole('button', { name: 'Suspend now' }).click();
    await page.getByText('carol suspended.').waitFor();
    const sus = await results(page, 'Account', 'account carol');
    await sus.locator('dd.acct-state').getByText('suspended', { exact: true }).waitFor();
    await sus.getByText(/phoned in: laptop stolen/).first().waitFor();
    const carol = await account(api, 'carol');
    assert.equal(carol.suspended, true);
    assert.match(carol.reason, /phoned in: laptop stolen/);
    // once the running daemon has read the suspension back (within a second), carol's AUTH is
    // refused naming it
    let refused = null;
    for (const deadline = Date.now() + 10000; Date.now() < deadline && !refused;) {
      const s2 = await authSession('carol', CAROL_PASSWORD, '127.0.0.10');
      s2.c.close();
      if (s2.auth.code === 535) refused = s2.auth;
      else await sleep(250);
    }
    assert.ok(refused, 'AUTH of the suspended carol refused');
    assert.match(refused.text, /suspended/);
    await shot(page, 'a06-account-suspended');
    await sus.getByRole('button', { name: 'Lift suspension of carol' }).click();
    dlg = page.getByRole('dialog');
    await dlg.waitFor();
    await dlg.getByText('Nothing of it is held in the queue.').waitFor();
    await dlg.getByRole('button', { name: 'Lift suspension' }).click();
    await page.getByText('Suspension of carol lifted.', { exact: true }).waitFor();
    assert.equal((await account(api, 'carol')).suspended, false);

    // At phone width the list is never wider than the screen; every row's buttons can be reached.
    region = await openAccounts(page);
    await page.setViewportSize({ width: 375, height: 800 });
    await page.getByRole('button', { name: 'Menu' }).waitFor();
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(wide <= 0, `page wider than the screen by ${wide}px`);
    for (const b of await region.locator('table.accounts button').all()) await b.scrollIntoViewIfNeeded();
    await shot(page, 'a07-accounts-phone');
    assert.deepEqual(page.dialogs, []);
    page.errors = page.errors.filter((e) => !/status of 4\d\d/.test(e));
    assert.deepEqual(page.errors, []);
  } finally {
    await page.context().close();
  }
});

function toMs(t) {
  if (t === null || t === undefined || t === 0) return null;
  return typeof t === 'number' ? t : Date.parse(t);
}
