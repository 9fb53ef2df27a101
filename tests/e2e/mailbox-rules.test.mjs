// End-to-end test of the console's mailbox rules page (/my/rules) at phone width
// (375 px): the real moatd receiving for example.org and delivering to an SMTP sink
// on loopback, driven by Debian's chromium through playwright-core.
//
//   node --test tests/e2e/mailbox-rules.test.mjs      (ctest: the "e2e" test)
//
// A user with 500 rules (one import request) finds one by search, moves it to the
// top (the server's order changes), sees it match in a dry run, makes a rule in the
// editor that files a real SMTP message into a folder (the X-Moat-Folder field at
// the downstream), and cannot reach another user's rules, neither through the API
// nor through the administrator's page. Every wait is on an event, bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_PASSWORD, apiOf, base, login, newPage, results, shot, sink, SKIP, smtpSend,
  startDeliveringMoatd, stopDeliveringMoatd,
} from './lib.mjs';

const BOB_PASSWORD = 'bob-password-1';
const CAROL_PASSWORD = 'carol-password-1';
const N = 500;
const PHONE = { width: 375, height: 740 };

if (SKIP) console.log(`# e2e skipped: ${SKIP}`);

before(() => startDeliveringMoatd('moat-e2e-mb-'));
after(stopDeliveringMoatd);

/* rule i (1-based): Subject contains "topic-i" -> move to Topics/i; rule 321 has a name to search for */
function bulkRules() {
  const out = [];
  for (let i = 1; i <= N; i++) {
    out.push({
      name: i === 321 ? 'rule 321 barnacle' : `rule ${i}`,
      when: { field: 'header', header: 'Subject', op: 'contains', value: `topic-${i}-` },
      actions: [{ type: 'move', folder: `Topics/${i}` }],
    });
  }
  return out;
}

test('my rules at 375 px: 500 rules, search, reorder, dry run, a rule from the editor files real mail, another user\'s set is out of reach', { skip: SKIP || false }, async () => {
  /* the administrator makes two users; carol has one rule of her own */
  const admin = await newPage();
  let bobId;
  let carolId;
  let carolRule;
  try {
    await login(admin, 'admin', ADMIN_PASSWORD);
    const a = await apiOf(admin);
    bobId = (await a.post('/api/v1/users', { name: 'bob', password: BOB_PASSWORD, role: 'user' })).id;
    await a.post(`/api/v1/users/${bobId}/addresses`, { address: 'bob@example.org', kind: 'primary' });
    carolId = (await a.post('/api/v1/users', { name: 'carol', password: CAROL_PASSWORD, role: 'user' })).id;
    await a.post(`/api/v1/users/${carolId}/addresses`, { address: 'carol@example.org', kind: 'primary' });
    carolRule = await a.post(`/api/v1/users/${carolId}/rules`, {
      name: 'carol private', when: { field: 'sender', op: 'contains', value: 'boss' }, actions: [{ type: 'move', folder: 'Boss' }],
    });
    /* the administrator's page for a user: reached from the directory's Rules link */
    await admin.goto(base() + `/directory/${carolId}/rules`);
    await admin.getByRole('heading', { level: 1, name: `Rules of user ${carolId}` }).waitFor();
    assert.equal(await (await results(admin, 'Rules', 'all rules, page 1')).locator('li.mb-rule').count(), 1);
  } finally {
    await admin.context().close();
  }

  const page = await newPage(PHONE);
  try {
    await login(page, 'bob', BOB_PASSWORD);
    const api = await apiOf(page);
    const imp = await api.post('/api/v1/account/rules/import', { rules: bulkRules(), mode: 'replace' });
    assert.equal(imp.imported, N);

    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'My rules', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'My rules' }).waitFor();
    let list = await results(page, 'Rules', 'all rules, page 1');
    assert.equal(await list.locator('li.mb-rule').count(), 50, 'the first page shows 50 of the 500');
    await page.getByText(`Page 1 of ${N / 50}`).waitFor();
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= PHONE.width, `the page is ${width} px wide at ${PHONE.width} px`);

    /* search finds one */
    await page.getByLabel('Search', { exact: true }).fill('barnacle');
    await page.getByRole('form', { name: 'Search rules' }).getByRole('button', { name: 'Search' }).click();
    list = await results(page, 'Rules', 'rules matching “barnacle”, page 1');
    assert.equal(await list.locator('li.mb-rule').count(), 1);
    await list.getByText('rule 321 barnacle').waitFor();
    await list.getByText('321.', { exact: true }).waitFor();

    /* reorder: to the top, by the keyboard-friendly "Move to…" (the server's order changes) */
    await list.getByRole('button', { name: 'Move rule 321 barnacle to a position' }).click();
    await list.getByLabel(`New position (1 to ${N})`).fill('1');
    await list.getByRole('button', { name: 'Move', exact: true }).click();
    await page.getByText('Order saved: “rule 321 barnacle” is now rule 1 of 500.').waitFor();
    list = await results(page, 'Rules', 'rules matching “barnacle”, page 1');
    await list.getByText('1.', { exact: true }).waitFor();
    let order = (await api.get('/api/v1/account/rules')).items.map((r) => r.name);
    assert.equal(order.length, N);
    assert.equal(order[0], 'rule 321 barnacle');
    assert.equal(order[1], 'rule 1');
    assert.equal(order[320], 'rule 320');
    assert.equal(order[321], 'rule 322');

    /* ... and ↓ moves it one place among all rules */
    await page.getByLabel('Search', { exact: true }).fill('');
    await page.getByRole('form', { name: 'Search rules' }).getByRole('button', { name: 'Search' }).click();
    list = await results(page, 'Rules', 'all rules, page 1');
    await list.getByRole('button', { name: 'Move rule 321 barnacle down' }).click();
    await page.getByText('Order saved: “rule 321 barnacle” is now rule 2 of 500.').waitFor();
    order = (await api.get('/api/v1/account/rules')).items.map((r) => r.name);
    assert.deepEqual(order.slice(0, 3), ['rule 1', 'rule 321 barnacle', 'rule 2']);

    /* dry run: the pasted message matches rule 321 (now the second) and is filed by it */
    const dry = page.getByRole('form', { name: 'Dry run' });
    await dry.getByLabel('Message (raw, headers and body)').fill(
      'From: <ship@fleet.example>\nTo: <bob@example.org>\nSubject: about topic-321- today\n\nNoon report.\n');
    await dry.getByRole('button', { name: 'Test my rules' }).click();
    const res = await results(page, 'Dry run result', 'the message, test 1');
    await res.getByText('delivered to folder Topics/321').waitFor();
    await res.getByRole('list', { name: 'Matching rules' }).getByText('2. rule 321 barnacle').waitFor();
    await res.getByText('1 rule of 500 matched').waitFor();

    /* a rule made in the editor, first in the set, files a real SMTP message */
    await page.getByRole('button', { name: 'New rule' }).click();
    const ed = page.getByRole('form', { name: 'New rule' });
    await ed.getByLabel('Rule name').fill('editor rule');
    await ed.getByLabel('Position').fill('1');
    const cond = ed.getByRole('group', { name: 'Condition 1', exact: true });
    await cond.getByLabel('Value').fill('editor-fires');
    const act = ed.getByRole('group', { name: 'Action 1', exact: true });
    await act.getByLabel('Action', { exact: true }).selectOption('move');
    await act.getByLabel('Folder').fill('Ships/Seven');
    await ed.getByRole('button', { name: 'Create rule' }).click();
    await page.getByText('Rule “editor rule” saved.').waitFor();
    order = (await api.get('/api/v1/account/rules')).items;
    assert.equal(order[0].name, 'editor rule');
    assert.deepEqual(order[0].actions, [{ type: 'move', folder: 'Ships/Seven' }]);
    await shot(page, 'mailbox-rules-phone');

    const r = await smtpSend({
      from: 'sender@partner.test', to: 'bob@example.org',
      text: 'From: <sender@partner.test>\nTo: <bob@example.org>\nSubject: editor-fires now\nMessage-ID: <mb.1@partner.test>\n\nHello.\n',
    });
    assert.equal(r.code, 250, r.text);
    const got = await sink.waitFor((m) => m.data.includes('Message-ID: <mb.1@partner.test>'), 'filed by the editor rule');
    assert.match(got.data, /^X-Moat-Folder: Ships\/Seven\r$/m, got.data.slice(0, 800));
    assert.deepEqual(got.rcpts, ['bob@example.org']);

    /* another user's set is out of reach: 404 on every path to it */
    for (const [m, p, b] of [
      ['GET', `/api/v1/users/${carolId}/rules`],
      ['GET', `/api/v1/account/rules/${carolRule.id}`],
      ['PATCH', `/api/v1/account/rules/${carolRule.id}`, { enabled: false }],
      ['DELETE', `/api/v1/account/rules/${carolRule.id}`],
      ['POST', '/api/v1/account/rules/bulk', { ids: [carolRule.id], op: 'disable' }],
    ]) {
      const x = await api.call(m, p, b);
      assert.ok(x.status === 404 || x.status === 403, `${m} ${p}: ${x.status} ${JSON.stringify(x.body)}`);
    }
    await page.goto(base() + `/directory/${carolId}/rules`);
    await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
    assert.deepEqual(page.errors.filter((e) => !/status of 404/.test(e)), []);
    assert.deepEqual(page.dialogs, []);
  } finally {
    await page.context().close();
  }

  /* carol's rule is as it was */
  const check = await newPage();
  try {
    await login(check, 'carol', CAROL_PASSWORD);
    const c = await apiOf(check);
    const mine = (await c.get('/api/v1/account/rules')).items;
    assert.equal(mine.length, 1);
    assert.equal(mine[0].enabled, true);
  } finally {
    await check.context().close();
  }
});
