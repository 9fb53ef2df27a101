// End-to-end tests of teaching the statistical filter from the console: the
// real moatd (MOATD_BIN, port 0, temp data dir) receiving for example.org and
// delivering to a small SMTP sink, driven by Debian's chromium through
// playwright-core.
//
//   node --test tests/e2e/            (ctest: the "e2e" test)
//
// Flows: a server rule quarantines real SMTP mail as spam; the administrator
// previews the item and clicks "Learn as spam" (the answer names the outcome,
// the store counts it); the message log's detail of the same message learns it
// as not spam ("moved"); the settings page's "Statistical filter" panel shows
// the global model's counts; an end user learns their own item from "My
// quarantine", into the global model and their own. Every wait is on an event
// (a region, a status text), bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_PASSWORD, apiOf, generationLoaded, login, newPage, openPage, results, shot, SKIP,
  smtpSend, startDeliveringMoatd, stopDeliveringMoatd, WAIT,
} from './lib.mjs';

const ALICE_PASSWORD = 'alice-password-1';

if (SKIP) console.log(`# e2e skipped: ${SKIP}`);

function spamMessage(to, subject) {
  return `From: <winner@prize.test>\nTo: <${to}>\nSubject: ${subject}\nMessage-ID: <${Date.now()}.${Math.random().toString(36).slice(2)}@prize.test>\n\nYou have won a prize. Click here to claim your cash now.\n`;
}

async function globalModel(api) {
  return (await api.get('/api/v1/bayes')).models.find((m) => m.user_id === 0);
}

before(() => startDeliveringMoatd('moat-e2e-learn-'));
after(stopDeliveringMoatd);

test('administrator: learn a quarantined message as spam, then as not spam from the message log; the settings panel counts it', { skip: SKIP || false }, async () => {
  const page = await newPage();
  try {
    await login(page, 'admin', ADMIN_PASSWORD);
    const api = await apiOf(page);
    await api.post('/api/v1/rules', {
      name: 'quarantine prize', when: { field: 'header', header: 'Subject', op: 'contains', value: 'prize' },
      action: { type: 'quarantine', kind: 'spam' },
    });
    await generationLoaded((await api.get('/api/v1/policy/settings')).generation);
    const r = await smtpSend({ from: 'winner@prize.test', to: 'bob@example.org', text: spamMessage('bob@example.org', 'Your prize awaits') });
    assert.equal(r.code, 250, r.text);

    await openPage(page, 'Quarantine', 'Quarantine');
    const region = await results(page, 'Quarantine', 'all items, by received descending, page 1');
    const row = region.locator('tbody tr').first();
    const id = Number(await row.getAttribute('data-id'));
    assert.ok(id > 0);
    await page.getByRole('button', { name: `Preview item ${id}` }).click();
    const pv = page.getByRole('region', { name: `Preview of item ${id}` });
    await pv.getByRole('button', { name: `Learn as spam: item ${id}` }).click();
    await pv.getByRole('status').filter({ hasText: 'Learned as spam: learned.' }).waitFor({ timeout: WAIT });
    await shot(page, 'l01-quarantine-learned');
    let g = await globalModel(api);
    assert.deepEqual([g.spam, g.ham], [1, 0]);
    // Again: the server says it knew it already.
    await pv.getByRole('button', { name: `Learn as spam: item ${id}` }).click();
    await pv.getByRole('status').filter({ hasText: 'Learned as spam: already.' }).waitFor({ timeout: WAIT });

    // The message log's detail of the same message: as not spam, moved.
    const logId = (await api.get('/api/v1/messages?sender=winner@prize.test')).items[0].id;
    await openPage(page, 'Message log', 'Message log');
    await page.getByRole('button', { name: `Details of message ${logId}` }).click();
    await page.getByRole('button', { name: `Learn as not spam: message ${logId}` }).click();
    await page.getByRole('status').filter({ hasText: 'Learned as not spam: moved.' }).waitFor({ timeout: WAIT });
    g = await globalModel(api);
    assert.deepEqual([g.spam, g.ham], [0, 1]);

    // The settings page's panel.
    await openPage(page, 'Settings', 'Settings');
    const panel = page.getByRole('region', { name: 'Statistical filter' });
    const global = panel.locator('tbody tr', { hasText: 'Global' });
    await global.waitFor({ timeout: WAIT });
    assert.deepEqual((await global.locator('td').allInnerTexts()).slice(1, 3), ['0', '1']);
    assert.match(await panel.innerText(), /learned 200 spam and 200 ham/);
    await shot(page, 'l02-settings-panel');
  } finally {
    await page.close();
  }
});

test('end user: learn their own quarantined item as spam, into the global model and their own', { skip: SKIP || false }, async () => {
  const admin = await newPage();
  const page = await newPage();
  try {
    await login(admin, 'admin', ADMIN_PASSWORD);
    const api = await apiOf(admin);
    const alice = await api.post('/api/v1/users', { name: 'alice', password: ALICE_PASSWORD, addresses: ['alice@example.org'] });
    await generationLoaded((await api.get('/api/v1/policy/settings')).generation);
    const r = await smtpSend({ from: 'winner@prize.test', to: 'alice@example.org', text: spamMessage('alice@example.org', 'A prize for Alice') });
    assert.equal(r.code, 250, r.text);
    const before = await globalModel(api);

    await login(page, 'alice', ALICE_PASSWORD);
    await openPage(page, 'My quarantine', 'My quarantine');
    const region = await results(page, 'Quarantine', 'your items, by received descending, page 1');
    assert.equal(await region.locator('tbody tr').count(), 1, 'only her own item');
    const id = Number(await region.locator('tbody tr').first().getAttribute('data-id'));
    await page.getByRole('button', { name: `Preview item ${id}` }).click();
    const pv = page.getByRole('region', { name: `Preview of item ${id}` });
    await pv.getByRole('button', { name: `Learn as spam: item ${id}` }).click();
    await pv.getByRole('status').filter({ hasText: 'Learned as spam: learned; your own filter: learned.' }).waitFor({ timeout: WAIT });
    await shot(page, 'l03-my-quarantine-learned');
    const b = await api.get('/api/v1/bayes');
    const g = b.models.find((m) => m.user_id === 0);
    const own = b.models.find((m) => m.user_id === alice.id);
    assert.equal(g.spam, before.spam + 1);
    assert.deepEqual([own.user, own.spam, own.ham], ['alice', 1, 0]);
  } finally {
    await page.close();
    await admin.close();
  }
});
