// End-to-end test of the dashboard's cluster health (docs/console.md, docs/cluster.md
// "Outage"): a real redis-server on a free loopback port and the real moatd as node 1
// of a cluster with that Redis (cluster_node = 1, cluster_redis), driven by Debian's
// chromium through playwright-core.
//
//   node --test tests/e2e/            (ctest: the "e2e" test)
//
// Flow: the administrator's dashboard shows the Cluster card with Redis up and no
// banner; redis-server is killed: the banner says the node runs alone, since when
// (the time /healthz gives, in the browser's zone) and why, and the card says down
// with one outage; redis-server is started again on the same port: the banner goes
// and the card says up. Then a single node (no cluster keys) shows neither card nor
// banner. Every wait is on an event (an element, a /healthz answer), bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  ADMIN_PASSWORD, base, closeBrowser, finishMoatd, launchBrowser, login, newPage, shot, SKIP, sleep, startMoatd,
} from './lib.mjs';

function redisMissing() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore', timeout: 10000 });
    return '';
  } catch {
    return 'redis-server missing (apt-get install redis-server)';
  }
}
const SKIP_ALL = SKIP || redisMissing();
// as in lib.mjs: CI installs redis-server (scripts/dev.sh), so there it missing is a failure
if (SKIP_ALL && process.env.CI) throw new Error(`e2e cannot run in CI: ${SKIP_ALL}`);
if (SKIP_ALL) console.log(`# e2e skipped: ${SKIP_ALL}`);

/* The dashboard asks /healthz every 10 s and moatd retries Redis every second. */
const CHANGE_TIMEOUT = 30000;
const REDIS_START_TIMEOUT = 10000;

/* ---- redis-server on loopback, no persistence ---- */

const redis = { proc: null, port: 0, dir: '' };

async function freeTcpPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/* true once the server at port answers PING with +PONG. */
function pong(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok) => { clearTimeout(t); sock.destroy(); resolve(ok); };
    const t = setTimeout(() => done(false), 500);
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (c) => { buf += c; if (buf.includes('\r\n')) done(buf.startsWith('+PONG')); });
    sock.on('error', () => done(false));
  });
}

async function startRedis() {
  if (!redis.dir) redis.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-e2e-redis-'));
  if (!redis.port) redis.port = await freeTcpPort();
  redis.proc = spawn('redis-server', ['--port', String(redis.port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--protected-mode', 'no', '--dir', redis.dir, '--logfile', path.join(redis.dir, 'redis.log')],
  { stdio: 'ignore' });
  const deadline = Date.now() + REDIS_START_TIMEOUT;
  while (Date.now() < deadline) {
    if (redis.proc.exitCode !== null) throw new Error(`redis-server exited (${redis.proc.exitCode}) on port ${redis.port}`);
    if (await pong(redis.port)) return;
    await sleep(50);
  }
  throw new Error(`redis-server did not answer on port ${redis.port} within ${REDIS_START_TIMEOUT} ms`);
}

/* Kills redis-server at once (no shutdown of its own: the connection simply goes). */
async function killRedis() {
  const p = redis.proc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await gone;
  redis.proc = null;
}

/*
 * GET /healthz (no authentication) on a connection of its own: a kept-alive one that moatd
 * closes after http_header_timeout of quiet could be reused at the moment it goes.
 */
function healthz() {
  return new Promise((resolve, reject) => {
    const req = http.get(base() + '/healthz', { agent: false, timeout: 10000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        try {
          assert.equal(res.statusCode, 200, body);
          resolve(JSON.parse(body));
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('/healthz did not answer in time')));
    req.on('error', reject);
  });
}

/* What the browser shows for unix ms: "HH:MM" in its own zone (the card and banner's "since"). */
function clockIn(page, ms) {
  return page.evaluate((t) => {
    const d = new Date(t);
    return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  }, ms);
}

before(async () => {
  if (SKIP_ALL) return;
  await startRedis();
  await startMoatd({
    prefix: 'moat-e2e-cluster-',
    conf: ['cluster_node = 1', `cluster_redis = 127.0.0.1:${redis.port}`, 'cluster_retry = 1s'],
  });
  await launchBrowser();
});

after(async () => {
  if (SKIP_ALL) return;
  try {
    await closeBrowser();
  } finally {
    try {
      await finishMoatd();
    } finally {
      await killRedis();
      if (redis.dir) fs.rmSync(redis.dir, { recursive: true, force: true });
    }
  }
});

test('cluster node: the Cluster card, the banner while Redis is gone, and its end when Redis is back', { skip: SKIP_ALL || false }, async () => {
  const page = await newPage();
  try {
    await login(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    const card = page.locator('section.card[aria-label="Cluster"]');
    const redisRow = card.locator('tr[data-engine="redis"]');
    const banner = page.getByRole('alert').filter({ hasText: 'running alone' });

    // up: one row, Redis's; no PostgreSQL row (not configured), no banner
    await redisRow.locator('td[data-state="up"]').waitFor({ timeout: CHANGE_TIMEOUT });
    assert.equal(await card.getByRole('heading', { level: 2 }).innerText(), 'Cluster');
    assert.match(await redisRow.innerText(), /Redis\s+[^\n]*\bup\b/);
    assert.equal(await card.locator('tr[data-engine="postgresql"]').count(), 0);
    assert.equal(await banner.count(), 0);
    let h = await healthz();
    assert.equal(h.status, 'ok');
    assert.equal(h.cluster.redis.state, 'up');
    await shot(page, '80-dashboard-cluster-up');

    // Redis gone: the banner says the node runs alone, since when and why; the card says down
    await killRedis();
    await banner.waitFor({ timeout: CHANGE_TIMEOUT });
    await redisRow.locator('td[data-state="down"]').waitFor({ timeout: CHANGE_TIMEOUT });
    h = await healthz();
    assert.equal(h.status, 'degraded');
    assert.equal(h.cluster.redis.state, 'down');
    const since = await clockIn(page, h.cluster.redis.since_ms);
    const text = await banner.innerText();
    assert.ok(text.includes(`Redis unreachable since ${since}: this node keeps taking and relaying mail; `
      + 'rate limits and greylist are per node until it is back.'), text);
    assert.match(text, /Error: \S/, 'the engine\'s error is named');
    assert.ok(!text.includes('PostgreSQL'), text);
    const row = await redisRow.innerText();
    assert.match(row, /\bdown\b/);
    assert.ok(row.includes(since), `the card's since ${since}: ${row}`);
    assert.equal(await redisRow.locator('td.num').innerText(), String(h.cluster.redis.outages));
    assert.ok(h.cluster.redis.outages >= 1);
    // the state is said in words, not only by colour
    assert.equal((await redisRow.locator('.state').innerText()).replace(/^\W+/, ''), 'down');
    await shot(page, '81-dashboard-cluster-degraded');

    // Redis back on the same port: the banner goes, the card says up again
    await startRedis();
    await banner.waitFor({ state: 'detached', timeout: CHANGE_TIMEOUT });
    await redisRow.locator('td[data-state="up"]').waitFor({ timeout: CHANGE_TIMEOUT });
    h = await healthz();
    assert.equal(h.status, 'ok');
    assert.equal(h.cluster.redis.state, 'up');
    assert.deepEqual(page.errors, []);
  } finally {
    await page.context().close();
  }
});

test('single node: no Cluster card and no banner', { skip: SKIP_ALL || false }, async () => {
  await finishMoatd();
  await startMoatd({ prefix: 'moat-e2e-single-' });
  const page = await newPage();
  try {
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/healthz', { timeout: 20000 });
    await login(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    const h = await (await answered).json();
    assert.equal(h.status, 'ok');
    assert.equal(h.cluster, undefined);
    // the dashboard has drawn with that answer: its other cards are there
    await page.locator('td[data-state="held"]').waitFor();
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    assert.equal(await page.locator('section.card[aria-label="Cluster"]').count(), 0);
    assert.equal(await page.getByRole('heading', { name: 'Cluster', exact: true }).count(), 0);
    assert.equal(await page.getByText('running alone').count(), 0);
    assert.deepEqual(page.errors, []);
  } finally {
    await page.context().close();
  }
});
