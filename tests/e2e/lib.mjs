// What the e2e test files share: the real moatd (MOATD_BIN, port 0, a temp
// data dir, MOAT_ADMIN_PASSWORD) started and checked on exit, an SMTP client
// over node's net, Debian's chromium through playwright-core (webui/node_modules),
// and the console's common steps (log in, open a page, wait for a table's
// answer, call the API with the page's session).
//
// Not a test file: `node --test tests/e2e/` runs only *.test.mjs. Each test file
// runs in its own process, so the one moatd and the one browser below are that
// file's.
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const MOATD_BIN = process.env.MOATD_BIN || path.join(REPO, 'build', 'moatd');
export const WEBUI_DIST = path.join(REPO, 'webui', 'dist');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const ARTIFACTS = path.join(HERE, 'artifacts');
export const ADMIN_PASSWORD = 'e2e-admin-password';
export const WAIT = 10000;          // ms for any one UI wait
export const READY_TIMEOUT = 20000; // ms for moatd's ready line
export const IO_TIMEOUT = 10000;    // ms for any SMTP exchange
export const GEN_TIMEOUT = 15000;   // ms for moatd to load a policy generation

function missing() {
  if (!fs.existsSync(path.join(WEBUI_DIST, 'index.html'))) return 'webui/dist is not built (cd webui && npm ci && npm run build)';
  if (!fs.existsSync(path.join(REPO, 'webui', 'node_modules', 'playwright-core'))) return 'webui/node_modules/playwright-core missing (npm ci in webui/)';
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} missing (apt-get install chromium)`;
  if (!fs.existsSync(MOATD_BIN)) return `${MOATD_BIN} missing`;
  return '';
}
/* Why the e2e tests cannot run here ('' when they can). */
export const SKIP = missing();
// Outside CI a developer without chromium may skip; CI installs everything, so there a
// missing piece is a failure, never a silent skip.
if (SKIP && process.env.CI) throw new Error(`e2e cannot run in CI: ${SKIP}`);

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/* ---- moatd ---- */

/* The running moatd of this test file. */
export const d = { proc: null, dir: '', conf: '', data: '', smtpPort: 0, httpPort: 0, logPath: '' };

/* `moatd ARGS...` as a command (policy, queue, quarantine...); resolves with its stdout. */
export function moatd(args) {
  return new Promise((resolve, reject) => {
    execFile(MOATD_BIN, args, { timeout: 15000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`moatd ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/* `moatd SUB -c <the config> ARGS...`. */
export function moatdCli(sub, args) {
  return moatd([sub, '-c', d.conf, ...args]);
}

/*
 * Writes a config (the common keys, then `conf` lines), runs `prepare()` (commands on
 * the data dir before the daemon owns it), starts moatd and waits for its ready line.
 */
export async function startMoatd({ prefix = 'moat-e2e-', conf = [], prepare } = {}) {
  d.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  d.conf = path.join(d.dir, 'moatd.conf');
  d.data = path.join(d.dir, 'data');
  d.logPath = path.join(d.dir, 'moatd.log');
  fs.writeFileSync(d.conf, [
    `data_dir = ${d.data}`,
    'hostname = moat.test',
    'log = stderr',
    'log_level = info',
    'smtp_listen = 127.0.0.1:0',
    'http_listen = 127.0.0.1:0',
    'shutdown_timeout = 3s',
    `webui_dir = ${WEBUI_DIST}`,
    ...conf,
    '',
  ].join('\n'));
  if (prepare) await prepare();
  const out = fs.openSync(d.logPath, 'a');
  d.proc = spawn(MOATD_BIN, ['-c', d.conf], {
    cwd: d.dir, stdio: ['ignore', out, out], env: { ...process.env, MOAT_ADMIN_PASSWORD: ADMIN_PASSWORD },
  });
  fs.closeSync(out);
  const deadline = Date.now() + READY_TIMEOUT;
  while (Date.now() < deadline) {
    const text = log();
    const m = / ready .*\bsmtp=127\.0\.0\.1:(\d+)\S* http=127\.0\.0\.1:(\d+)/.exec(text);
    if (m) {
      d.smtpPort = Number(m[1]);
      d.httpPort = Number(m[2]);
      return;
    }
    if (d.proc.exitCode !== null) throw new Error(`moatd exited before ready:\n${text.slice(-3000)}`);
    await sleep(50);
  }
  throw new Error(`moatd not ready after ${READY_TIMEOUT} ms`);
}

async function stopMoatd() {
  const p = d.proc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((resolve) => p.once('exit', resolve));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 15000);
  await done;
  clearTimeout(t);
}

/* Stops moatd, removes its directory; a sanitizer report or an unclean exit fails the file. */
export async function finishMoatd() {
  await stopMoatd();
  const text = d.logPath && fs.existsSync(d.logPath) ? log() : '';
  const rc = d.proc ? d.proc.exitCode : 0;
  if (d.dir) fs.rmSync(d.dir, { recursive: true, force: true });
  if (/AddressSanitizer|runtime error:|LeakSanitizer/.test(text)) throw new Error(`sanitizer report in moatd log:\n${text.slice(-4000)}`);
  if (rc !== 0) throw new Error(`moatd exited with ${rc} (signal ${d.proc.signalCode}); log tail:\n${text.slice(-2000)}`);
}

/* moatd's log so far. */
export function log() {
  return fs.readFileSync(d.logPath, 'utf8');
}

/* Until moatd has loaded policy generation gen (a change applies to the next connection then). */
export async function generationLoaded(gen) {
  const loaded = () => Math.max(0, ...[...log().matchAll(/policy loaded generation=(\d+)/g)].map((m) => Number(m[1])));
  const deadline = Date.now() + GEN_TIMEOUT;
  while (loaded() < gen && Date.now() < deadline) await sleep(50);
  assert.ok(loaded() >= gen, `policy generation ${gen} not loaded (last ${loaded()})`);
}

/* SQL straight into moatd's database (the daily counters the mail side keeps, queue states). */
export function sqlite(sql) {
  return new Promise((resolve, reject) => {
    execFile('sqlite3', ['-cmd', '.timeout 5000', path.join(d.data, 'moat.db'), sql], { timeout: 15000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`sqlite3: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/* ---- SMTP with node's net: the source address chosen by localAddress ---- */

export function smtpClient(localAddress) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: d.smtpPort, localAddress });
    let buf = '';
    let waiter = null;
    let closed = false;
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('SMTP connect timed out')); }, IO_TIMEOUT);
    const pump = () => {
      if (!waiter) return;
      // a complete reply: lines up to one whose 4th character is a space (or a bare code)
      const lines = buf.split('\r\n');
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3}( |$)/.test(lines[i])) {
          const reply = lines.slice(0, i + 1).join('\n');
          buf = lines.slice(i + 1).join('\r\n');
          const w = waiter;
          waiter = null;
          clearTimeout(w.timer);
          w.resolve({ code: Number(reply.slice(0, 3)), text: reply });
          return;
        }
      }
      if (closed) {
        const w = waiter;
        waiter = null;
        clearTimeout(w.timer);
        w.resolve({ code: 0, text: `(closed) ${buf}` });
      }
    };
    const c = {
      reply() {
        return new Promise((res, rej) => {
          waiter = { resolve: res, timer: setTimeout(() => { waiter = null; rej(new Error(`SMTP reply timed out; have ${JSON.stringify(buf)}`)); }, IO_TIMEOUT) };
          pump();
        });
      },
      async cmd(line) {
        sock.write(line + '\r\n');
        return c.reply();
      },
      close() { sock.destroy(); },
    };
    sock.setEncoding('latin1');
    sock.on('data', (chunk) => { buf += chunk; pump(); });
    sock.on('close', () => { closed = true; pump(); });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('connect', () => { clearTimeout(timer); resolve(c); });
  });
}

/* One message (text: headers and body, \n or \r\n) over SMTP; the reply to the end of DATA. */
export async function smtpSend({ from, to, text, localAddress }) {
  const c = await smtpClient(localAddress);
  try {
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    const mf = await c.cmd(`MAIL FROM:<${from}>`);
    assert.equal(mf.code, 250, mf.text);
    const rt = await c.cmd(`RCPT TO:<${to}>`);
    assert.equal(rt.code, 250, rt.text);
    assert.equal((await c.cmd('DATA')).code, 354);
    const r = await c.cmd(`${text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..')}\r\n.`);
    await c.cmd('QUIT');
    return r;
  } finally {
    c.close();
  }
}

/*
 * One session walked to the first RCPT (banner, EHLO, MAIL, RCPT), stopping at the first
 * reply that is not 2xx; the replies by step. With delay_reject (the default) a refusal
 * decided at connect or HELO (a conn_deny entry, a DNSBL) is given at RCPT, after 220,
 * 250 and 250.
 */
export async function sessionToRcpt({ localAddress, from = 'probe@client.example', to }) {
  const c = await smtpClient(localAddress);
  const r = {};
  try {
    r.banner = await c.reply();
    if (r.banner.code === 220) r.ehlo = await c.cmd('EHLO client.example');
    if (r.ehlo?.code === 250) r.mail = await c.cmd(`MAIL FROM:<${from}>`);
    if (r.mail?.code === 250) r.rcpt = await c.cmd(`RCPT TO:<${to}>`);
    if (r.banner.code !== 0) await c.cmd('QUIT');
  } finally {
    c.close();
  }
  return r;
}

/* The codes of a sessionToRcpt answer in order: [220, 250, 250, 554]. */
export function codesOf(r) {
  return ['banner', 'ehlo', 'mail', 'rcpt'].filter((k) => r[k]).map((k) => r[k].code);
}

/* ---- browser ---- */

let browser = null;

export function base() {
  return `http://127.0.0.1:${d.httpPort}`;
}

export async function launchBrowser() {
  const require = createRequire(path.join(REPO, 'webui', 'package.json'));
  const { chromium } = require('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

export async function closeBrowser() {
  if (browser) await browser.close();
  browser = null;
}

/*
 * A page that records console errors and page errors (page.errors) and every
 * alert/confirm/prompt (page.dialogs: a script that ran; each is dismissed).
 */
export async function newPage(viewport) {
  const ctx = await browser.newContext({ viewport: viewport ?? { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  page.setDefaultNavigationTimeout(WAIT);
  page.errors = [];
  page.dialogs = [];
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => page.errors.push(`pageerror: ${e.message}`));
  page.on('dialog', (dlg) => { page.dialogs.push(`${dlg.type()}: ${dlg.message()}`); dlg.dismiss().catch(() => {}); });
  return page;
}

export async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true, timeout: WAIT });
}

export async function login(page, user, password) {
  await page.goto(base() + '/');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
}

/*
 * The region of a table once its rows answer `query` (as the console words it,
 * with ", page N" for paged lists): aria-busy is false and data-query names that
 * query, both in the same DOM state. Counting rows through the returned locator
 * never sees the rows of an older query: while another query loads, it matches
 * nothing.
 */
export async function results(page, label, query) {
  const css = (v) => JSON.stringify(v);
  const region = page.locator(`[role="region"][aria-label=${css(label)}][aria-busy="false"][data-query=${css(query)}]`);
  await region.waitFor();
  return region;
}

/*
 * Opens a console route by clicking its navigation link and waits for its heading;
 * settle: also until the network is idle and no loading placeholder is left.
 */
export async function openPage(page, linkName, heading, { settle = false } = {}) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: linkName, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  if (!settle) return;
  await page.waitForLoadState('networkidle', { timeout: WAIT });
  await page.locator('.loading').first().waitFor({ state: 'detached', timeout: WAIT }).catch(() => {});
}

/*
 * JSON API calls with the page's own session (cookie + CSRF token): call() answers
 * {status, body}; get/post/put/patch assert a 2xx and answer the body.
 */
export async function apiOf(page) {
  const csrf = (await (await page.request.get(base() + '/api/v1/session', { timeout: WAIT })).json()).csrf_token;
  const call = async (method, p, data) => {
    const r = await page.request.fetch(base() + p, {
      method, data, headers: data === undefined ? { 'X-CSRF-Token': csrf } : { 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' }, timeout: WAIT,
    });
    const text = await r.text();
    let body = null;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: r.status(), body };
  };
  const ok = async (method, p, data) => {
    const r = await call(method, p, data);
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return { call, get: (p) => ok('GET', p), post: (p, b) => ok('POST', p, b), put: (p, b) => ok('PUT', p, b), patch: (p, b) => ok('PATCH', p, b) };
}

/* ---- the downstream: an SMTP sink on loopback that keeps every message it is given ---- */

export const sink = {
  server: null,
  port: 0,
  messages: [], /* {from, rcpts, data} */
  listeners: new Set(),
  /* The first message (already here or still to come) for which pred holds. */
  waitFor(pred, what, ms = 20000) {
    const have = sink.messages.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const on = (m) => {
        if (!pred(m)) return;
        clearTimeout(t);
        sink.listeners.delete(on);
        resolve(m);
      };
      const t = setTimeout(() => {
        sink.listeners.delete(on);
        reject(new Error(`no message ${what} at the downstream within ${ms} ms (have ${sink.messages.length})`));
      }, ms);
      sink.listeners.add(on);
    });
  },
};

export function startSink() {
  return new Promise((resolve) => {
    sink.server = net.createServer((sock) => {
      sock.setEncoding('latin1');
      let buf = '';
      let tx = { from: '', rcpts: [] };
      let inData = false;
      let data = '';
      sock.write('220 sink.test ESMTP\r\n');
      sock.on('data', (chunk) => {
        buf += chunk;
        for (;;) {
          if (inData) {
            data += buf;
            buf = '';
            const end = data.startsWith('.\r\n') ? 0 : data.indexOf('\r\n.\r\n');
            if (end < 0) return;
            buf = data.slice(end === 0 ? 3 : end + 5);
            const body = end === 0 ? '' : data.slice(0, end + 2);
            inData = false;
            data = '';
            const m = { from: tx.from, rcpts: tx.rcpts, data: body.replace(/\r\n\.\./g, '\r\n.') };
            tx = { from: '', rcpts: [] };
            sink.messages.push(m);
            sock.write('250 2.0.0 kept\r\n');
            for (const l of [...sink.listeners]) l(m);
            continue;
          }
          const nl = buf.indexOf('\r\n');
          if (nl < 0) return;
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 2);
          const verb = line.slice(0, 4).toUpperCase();
          if (verb === 'EHLO') sock.write('250-sink.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n');
          else if (verb === 'HELO') sock.write('250 sink.test\r\n');
          else if (verb === 'MAIL') { tx.from = /<([^>]*)>/.exec(line)?.[1] ?? ''; sock.write('250 2.1.0 ok\r\n'); }
          else if (verb === 'RCPT') { tx.rcpts.push((/<([^>]*)>/.exec(line)?.[1] ?? '').toLowerCase()); sock.write('250 2.1.5 ok\r\n'); }
          else if (verb === 'DATA') { inData = true; sock.write('354 go on\r\n'); }
          else if (verb === 'QUIT') { sock.end('221 2.0.0 bye\r\n'); return; }
          else if (verb === 'RSET' || verb === 'NOOP') { tx = { from: '', rcpts: [] }; sock.write('250 ok\r\n'); }
          else sock.write('502 5.5.1 not here\r\n');
        }
      });
      sock.on('error', () => {});
    });
    sink.server.listen(0, '127.0.0.1', () => {
      sink.port = sink.server.address().port;
      resolve();
    });
  });
}

/*
 * The setup of the tests that follow mail to a downstream: the sink, a moatd
 * that takes mail for example.org (any local part: no directory needed) and
 * delivers it there, and the browser; and its teardown.
 */
export async function startDeliveringMoatd(prefix) {
  if (SKIP) return;
  await startSink();
  await startMoatd({
    prefix,
    conf: ['delivery = yes', `downstream = 127.0.0.1:${sink.port}`, 'downstream_tls = off'],
    prepare: async () => {
      await moatd(['policy', '--data-dir', d.data, 'add', 'local_domain', 'example.org']);
      await moatd(['policy', '--data-dir', d.data, 'set', 'recipient_verify', 'no']);
    },
  });
  await launchBrowser();
}

export async function stopDeliveringMoatd() {
  try {
    await closeBrowser();
  } finally {
    try {
      await finishMoatd();
    } finally {
      if (sink.server) sink.server.close();
    }
  }
}
