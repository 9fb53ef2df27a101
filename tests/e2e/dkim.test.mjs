// End-to-end test of the console's DKIM page (docs/sender-auth.md, "Signing"): the
// real moatd (MOATD_BIN, port 0, a temp data dir) with two local domains, driven by
// Debian's chromium through playwright-core.
//
//   node --test tests/e2e/            (ctest: the "e2e" test)
//
// Flow: the administrator generates an Ed25519 key for a local domain that does not
// sign yet; the page shows the DNS record to publish (the same as the API's) and its
// copy button puts it on the clipboard; the selector taken again is refused with the
// reason under the field; the key is enabled, an RSA key is added, one key is deleted
// after a confirmation (Cancel first: nothing happens). Every wait is on an element
// or an API state, bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_PASSWORD, apiOf, base, closeBrowser, d, finishMoatd, launchBrowser, login, moatd, newPage, openPage, shot,
  SKIP, sleep, startMoatd,
} from './lib.mjs';

if (SKIP) console.log(`# e2e skipped: ${SKIP}`);

before(async () => {
  if (SKIP) return;
  await startMoatd({
    prefix: 'moat-e2e-dkim-',
    prepare: async () => {
      await moatd(['policy', '--data-dir', d.data, 'add', 'local_domain', 'example.org']);
      await moatd(['policy', '--data-dir', d.data, 'add', 'local_domain', 'example.net']);
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

/* Polls the API (bounded) until pred holds for the key list. */
async function keysUntil(api, pred, what, ms = 10000) {
  const deadline = Date.now() + ms;
  let last = null;
  while (Date.now() < deadline) {
    last = (await api.get('/api/v1/dkim/keys')).items;
    if (pred(last)) return last;
    await sleep(100);
  }
  assert.fail(`${what}: last answer ${JSON.stringify(last)}`);
}

test('DKIM keys: generate, record to copy, duplicate refused, enable, delete after confirmation', { skip: SKIP || false }, async () => {
  const page = await newPage();
  try {
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base() });
    await login(page, 'admin', ADMIN_PASSWORD);
    const api = await apiOf(page);
    await openPage(page, 'DKIM', 'DKIM signing', { settle: true });
    await page.getByText('No keys: outgoing mail is not signed.').waitFor();

    const form = page.getByRole('form', { name: 'New DKIM key' });
    const domains = await form.getByLabel('Domain').locator('option').allTextContents();
    assert.deepEqual(domains.sort(), ['example.net', 'example.org']);
    await form.getByLabel('Domain').selectOption('example.org');
    await form.getByLabel('Selector').fill('mail2026');
    await form.getByLabel('Algorithm').selectOption('ed25519-sha256');
    assert.equal(await form.getByLabel('Bits').count(), 0, 'no bits for Ed25519');
    await form.getByLabel('Sign with it').selectOption('false');
    await form.getByRole('button', { name: 'Generate key' }).click();

    const notice = page.getByRole('status', { name: 'New key' });
    await notice.waitFor();
    const [k] = await keysUntil(api, (ks) => ks.length === 1, 'the new key');
    assert.equal(k.domain, 'example.org');
    assert.equal(k.algorithm, 'ed25519-sha256');
    assert.equal(k.enabled, false);
    const shown = await notice.getByLabel('DNS record of mail2026 for example.org').inputValue();
    assert.equal(shown, k.record_zone);
    assert.match(shown, /^"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="$/);
    assert.match(await notice.innerText(), /mail2026\._domainkey\.example\.org/);
    await notice.getByRole('button', { name: 'Copy the record of mail2026 for example.org' }).click();
    await notice.getByText('Copied.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), k.record_zone);

    const table = page.getByRole('table', { name: 'DKIM keys' });
    const row = table.locator('tbody tr', { hasText: 'mail2026' });
    await row.getByText('disabled', { exact: true }).waitFor();

    // The same selector again: refused, the reason under the field, nothing added.
    await form.getByLabel('Selector').fill('mail2026');
    await form.getByRole('button', { name: 'Generate key' }).click();
    await form.getByRole('alert').filter({ hasText: 'already has a key with selector mail2026' }).waitFor();
    assert.equal((await api.get('/api/v1/dkim/keys')).items.length, 1);

    await row.getByRole('button', { name: 'Enable mail2026 for example.org' }).click();
    await row.getByText('signing', { exact: true }).waitFor();
    await keysUntil(api, (ks) => ks[0].enabled === true, 'enabled');

    // An RSA key for the other domain: its record is split into 255-octet strings.
    await form.getByLabel('Domain').selectOption('example.net');
    await form.getByLabel('Selector').fill('rsa1');
    await form.getByLabel('Algorithm').selectOption('rsa-sha256');
    await form.getByLabel('Bits').selectOption('1024');
    await form.getByLabel('Sign with it').selectOption('true');
    await form.getByRole('button', { name: 'Generate key' }).click();
    const rsaRow = table.locator('tbody tr', { hasText: 'rsa1' });
    await rsaRow.getByText('RSA 1024').waitFor();
    const rsa = (await keysUntil(api, (ks) => ks.length === 2, 'the RSA key')).find((x) => x.selector === 'rsa1');
    assert.equal(rsa.enabled, true);
    assert.equal(await rsaRow.getByLabel('DNS record of rsa1 for example.net').inputValue(), rsa.record_zone);
    await shot(page, 'dkim-keys');

    // Delete: Cancel leaves it; the confirmed action removes exactly that key.
    await row.getByRole('button', { name: 'Delete mail2026 for example.org' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'Delete key mail2026 of example.org?' }).waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await api.get('/api/v1/dkim/keys')).items.length, 2);
    await row.getByRole('button', { name: 'Delete mail2026 for example.org' }).click();
    await dialog.getByRole('button', { name: 'Delete 1 key' }).click();
    await row.waitFor({ state: 'detached' });
    const left = await keysUntil(api, (ks) => ks.length === 1, 'after delete');
    assert.equal(left[0].selector, 'rsa1');

    // The one refused request (the duplicate selector) is the browser's only complaint.
    assert.deepEqual(page.errors.filter((e) => !/status of 409/.test(e)), []);
    assert.deepEqual(page.dialogs, []);
  } catch (e) {
    await shot(page, 'dkim-failure').catch(() => {});
    throw e;
  } finally {
    await page.context().close();
  }
});
