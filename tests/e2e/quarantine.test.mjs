// End-to-end tests of the console's quarantine, self-service, digest and
// timeline pages: the real moatd (MOATD_BIN, port 0, temp data dir) receiving
// for example.org and delivering to a small SMTP sink on loopback (the
// "downstream" server), driven by Debian's chromium through playwright-core.
//
//   node --test tests/e2e/            (ctest: the "e2e" test)
//
// Flows: a server rule made through the API quarantines real SMTP mail; an
// administrator finds it by filter, previews it (subject, sender and HTML that
// try to run script show as text, no dialog fires, the HTML frame is
// sandboxed) and releases it (the downstream receives it); a bulk delete by
// filter names the server's count first; an end user sees only their own item,
// releases it, blocks a sender (then refused over SMTP) and sets the digest
// interval; a digest link from a real digest mail asks first, releases once
// and refuses a second use; the message log opens a message's timeline; the
// digest template editor previews a user's digest. Every wait is on an event
// (a region's aria-busy/data-query, a row, a mail at the sink), bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_PASSWORD, apiOf, base, d, generationLoaded, login, moatd, newPage, openPage, results,
  sessionToRcpt, shot, sink, SKIP, smtpSend, sqlite, startDeliveringMoatd, stopDeliveringMoatd,
  WAIT,
} from './lib.mjs';

const BOB_PASSWORD = 'bob-password-1';

if (SKIP) console.log(`# e2e skipped: ${SKIP}`);

/* ---- moatd, SMTP ---- */

/* One message over SMTP from 127.0.0.1; returns the end-of-DATA reply. */
function sendMail(from, to, text) {
  return smtpSend({ from, to, text });
}

function plainMessage(from, to, subject, body = 'Hello.') {
  return `From: <${from}>\nTo: <${to}>\nSubject: ${subject}\nMessage-ID: <${Date.now()}.${Math.random().toString(36).slice(2)}@client.example>\n\n${body}\n`;
}

/* The quarantine items matching a query string, through the API (the scope of the page's user). */
async function items(api, q) {
  return (await api.get(`/api/v1/quarantine?${new URLSearchParams(q)}`)).items;
}

const QUERY_TAIL = 'by received descending, page 1';

before(() => startDeliveringMoatd('moat-e2e-q-'));
after(stopDeliveringMoatd);

/* Text that runs script wherever it is taken for markup. */
const XSS_SUBJECT = 'qtest <img src=x onerror=alert(1)><script>alert(2)</script>';
const XSS_SENDER = "x'onmouseover=alert`1`@evil.test"; /* legal atext in a local part */
const XSS_MESSAGE = [
  `From: "<img src=x onerror=alert(3)>" <${XSS_SENDER}>`,
  'To: <alice@example.org>',
  `Subject: ${XSS_SUBJECT}`,
  'Message-ID: <xss.1@client.example>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/alternative; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Plain part <b>not bold</b> <script>alert(4)</script>',
  '--b1',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<html><body><p id="hello">Hello HTML e2e</p><script>alert(5)</script>',
  '<img src=x onerror="alert(6)"><a href="javascript:alert(7)">click</a>',
  '<iframe src="javascript:alert(8)"></iframe><form action="http://evil.test/"><input name="p"></form></body></html>',
  '--b1--',
  '',
].join('\n');

let releasedQid = '';

test('administrator: a quarantined message found by filter, previewed as text in a sandbox, released to the downstream', { skip: SKIP || false }, async () => {
  const page = await newPage();
  try {
    await login(page, 'admin', ADMIN_PASSWORD);
    const api = await apiOf(page);
    await api.post('/api/v1/rules', {
      name: 'quarantine qtest', when: { field: 'header', header: 'Subject', op: 'contains', value: 'qtest' },
      action: { type: 'quarantine' },
    });
    await generationLoaded((await api.get('/api/v1/policy/settings')).generation);

    let r = await sendMail(XSS_SENDER, 'alice@example.org', XSS_MESSAGE);
    assert.equal(r.code, 250, r.text);
    r = await sendMail('other@partner.test', 'alice@example.org', plainMessage('other@partner.test', 'alice@example.org', 'qtest harmless'));
    assert.equal(r.code, 250, r.text);
    assert.equal(sink.messages.length, 0, 'quarantined mail is not delivered');

    await openPage(page, 'Quarantine', 'Quarantine');
    let region = await results(page, 'Quarantine', `all items, ${QUERY_TAIL}`);
    assert.equal(await region.locator('tbody tr').count(), 2);
    await shot(page, 'q01-quarantine');

    // Found by the sender filter: one row, every text as typed (no element made of it).
    const filters = page.getByRole('search', { name: 'Quarantine filter' });
    await filters.getByLabel('Sender').fill(XSS_SENDER);
    await filters.getByRole('button', { name: 'Apply filter' }).click();
    region = await results(page, 'Quarantine', `all items with sender ${XSS_SENDER}, ${QUERY_TAIL}`);
    const rows = region.locator('tbody tr');
    assert.equal(await rows.count(), 1);
    assert.equal((await rows.first().locator('td.q-subject').innerText()).trim(), XSS_SUBJECT);
    assert.equal((await rows.first().locator('td.q-sender').innerText()).trim(), XSS_SENDER);
    const id = Number(await rows.first().getAttribute('data-id'));
    assert.ok(id > 0);

    // Preview: headers and text part as text, the HTML in a sandboxed frame.
    await page.getByRole('button', { name: `Preview item ${id}` }).click();
    const pv = page.getByRole('region', { name: `Preview of item ${id}` });
    await pv.locator('pre.text-part').first().waitFor();
    assert.equal((await pv.locator('dd.q-subject').innerText()).trim(), XSS_SUBJECT);
    assert.match(await pv.locator('pre.text-part').first().innerText(), /Plain part <b>not bold<\/b> <script>alert\(4\)<\/script>/);
    await pv.getByText(/^Headers \(\d+\)$/).click();
    await pv.locator('dl.headers dd', { hasText: '<img src=x onerror=alert(1)>' }).first().waitFor();
    const frame = pv.locator('iframe.html-part');
    assert.equal(await frame.getAttribute('sandbox'), '', 'the HTML frame is sandboxed with no permission');
    assert.equal(await frame.getAttribute('src'), `/api/v1/quarantine/${id}/html`);
    const html = await page.request.get(base() + `/api/v1/quarantine/${id}/html`, { timeout: WAIT });
    assert.equal(html.status(), 200);
    assert.match(html.headers()['content-security-policy'] ?? '', /sandbox/);
    const inFrame = page.frameLocator('iframe.html-part').locator('#hello, p', { hasText: 'Hello HTML e2e' }).first();
    await inFrame.waitFor();
    assert.equal(await page.frameLocator('iframe.html-part').locator('script, iframe, form, [onerror]').count(), 0, 'the served HTML is sanitised');
    // Nothing of the message became an element of the console.
    assert.equal(await page.locator('main img, main script, main [onerror], main [onmouseover]').count(), 0);
    // The raw message as a download.
    const raw = pv.getByRole('link', { name: 'Download raw message' });
    assert.equal(await raw.getAttribute('href'), `/api/v1/quarantine/${id}/raw`);
    const rawResp = await page.request.get(base() + `/api/v1/quarantine/${id}/raw`, { timeout: WAIT });
    assert.equal(rawResp.status(), 200);
    assert.match(rawResp.headers()['content-type'], /^message\/rfc822/);
    assert.ok((await rawResp.text()).includes('Hello HTML e2e'));
    await shot(page, 'q02-quarantine-preview');
    assert.deepEqual(page.dialogs, [], 'no script of the message ran');

    // Release: asked first, then the downstream gets the message, byte for byte its content.
    releasedQid = (await api.get(`/api/v1/quarantine/${id}`)).qid;
    await pv.getByRole('button', { name: `Release: item ${id}` }).click();
    const dlg = page.getByRole('dialog');
    await dlg.waitFor();
    assert.match(await dlg.innerText(), /Release: 1 item\?/);
    await dlg.getByRole('button', { name: 'Release 1 item' }).click();
    await page.getByText('Released 1 recipient of 1 message.').waitFor();
    const got = await sink.waitFor((m) => m.data.includes('Hello HTML e2e'), 'released from quarantine');
    assert.deepEqual(got.rcpts, ['alice@example.org']);
    assert.equal(got.from, XSS_SENDER);
    region = await results(page, 'Quarantine', `all items with sender ${XSS_SENDER}, ${QUERY_TAIL}`);
    await region.getByText('The quarantine has nothing that matches.').waitFor();
    assert.equal((await items(api, {})).length, 1, 'the harmless one stays');
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.errors, []);
  } finally {
    await page.context().close();
  }
});

test('administrator: delete everything a filter matches after a dialog with the server count; sort by a column', { skip: SKIP || false }, async () => {
  const page = await newPage();
  try {
    await login(page, 'admin', ADMIN_PASSWORD);
    const api = await apiOf(page);
    for (const n of [1, 2, 3]) {
      const r = await sendMail(`bulk${n}@bulk.test`, `u${n}@example.org`, plainMessage(`bulk${n}@bulk.test`, `u${n}@example.org`, `qtest bulk ${n}`, `${'x'.repeat(70)}\n`.repeat(n * 20)));
      assert.equal(r.code, 250, r.text);
    }
    await openPage(page, 'Quarantine', 'Quarantine');
    const filters = page.getByRole('search', { name: 'Quarantine filter' });
    await filters.getByLabel('Subject contains').fill('qtest bulk');
    await filters.getByRole('button', { name: 'Apply filter' }).click();
    let region = await results(page, 'Quarantine', `all items with subject containing qtest bulk, ${QUERY_TAIL}`);
    assert.equal(await region.locator('tbody tr').count(), 3);

    // Sorted by the server: size ascending after two clicks (largest first, then flipped).
    await region.getByRole('button', { name: /^Sort by size/ }).click();
    region = await results(page, 'Quarantine', 'all items with subject containing qtest bulk, by size descending, page 1');
    await region.getByRole('button', { name: /^Sort by size/ }).click();
    region = await results(page, 'Quarantine', 'all items with subject containing qtest bulk, by size ascending, page 1');
    const subjects = (await region.locator('td.q-subject').allInnerTexts()).map((s) => s.trim());
    assert.deepEqual(subjects, ['qtest bulk 1', 'qtest bulk 2', 'qtest bulk 3']);

    const bulk = page.getByRole('group', { name: 'All matching the filter' });
    await bulk.getByLabel('Action on all matching').selectOption('delete');
    // Cancelled first: nothing changes.
    await bulk.getByRole('button', { name: 'Apply to all matching…' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.waitFor();
    const text = await dlg.innerText();
    assert.match(text, /Delete: 3 items matching the filter\?/);
    assert.match(text, /subject containing qtest bulk/);
    await dlg.getByRole('button', { name: 'Cancel' }).click();
    await dlg.waitFor({ state: 'hidden' });
    assert.equal((await api.get('/api/v1/quarantine/count?subject=qtest%20bulk')).count, 3);
    await bulk.getByRole('button', { name: 'Apply to all matching…' }).click();
    await dlg.waitFor();
    await dlg.getByRole('button', { name: 'Delete 3 items' }).click();
    await page.getByText('Deleted 3 recipients of 3 messages.').waitFor();
    region = await results(page, 'Quarantine', 'all items with subject containing qtest bulk, by size ascending, page 1');
    await region.getByText('The quarantine has nothing that matches.').waitFor();
    assert.equal((await api.get('/api/v1/quarantine/count?subject=qtest%20bulk')).count, 0);
    assert.ok(!sink.messages.some((m) => m.data.includes('qtest bulk')), 'deleted mail is not delivered');
    await shot(page, 'q03-quarantine-bulk-deleted');
    assert.deepEqual(page.errors, []);
  } finally {
    await page.context().close();
  }
});

test('end user: sees only their own items, releases one, blocks a sender, sets the digest interval', { skip: SKIP || false }, async () => {
  const admin = await newPage();
  let carolItem = 0;
  try {
    await login(admin, 'admin', ADMIN_PASSWORD);
    const api = await apiOf(admin);
    const bob = await api.post('/api/v1/users', { name: 'bob', password: BOB_PASSWORD, role: 'user' });
    await api.post(`/api/v1/users/${bob.id}/addresses`, { address: 'bob@example.org', kind: 'primary' });
    let r = await sendMail('friend@partner.test', 'bob@example.org', plainMessage('friend@partner.test', 'bob@example.org', 'qtest for bob'));
    assert.equal(r.code, 250, r.text);
    r = await sendMail('friend@partner.test', 'carol@example.org', plainMessage('friend@partner.test', 'carol@example.org', 'qtest for carol'));
    assert.equal(r.code, 250, r.text);
    carolItem = (await items(api, { recipient: 'carol@example.org' }))[0].id;
  } finally {
    await admin.context().close();
  }

  const page = await newPage();
  try {
    await login(page, 'bob', BOB_PASSWORD);
    const links = (await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts()).map((s) => s.trim()).sort();
    assert.deepEqual(links, ['API tokens', 'My account', 'My quarantine', 'My rules', 'My senders']);
    for (const p of ['/quarantine', '/digest', '/timeline/x']) {
      await page.goto(base() + p);
      await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
    }
    await page.goto(base() + '/account');
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    const api = await apiOf(page);
    // The server's scope: bob's item only; carol's answers 404 (its existence is not revealed).
    const mine = await items(api, {});
    assert.deepEqual(mine.map((i) => i.recipient), ['bob@example.org']);
    assert.equal((await api.call('GET', `/api/v1/quarantine/${carolItem}`)).status, 404);

    await openPage(page, 'My quarantine', 'My quarantine');
    const region = await results(page, 'Quarantine', `your items, ${QUERY_TAIL}`);
    const rows = region.locator('tbody tr');
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), /bob@example\.org/);
    assert.doesNotMatch(await region.innerText(), /carol/);
    await shot(page, 'q04-my-quarantine');
    const id = Number(await rows.first().getAttribute('data-id'));
    await page.getByRole('button', { name: `Preview item ${id}` }).click();
    const pv = page.getByRole('region', { name: `Preview of item ${id}` });
    await pv.getByRole('button', { name: `Release: item ${id}` }).click();
    const dlg = page.getByRole('dialog');
    await dlg.waitFor();
    await dlg.getByRole('button', { name: 'Release 1 item' }).click();
    await page.getByText('Released 1 recipient of 1 message.').waitFor();
    const got = await sink.waitFor((m) => m.data.includes('qtest for bob'), 'released by bob');
    assert.deepEqual(got.rcpts, ['bob@example.org']);
    await (await results(page, 'Quarantine', `your items, ${QUERY_TAIL}`)).getByText('Nothing of yours is in quarantine.').waitFor();

    // A personal block list entry: listed, and the next message from that sender is refused at RCPT.
    await openPage(page, 'My senders', 'My senders');
    const add = page.getByRole('form', { name: 'Add a sender' });
    await add.getByLabel('List').selectOption('block');
    await add.getByLabel('Sender').fill('spammer@bad.test');
    await add.getByRole('button', { name: 'Add sender' }).click();
    await (await results(page, 'My senders', 'allowed and blocked senders, page 1')).getByRole('cell', { name: 'spammer@bad.test', exact: true }).waitFor();
    const listed = (await api.get('/api/v1/account/senders')).items;
    assert.ok(listed.some((s) => s.kind === 'block' && s.value === 'spammer@bad.test'), JSON.stringify(listed));
    await shot(page, 'q05-my-senders');
    // A personal list is policy: the next connection after moatd loads the generation it made.
    await generationLoaded(Number(await sqlite('SELECT generation FROM policy_meta')));
    const r = await sessionToRcpt({ from: 'spammer@bad.test', to: 'bob@example.org' });
    assert.equal(r.rcpt?.code, 550, JSON.stringify(r));
    assert.match(r.rcpt.text, /5\.7\.1/);

    // The digest interval on My account.
    await openPage(page, 'My account', 'My account');
    const dg = page.getByRole('form', { name: 'Quarantine digest' });
    await dg.getByRole('button', { name: 'Save digest interval' }).and(page.locator(':enabled')).waitFor();
    await dg.getByLabel('Send the digest').selectOption('weekly');
    await dg.getByRole('button', { name: 'Save digest interval' }).click();
    await dg.getByText('Saved.').waitFor();
    assert.equal((await api.get('/api/v1/account/digest')).interval, 'weekly');
    assert.deepEqual(page.errors, []);
    assert.deepEqual(page.dialogs, []);
  } finally {
    await page.context().close();
  }
});

/* A quoted-printable body made plain. */
function unQP(s) {
  return s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

/* The text of a mail with each MIME part decoded (base64 or quoted-printable), after the raw text. */
function mailText(raw) {
  const out = [raw];
  for (const chunk of raw.split(/\r\n--[^\r\n]*\r\n/)) {
    const sep = chunk.indexOf('\r\n\r\n');
    if (sep < 0) continue;
    const head = chunk.slice(0, sep);
    const body = chunk.slice(sep + 4);
    if (/content-transfer-encoding:\s*base64/i.test(head)) out.push(Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('utf8'));
    else if (/content-transfer-encoding:\s*quoted-printable/i.test(head)) out.push(unQP(body));
  }
  return out.join('\n');
}

test('digest link: a real digest mail, the link asks first, releases once, and is refused the second time', { skip: SKIP || false }, async () => {
  const admin = await newPage();
  let link = '';
  try {
    await login(admin, 'admin', ADMIN_PASSWORD);
    const api = await apiOf(admin);
    const r = await sendMail('news@partner.test', 'bob@example.org', plainMessage('news@partner.test', 'bob@example.org', 'qtest digest item'));
    assert.equal(r.code, 250, r.text);
    const sent = await api.post('/api/v1/quarantine/digest/send', { user: 'bob' });
    assert.ok(sent.items >= 1, JSON.stringify(sent));
    const digest = await sink.waitFor((m) => m.rcpts.includes('bob@example.org') && /\/q\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/.test(mailText(m.data)), 'digest for bob');
    const body = mailText(digest.data);
    const tokens = [...new Set([...body.matchAll(/\/q\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/g)].map((m) => m[1]))];
    // The release link of the item: its payload names the action.
    const release = tokens.find((t) => /release/.test(Buffer.from(t.split('.')[0], 'base64url').toString('latin1')));
    assert.ok(release, `a release link among ${tokens.length} links`);
    link = `${base()}/q/${release}`;
  } finally {
    await admin.context().close();
  }

  const page = await newPage();
  try {
    // GET only asks: nothing is released by opening (or prefetching) the link.
    const first = await page.goto(link);
    assert.equal(first.status(), 200);
    const form = page.locator('form[method="post" i]');
    await form.waitFor();
    await shot(page, 'q06-digest-link-confirm');
    assert.ok(!sink.messages.some((m) => m.data.includes('qtest digest item') && !/\/q\//.test(mailText(m.data))), 'a GET releases nothing');
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === link),
      form.locator('button, input[type="submit"]').first().click(),
    ]);
    assert.equal(resp.status(), 200);
    await page.getByText(/Released/).first().waitFor();
    const got = await sink.waitFor((m) => m.data.includes('qtest digest item') && !/\/q\//.test(mailText(m.data)), 'released by the digest link');
    assert.deepEqual(got.rcpts, ['bob@example.org']);
    await shot(page, 'q07-digest-link-done');
    // Back to the form and POST again: refused, nothing sent twice.
    await page.goto(link);
    const again = page.locator('form[method="post" i] button, form[method="post" i] input[type="submit"]');
    if (await again.count()) {
      const [resp2] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === link),
        again.first().click(),
      ]);
      assert.ok(resp2.status() >= 400 && resp2.status() < 500, `second POST: ${resp2.status()}`);
    }
    const direct = await page.request.post(link, { timeout: WAIT, form: {} });
    assert.ok(direct.status() >= 400 && direct.status() < 500, `POST again: ${direct.status()}`);
    assert.equal(sink.messages.filter((m) => m.data.includes('qtest digest item') && !/\/q\//.test(mailText(m.data))).length, 1, 'released once');
    assert.deepEqual(page.dialogs, []);
  } finally {
    await page.context().close();
  }
});

test('administrator: the message log opens a message timeline; the digest template previews a user digest', { skip: SKIP || false }, async () => {
  assert.ok(releasedQid, 'the first test released a message');
  const page = await newPage();
  try {
    await login(page, 'admin', ADMIN_PASSWORD);
    await openPage(page, 'Message log', 'Message log');
    const search = page.getByRole('search', { name: 'Message log search' });
    await search.getByLabel('Queue id').fill(releasedQid);
    await search.getByRole('button', { name: 'Search' }).click();
    const region = await results(page, 'Messages', `messages with queue id ${releasedQid}, page 1`);
    await region.getByRole('button', { name: /^Details of message \d+$/ }).first().click();
    const tl = page.locator('[role="region"][aria-label^="Timeline of message"][aria-busy="false"]');
    await tl.locator('tr[data-stage="quarantine"][data-event="release"]').waitFor();
    const events = await tl.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => `${tr.getAttribute('data-stage')}.${tr.getAttribute('data-event')}`));
    assert.ok(events.indexOf('quarantine.add') >= 0 && events.indexOf('quarantine.add') < events.indexOf('quarantine.release'),
      `quarantine.add before quarantine.release: ${events.join(', ')}`);
    assert.match(await tl.locator('caption').innerText(), /^Times in .*UTC[+-]\d\d:\d\d$/);
    const release = tl.locator('tr[data-stage="quarantine"][data-event="release"]');
    assert.match(await release.innerText(), /admin:admin/);
    await shot(page, 'q08-message-timeline');

    // The released copy is a queue message of its own (docs/quarantine.md): its delivery
    // attempts are under its queue id, which the release names and links to; the copy's
    // own timeline shows its delivery to the downstream.
    const api = await apiOf(page);
    const orig = await api.get(`/api/v1/timeline?qid=${encodeURIComponent(releasedQid)}`);
    const copyQid = orig.events.find((e) => e.stage === 'quarantine' && e.event === 'release')?.detail?.queue_qid;
    assert.ok(copyQid && copyQid !== releasedQid, `the release names its copy: ${JSON.stringify(orig.events)}`);
    await release.getByRole('link', { name: copyQid, exact: true }).click();
    const copy = await results(page, `Timeline of queue id ${copyQid}`, `timeline of queue id ${copyQid}`);
    assert.match(await copy.locator('tr[data-stage="delivery"][data-event="attempt"]').first().innerText(), /alice@example\.org[\s\S]*result=delivered/);
    await shot(page, 'q08b-released-copy-timeline');

    // The same by queue id (the link of the queue and quarantine pages).
    await page.goto(base() + `/timeline/${encodeURIComponent(releasedQid)}`);
    const byQid = await results(page, `Timeline of queue id ${releasedQid}`, `timeline of queue id ${releasedQid}`);
    await byQid.locator('tr[data-stage="quarantine"][data-event="release"]').waitFor();

    // The digest template: saved, and previewed for bob (text, and HTML in a sandboxed srcdoc frame).
    await page.goto(base() + '/digest');
    await page.getByRole('heading', { level: 1, name: 'Quarantine digest' }).waitFor();
    const tf = page.getByRole('form', { name: 'Digest template' });
    await tf.getByLabel('Subject').waitFor();
    const subject = 'Held for you (e2e)';
    await tf.getByLabel('Subject').fill(subject);
    await tf.getByRole('button', { name: 'Save template' }).click();
    await tf.getByText('Template saved.').waitFor();
    const r = await sendMail('later@partner.test', 'bob@example.org', plainMessage('later@partner.test', 'bob@example.org', 'qtest preview item'));
    assert.equal(r.code, 250, r.text);
    const pf = page.getByRole('form', { name: 'Preview or send a digest' });
    await pf.getByLabel('User').fill('bob');
    await pf.getByRole('button', { name: 'Preview' }).click();
    const pv = page.getByRole('region', { name: 'Digest preview for bob' });
    await pv.waitFor();
    assert.match(await pv.locator('dd.q-subject').innerText(), /Held for you \(e2e\)/);
    assert.match(await pv.locator('pre.text-part').innerText(), /qtest preview item/);
    const frame = pv.locator('iframe.html-part');
    assert.equal(await frame.getAttribute('sandbox'), '');
    assert.ok((await frame.getAttribute('srcdoc'))?.length > 0);
    await page.frameLocator('iframe.html-part').locator('body', { hasText: 'qtest preview item' }).waitFor();
    await shot(page, 'q09-digest-preview');
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.errors.filter((e) => !/Content Security Policy/.test(e)), []);
  } finally {
    await page.context().close();
  }
});
