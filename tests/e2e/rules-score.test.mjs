// End-to-end test of the server rule editor and the spam score (docs/rules.md, "The spam
// score"): an administrator builds "score part BAYES is 0 and spam score < 15 -> add 2.5
// points" with the editor's Score part / Spam score fields and its "Add score points"
// action, the list shows "score +2.5", the stored rule is the model's JSON, a refused
// points value is shown next to the Points input, and the dry run shows each recipient's
// points. The real moatd (MOATD_BIN) serves webui/dist; chromium through playwright-core.
// Shared helpers: ./lib.mjs. Every wait is bounded; moatd and the browser are always closed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_PASSWORD, SKIP, WAIT, base, closeBrowser, finishMoatd, launchBrowser, login, newPage, openPage, results, shot, startMoatd,
} from './lib.mjs';

if (SKIP) console.log(`# e2e skipped: ${SKIP}`);

before(async () => {
  if (SKIP) return;
  await startMoatd({});
  await launchBrowser();
});

after(async () => {
  if (SKIP) return;
  await closeBrowser();
  await finishMoatd();
});

test('server rules: score fields and score points in the editor, the list and the dry run', { skip: SKIP || false }, async () => {
  const page = await newPage();
  try {
    await login(page, 'admin', ADMIN_PASSWORD);
    await openPage(page, 'Server rules', 'Server rules', { settle: true });
    const api = async (p) => (await page.request.get(base() + p, { timeout: WAIT })).json();

    await page.getByRole('button', { name: 'New rule' }).click();
    const ed = page.getByRole('form', { name: 'New rule' });
    await ed.getByLabel('Rule name').fill('filter sure');
    const when = ed.getByRole('group', { name: 'When', exact: true });
    const c1 = when.getByRole('group', { name: 'Condition 1', exact: true });
    await c1.getByLabel('Field').selectOption('score_part');
    // numeric operators only, and a part name
    assert.deepEqual(await c1.getByLabel('Operator').locator('option').evaluateAll((o) => o.map((x) => x.value)),
      ['gt', 'lt', 'is', 'is_not']);
    assert.equal(await c1.getByLabel('Part name').inputValue(), 'BAYES');
    await c1.getByLabel('Operator').selectOption('is');
    await c1.getByLabel('Value').fill('0');
    await when.getByRole('button', { name: 'Add condition to When' }).click();
    const c2 = when.getByRole('group', { name: 'Condition 2', exact: true });
    await c2.getByLabel('Field').selectOption('score');
    await c2.getByLabel('Operator').selectOption('lt');
    await c2.getByLabel('Value').fill('15');
    await ed.getByLabel('Action', { exact: true }).selectOption('score');
    // a refused value is shown next to the Points input, naming the field
    await ed.getByLabel('Points').fill('0');
    await ed.getByRole('button', { name: 'Create rule' }).click();
    const pts = ed.getByLabel('Points');
    await ed.locator('.field.has-error .field-error').waitFor({ timeout: WAIT });
    assert.equal(await pts.getAttribute('aria-invalid'), 'true');
    /* described by its error and its hint */
    const errId = (await pts.getAttribute('aria-describedby')).split(' ')[0];
    assert.match(await page.locator(`[id="${errId}"]`).innerText(), /action\.points: must be a decimal number/);
    page.errors = page.errors.filter((e) => !/status of 422/.test(e));
    await pts.fill('+2.5');
    await shot(page, '40-rules-score-editor');
    await ed.getByRole('button', { name: 'Create rule' }).click();
    await page.getByText('Rule “filter sure” saved.').waitFor({ timeout: WAIT });
    const region = await results(page, 'Rules', 'all rules in evaluation order');
    assert.equal((await region.locator('td.summary').innerText()).trim(), 'score part BAYES is 0 and score < 15 → score +2.5');
    const stored = (await api('/api/v1/rules')).items;
    assert.deepEqual(stored[0].when, {
      all: [{ field: 'score_part', name: 'BAYES', op: 'is', value: 0 }, { field: 'score', op: 'lt', value: 15 }],
    });
    assert.deepEqual(stored[0].action, { type: 'score', points: 2.5 });

    // the dry run of a pasted message (no score: every part counts as 0): the points per recipient
    const dry = page.getByRole('form', { name: 'Dry run' });
    await dry.getByLabel('Message (raw, headers and body)').fill('From: <a@shop.example>\nSubject: hi\n\nHello.\n');
    await dry.getByLabel('Recipients').fill('u1@example.org');
    await dry.getByRole('button', { name: 'Test against saved rules' }).click();
    const out = await results(page, 'Dry run results', 'the pasted message against the saved rules');
    assert.equal((await out.locator('table.dryrun tbody tr td:nth-child(2)').innerText()).trim(), 'deliver');
    assert.equal((await out.locator('table.dryrun tbody tr td:nth-child(4)').innerText()).trim(), 'score +2.5');
    await shot(page, '41-rules-score-dry-run');
    assert.deepEqual(page.errors, []);
  } finally {
    await page.context().close();
  }
});
