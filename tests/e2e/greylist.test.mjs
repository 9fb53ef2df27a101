// End-to-end test of the console's Greylist page (docs/console.md, docs/score.md
// "Greylisting"): the real moatd (MOATD_BIN, port 0, a temp data dir) receiving
// for example.org with every inbound message in the greylist band
// (score_greylist -100, greylist_delay 1 s, greylist_auto_allow 2), driven by
// Debian's chromium through playwright-core.
//
//   node --test tests/e2e/            (ctest: the "e2e" test)
//
// Flow: a client from 127.0.9.10 is deferred (451 4.7.1); the page lists its
// triplet as waiting, found again by the client's address; a setting is changed
// on the page and the API agrees; the client retries after the delay and is
// accepted, the page shows the triplet passed; a second recipient passes too and
// the network shows as auto-allowed, then is deleted from the page after a
// dialog; one triplet is deleted from its row, the rest with "Delete all" after
// a dialog that counts them. Every wait is on an event (a region's
// aria-busy/data-query, an API state), bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import {
  ADMIN_PASSWORD, apiOf, closeBrowser, d, finishMoatd, launchBrowser, login, moatd, newPage, openPage, results, shot,
  SKIP, sleep, smtpSend, startMoatd,
} from './lib.mjs';

if (SKIP) console.log(`# e2e skipped: ${SKIP}`);

const SRC = '127.0.9.10';
const NET = '127.0.9.0/24';

/*
 * A DNS server on loopback (dnsmasq, only local .test names: each answered at once), so that
 * sender authentication runs and answers SPF none for the senders under .test.
 */
let dnsmasq = null;

async function freeUdpPort() {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/* true once the server at port answers a query (SOA of test). */
function answers(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const q = Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, ...Buffer.from('test'), 0, 0, 6, 0, 1]);
    const t = setTimeout(() => { s.close(); resolve(false); }, 300);
    s.on('message', () => { clearTimeout(t); s.close(); resolve(true); });
    s.on('error', () => { clearTimeout(t); s.close(); resolve(false); });
    s.send(q, port, '127.0.0.1');
  });
}

/* dnsmasq binds TCP too: a port free for UDP may be taken for TCP, so try a few. */
async function startDns() {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort();
    dnsmasq = spawn('dnsmasq', ['--keep-in-foreground', '--conf-file=/dev/null', '--listen-address=127.0.0.1',
      '--bind-interfaces', `--port=${port}`, '--no-resolv', '--no-hosts', '--user=root', '--group=root', '--pid-file=',
      '--local=/test/', '--local=/127.in-addr.arpa/'], { stdio: 'ignore' });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && dnsmasq.exitCode === null) {
      if (await answers(port)) return port;
    }
    dnsmasq.kill('SIGKILL');
  }
  throw new Error('dnsmasq did not answer');
}

before(async () => {
  if (SKIP) return;
  const dnsPort = await startDns();
  await startMoatd({
    prefix: 'moat-e2e-gl-',
    conf: [`dns_servers = 127.0.0.1:${dnsPort}`],
    prepare: async () => {
      const p = (...a) => moatd(['policy', '--data-dir', d.data, ...a]);
      await p('add', 'local_domain', 'example.org');
      await p('set', 'recipient_verify', 'no');
      await p('remove', 'relay_net', '127.0.0.0/8'); // loopback clients are inbound here
      await p('set', 'score_greylist', '-100');
      await p('set', 'greylist_delay', '1');
      await p('set', 'greylist_auto_allow', '2');
    },
  });
  await launchBrowser();
});

after(async () => {
  try {
    await closeBrowser();
  } finally {
    try {
      await finishMoatd();
    } finally {
      if (dnsmasq) dnsmasq.kill('SIGTERM');
    }
  }
});

const send = (to, from = 'alice@example.test') => smtpSend({
  from, to, localAddress: SRC,
  text: `From: <${from}>\nTo: <${to}>\nSubject: greylist ${to}\nMessage-ID: <${Date.now()}.${Math.random().toString(36).slice(2)}@client.test>\n\nHello.\n`,
});

/* Polls the API (bounded) until pred holds for the answer of path. */
async function until(api, path, pred, what, ms = 10000) {
  const deadline = Date.now() + ms;
  let last = null;
  while (Date.now() < deadline) {
    last = await api.get(path);
    if (pred(last)) return last;
    await sleep(100);
  }
  assert.fail(`${what}: last answer ${JSON.stringify(last)}`);
}

/* The greylist delay is wall-clock time: wait until it has run from first_seen. */
async function afterDelay(firstSeen) {
  const wait = firstSeen + 1100 - Date.now();
  if (wait > 0) await sleep(wait);
}

async function search(page, fields, query) {
  const form = page.getByRole('search', { name: 'Greylist search' });
  for (const [label, value] of Object.entries(fields)) {
    const input = form.getByLabel(label, { exact: true });
    if (label === 'State') await input.selectOption(value);
    else await input.fill(value);
  }
  await form.getByRole('button', { name: 'Search' }).click();
  return results(page, 'Greylist triplets', query);
}

test('greylist page: settings, triplets waiting and passed, auto-allowed networks, deletes', { skip: SKIP || false }, async () => {
  const page = await newPage();
  try {
    const first = await send('bob@example.org');
    assert.equal(first.code, 451, first.text);
    assert.match(first.text, /4\.7\.1 Greylisted/);

    await login(page, 'admin', ADMIN_PASSWORD);
    const api = await apiOf(page);
    await openPage(page, 'Greylist', 'Greylist');
    let region = await results(page, 'Greylist triplets', 'all triplets, page 1');
    let row = region.locator('tbody tr');
    assert.equal(await row.count(), 1);
    const cells = await row.first().locator('td').allInnerTexts();
    assert.deepEqual(cells.slice(0, 4), [NET, 'alice@example.test', 'bob@example.org', 'waiting']);
    assert.match(await region.innerText(), /1 triplet in all/);
    // Found by the client's address, not found among the passed ones.
    region = await search(page, { 'Client network': SRC }, `triplets with network ${SRC}, page 1`);
    assert.equal(await region.locator('tbody tr').count(), 1);
    region = await search(page, { State: 'passed' }, `triplets with state passed, network ${SRC}, page 1`);
    await region.getByText('No triplets.').waitFor();
    // A bad network is named under its field.
    const form = page.getByRole('search', { name: 'Greylist search' });
    await form.getByLabel('Client network', { exact: true }).fill('not-an-address');
    await form.getByLabel('State', { exact: true }).selectOption('');
    await form.getByRole('button', { name: 'Search' }).click();
    await form.getByText('an IP address, a.b.c.0/24 or an IPv6 /64').waitFor();
    await shot(page, 'g01-greylist-waiting');

    // A setting changed on the page is the policy's.
    const win = page.getByRole('form', { name: 'greylist_window' });
    await win.getByLabel('Retry window (seconds)').fill('7200');
    await win.getByRole('button', { name: 'Save' }).click();
    await win.getByText('Saved.').waitFor();
    const settings = await api.get('/api/v1/policy/settings');
    assert.equal(settings.items.find((s) => s.key === 'greylist_window').value, '7200');

    // The retry after the delay passes; the page shows the triplet passed.
    const t = (await api.get('/api/v1/greylist')).items[0];
    await afterDelay(t.first_seen);
    assert.equal((await send('bob@example.org')).code, 250);
    await form.getByLabel('Client network', { exact: true }).fill('');
    region = await search(page, { State: 'passed' }, 'triplets with state passed, page 1');
    row = region.locator('tbody tr');
    assert.equal(await row.count(), 1);
    assert.match((await row.first().locator('td').nth(3).innerText()), /^passed /);

    // A second recipient passes: the network is auto-allowed (2 passes).
    assert.equal((await send('carol@example.org')).code, 451);
    const t2 = (await api.get('/api/v1/greylist?recipient=carol@example.org')).items[0];
    await afterDelay(t2.first_seen);
    assert.equal((await send('carol@example.org')).code, 250);
    await until(api, '/api/v1/greylist/allowed', (l) => l.total === 1, 'network allowed');
    assert.equal((await send('dave@example.org', 'new@example.test')).code, 250, 'allowed network is not greylisted');
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Greylist' }).waitFor();
    let allowed = await results(page, 'Auto-allowed networks', 'auto-allowed networks, page 1');
    assert.deepEqual((await allowed.locator('tbody tr td').allInnerTexts()).slice(0, 2), [NET, '2']);
    await page.getByText('A network is allowed once 2 triplets passed; 1 network allowed now.').waitFor();
    await shot(page, 'g02-greylist-allowed');
    await allowed.getByRole('button', { name: `Delete ${NET}` }).click();
    let dlg = page.getByRole('dialog');
    await dlg.getByText(`This forgets 1 network (${NET}) and its 2 passes`).waitFor();
    await dlg.getByRole('button', { name: 'Delete 1 network' }).click();
    await until(api, '/api/v1/greylist/allowed', (l) => l.total === 0, 'network forgotten');
    allowed = await results(page, 'Auto-allowed networks', 'auto-allowed networks, page 1');
    await allowed.getByText('No network is auto-allowed.').waitFor();

    // One triplet deleted from its row, then all the rest after a dialog that counts them.
    region = await search(page, { State: '' }, 'all triplets, page 1');
    assert.equal(await region.locator('tbody tr').count(), 2);
    await region.getByRole('button', { name: `Delete alice@example.test to carol@example.org from ${NET}` }).click();
    dlg = page.getByRole('dialog');
    await dlg.getByRole('button', { name: 'Delete 1 triplet' }).click();
    await until(api, '/api/v1/greylist', (l) => l.total === 1, 'one triplet deleted');
    region = await results(page, 'Greylist triplets', 'all triplets, page 1');
    await region.getByText('1 triplet in all.').waitFor();
    await page.getByRole('button', { name: 'Delete all…' }).click();
    dlg = page.getByRole('dialog');
    await dlg.getByText('This forgets 1 triplet').waitFor();
    await dlg.getByRole('button', { name: 'Delete 1 triplet' }).click();
    await until(api, '/api/v1/greylist', (l) => l.total === 0, 'all deleted');
    region = await results(page, 'Greylist triplets', 'all triplets, page 1');
    await region.getByText('No triplets.').waitFor();
    // The one failed request is the bad network searched on purpose (422, shown under its field).
    assert.deepEqual(page.errors.filter((e) => !/status of 422/.test(e)), []);
    assert.equal(page.errors.length, 1, page.errors.join('\n'));
    assert.deepEqual(page.dialogs, []);
  } finally {
    await page.close();
  }
});
