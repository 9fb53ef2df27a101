// End-to-end test of the console's Spam score page (docs/console.md, docs/score.md
// "Thresholds"): the real moatd (MOATD_BIN, port 0, a temp data dir) with the local
// domain example.org and the directory user alice, driven by Debian's chromium
// through playwright-core.
//
//   node --test tests/e2e/            (ctest: the "e2e" test)
//
// Flows: the administrator opens the page without console errors; an override the
// API refuses (a quarantine threshold below the inherited tag threshold) shows its
// error under the Quarantine field; a valid one appears in the table and in the
// API; it is changed in place, a global threshold is saved through its settings
// row, a user's override is added, and an override is deleted through the
// confirmation dialog. Every wait is on an event (a row, a text, an API state),
// bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_PASSWORD, apiOf, closeBrowser, d, finishMoatd, launchBrowser, login, moatd, newPage, openPage, shot, SKIP,
  startMoatd,
} from './lib.mjs';

if (SKIP) console.log(`# e2e skipped: ${SKIP}`);

before(async () => {
  if (SKIP) return;
  await startMoatd({
    prefix: 'moat-e2e-score-',
    conf: ['delivery = no'],
    prepare: async () => {
      await moatd(['policy', '--data-dir', d.data, 'add', 'local_domain', 'example.org']);
      await moatd(['policy', '--data-dir', d.data, 'user', 'add', 'alice', 'alice@example.org']);
    },
  });
  await launchBrowser();
});

after(async () => {
  try {
    await closeBrowser();
  } finally {
    await finishMoatd();
  }
});

test('spam score page: overrides per domain and user, global thresholds', { skip: SKIP || false }, async () => {
  const page = await newPage();
  try {
    await login(page, 'admin', ADMIN_PASSWORD);
    await openPage(page, 'Spam score', 'Spam score', { settle: true });
    await page.getByText('No overrides: every recipient has the global thresholds.').waitFor();
    assert.deepEqual(page.errors, [], 'console errors on the Spam score page');
    await shot(page, 'score-01-page');

    // Refused: quarantine 4 is below the tag threshold it inherits (5).
    const add = page.getByRole('form', { name: 'Add an override' });
    await add.getByLabel('Domain').fill('Example.ORG');
    await add.getByLabel('Quarantine at').fill('4');
    await add.getByRole('button', { name: 'Add override' }).click();
    await add.locator('.field.has-error .field-error').waitFor();
    assert.equal(await add.getByLabel('Quarantine at').getAttribute('aria-invalid'), 'true');
    assert.match(await add.locator('.field.has-error .field-error').innerText(), /tag/);
    page.errors = page.errors.filter((e) => !/status of 422/.test(e)); // the refused request itself

    await add.getByLabel('Tag at').fill('3');
    await add.getByRole('button', { name: 'Add override' }).click();
    const table = page.getByRole('table', { name: 'Threshold overrides' });
    await table.getByRole('cell', { name: 'example.org', exact: true }).waitFor();
    const api = await apiOf(page);
    let got = await api.get('/api/v1/score/thresholds');
    assert.deepEqual(got.items.map((i) => [i.scope, i.name, i.tag, i.quarantine, i.refuse, i.greylist]),
      [['domain', 'example.org', 3, 4, null, null]]);

    // Changed in place: a refuse threshold as well.
    await page.getByRole('button', { name: 'Change domain example.org' }).click();
    const edit = page.getByRole('form', { name: 'Change domain example.org' });
    await edit.getByLabel('Refuse at').fill('12');
    await edit.getByRole('button', { name: 'Save' }).click();
    await table.getByRole('cell', { name: '12', exact: true }).waitFor();

    // A user's override.
    await add.getByLabel('Scope').selectOption('user');
    await add.getByLabel('User name').fill('alice');
    await add.getByLabel('Tag at').fill('1');
    await add.getByRole('button', { name: 'Add override' }).click();
    await table.getByRole('cell', { name: 'alice', exact: true }).waitFor();

    // A global threshold through its settings row.
    const st = page.getByRole('form', { name: 'score_refuse' });
    await st.getByLabel('score_refuse').fill('20');
    await st.getByRole('button', { name: 'Save' }).click();
    await st.getByText('Saved.').waitFor();
    got = await api.get('/api/v1/score/thresholds');
    assert.equal(got.global.refuse, 20);
    await shot(page, 'score-02-overrides');

    // Deleted through the confirmation dialog.
    await page.getByRole('button', { name: 'Delete domain example.org' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete 1 override' }).click();
    await table.getByRole('cell', { name: 'example.org', exact: true }).waitFor({ state: 'detached' });
    got = await api.get('/api/v1/score/thresholds');
    assert.deepEqual(got.items.map((i) => i.name), ['alice']);
    const audit = await api.get('/api/v1/audit?object_type=score_threshold');
    assert.deepEqual(audit.items.map((a) => a.action),
      ['score_threshold.delete', 'score_threshold.set', 'score_threshold.set', 'score_threshold.set']);
    assert.deepEqual(page.errors, []);
  } finally {
    await page.close();
  }
});
