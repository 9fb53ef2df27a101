#!/usr/bin/python3
"""AUTH under a hammering bot (see bench/README.md, "AUTH under a hammering bot").

Starts each moatd given (e.g. an old and a new build) three times on loopback, once per
scenario, with a fresh data directory, a submission port and 11 accounts:

  a) "bot" is suspended and hammers AUTH PLAIN with its correct password from 40 connections;
  b) "bot" is not suspended and hammers with its correct password;
  c) "bot" hammers with a wrong password;

meanwhile 10 ordinary accounts (a process each) do a fresh connection + STARTTLS + AUTH every
200 ms.
All clients connect from 127.0.0.1, the bot's address too (one NAT).  Prints, per binary and
scenario: ordinary logins done / refused, their latency p50/p95/p99 (connect to 235), bot
exchanges, the Argon2 checks the daemon ran (moat_auth_checks_total from /metrics where the
binary has it, else counted from its log: "auth ok" + "AUTH FAILED" lines, one check each) and
moatd's CPU time (utime + stime from /proc/PID/stat) per AUTH exchange.

    /usr/bin/python3 bench/auth_flood.py OLD/moatd build/moatd

Knobs (environment): DURATION=8 (seconds of measurement per scenario), BOTS=40, USERS=10.
Bounded: every socket has a time-out, every phase a deadline; moatd is stopped and the
temporary directory removed at the end (KEEP=1 keeps it).
"""

import asyncio
import base64
import multiprocessing
import http.client
import json
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time

DURATION = float(os.environ.get("DURATION", "8"))
BOTS = int(os.environ.get("BOTS", "40"))
USERS = int(os.environ.get("USERS", "10"))
ADMIN_PASSWORD = "bench-admin-password-1"
IO_TIMEOUT = 15
TICKS = os.sysconf("SC_CLK_TCK")


def b64(s):
    return base64.b64encode(s.encode()).decode()


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Daemon:
    def __init__(self, binary, work, name):
        self.binary = binary
        self.wd = os.path.join(work, name)
        os.makedirs(self.wd)
        self.log = os.path.join(self.wd, "moatd.log")
        self.conf = {
            "data_dir": os.path.join(self.wd, "data"), "hostname": "bench.test",
            "log": self.log, "log_level": "info",
            "smtp_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0",
            "submission_listen": "127.0.0.1:0", "recipient_domain_check": "no",
            "auth_allow_plaintext": "yes", "delivery": "no",
            "max_sessions": "1000", "max_sessions_per_client": "1000",
            # every client is on 127.0.0.1: keep the per-address lock-out out of the figures
            "auth_fail_max_per_addr": "1000000",
        }
        self.cpath = os.path.join(self.wd, "moatd.conf")
        with open(self.cpath, "w") as fh:
            fh.write("".join(f"{k} = {v}\n" for k, v in self.conf.items()))
        self.proc = None

    def cli(self, *args, stdin=None):
        r = subprocess.run([self.binary, args[0], "-c", self.cpath] + list(args[1:]),
                           input=stdin, capture_output=True, timeout=60)
        if r.returncode != 0:
            sys.exit(f"{self.binary} {' '.join(args)}: {r.stderr.decode()[-500:]}")

    def add_user(self, name, pw):
        self.cli("policy", "user", "add", name, f"{name}@example.com")
        self.cli("accounts", "passwd", name, stdin=(pw + "\n").encode())

    def start(self):
        env = dict(os.environ, MOAT_ADMIN_PASSWORD=ADMIN_PASSWORD)
        self.err = open(self.log + ".stderr", "w")
        self.proc = subprocess.Popen([self.binary, "-c", self.cpath], stdout=self.err,
                                     stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = open(self.log).read() if os.path.exists(self.log) else ""
            m = re.search(r" ready smtp=(\S+) http=(\S+)", text)
            if m:
                self.smtp_port = int(m.group(1).split(",")[0].rsplit(":", 1)[1])
                self.http_port = int(m.group(2).rsplit(":", 1)[1])
                return
            if self.proc.poll() is not None:
                sys.exit(f"moatd exited: {open(self.log + '.stderr').read()[-2000:]}")
            time.sleep(0.05)
        self.proc.kill()
        sys.exit("moatd not ready")

    def cpu_ms(self):
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) * 1000.0 / TICKS  # utime, stime

    def checks(self):
        """Argon2 checks: the metric if the binary has it, else its log lines."""
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=IO_TIMEOUT)
            c.request("POST", "/api/v1/session",
                      json.dumps({"username": "admin", "password": ADMIN_PASSWORD}),
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            cookie = (r.getheader("set-cookie") or "").split(";", 1)[0]
            r.read()
            c.request("GET", "/metrics", headers={"Cookie": cookie})
            r = c.getresponse()
            body = r.read().decode()
            c.close()
            m = re.search(r"^moat_auth_checks_total (\d+)$", body, re.M)
            if m:
                return int(m.group(1)), "metric"
        except OSError:
            pass
        text = open(self.log).read()
        return len(re.findall(r" auth ok user=| AUTH FAILED from ", text)), "log"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


async def read_code(r):
    while True:
        line = await asyncio.wait_for(r.readline(), IO_TIMEOUT)
        if len(line) < 4:
            raise OSError("connection closed")
        if line[3:4] != b"-":
            return int(line[:3])


async def bot_conn(port, line, count):
    """One bot connection: AUTH again and again; a new connection after anything but 535."""
    while True:
        w = None
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), IO_TIMEOUT)
            await read_code(r)
            w.write(b"EHLO bot.example\r\n")
            await read_code(r)
            while True:
                w.write(line)
                code = await read_code(r)
                with count.get_lock():
                    count.value += 1
                if code != 535:  # 235: logged in; 421/454: closed or refused
                    break
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.05)
        finally:
            if w is not None:
                w.close()


def bot_process(port, pw, n, count, seconds):
    """The bot in a process of its own (one thread, asyncio), so that it does not starve the
    ordinary clients' threads of the interpreter; it stops by itself after seconds."""
    line = ("AUTH PLAIN " + b64(f"\0bot\0{pw}") + "\r\n").encode()

    async def run():
        tasks = [asyncio.ensure_future(bot_conn(port, line, count)) for _ in range(n)]
        await asyncio.sleep(seconds)
        for t in tasks:
            t.cancel()
    asyncio.run(run())


def ordinary_process(port, u, seconds, results):
    """One ordinary user in a process of its own (so that the clients' TLS handshakes do not
    queue behind each other on one interpreter): a fresh connection, STARTTLS and AUTH every
    200 ms for seconds; puts (latencies, refusals) on results."""
    lat, refused = [], []
    nxt = time.monotonic()
    end = nxt + seconds
    while time.monotonic() < end:
        nxt += 0.2
        t0 = time.monotonic()
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=IO_TIMEOUT)
            s.ehlo("pc.example")
            s.starttls(context=tls_context())
            s.ehlo("pc.example")
            code, resp = s.docmd("AUTH", "PLAIN " + b64(f"\0{u}\0{u}-password-1"))
            dt = time.monotonic() - t0
            s.quit()
        except (OSError, smtplib.SMTPException) as e:
            refused.append(repr(e))
            code, dt = None, None
        if code == 235:
            lat.append(dt)
        elif code is not None:
            refused.append(f"{code} {resp!r}")
        time.sleep(max(0.0, nxt - time.monotonic()))
    results.put((lat, refused))


def suspend(d):
    """Sets account_state.suspended and waits for the daemon to refuse the bot (1 s read-back)."""
    import sqlite3
    now = int(time.time() * 1000)
    db = sqlite3.connect(os.path.join(d.conf["data_dir"], "moat.db"), timeout=10)
    db.execute("INSERT INTO account_state (user, suspended, reason, updated)"
               " VALUES ('bot', ?, 'bench', ?) ON CONFLICT(user) DO UPDATE"
               " SET suspended = excluded.suspended", (now, now))
    db.commit()
    db.close()
    # An old binary still answers 235 (MAIL is refused later): wait for either the AUTH
    # refusal or the MAIL refusal, at most 5 s.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        s = smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=IO_TIMEOUT)
        s.ehlo("bot.example")
        code = s.docmd("AUTH", "PLAIN " + b64("\0bot\0bot-password-1"))[0]
        refused = code == 535 or (code == 235 and s.mail("bot@example.com")[0] == 550)
        s.close()
        if refused:
            return
        time.sleep(0.3)
    sys.exit("the suspension was not read back")


def run_scenario(binary, work, scenario, idx):
    d = Daemon(binary, work, f"moatd{idx}-{scenario}")
    d.add_user("bot", "bot-password-1")
    users = [f"user{i}" for i in range(USERS)]
    for u in users:
        d.add_user(u, f"{u}-password-1")
    d.start()
    try:
        if scenario == "a":
            suspend(d)
        bot_pw = "wrong-password" if scenario == "c" else "bot-password-1"
        lat, refused = [], []
        count = multiprocessing.Value("q", 0)

        botp = multiprocessing.Process(target=bot_process,
                                       args=(d.smtp_port, bot_pw, BOTS, count, DURATION + 3))
        botp.start()
        time.sleep(1.0)  # the bot is up to speed
        checks0, how = d.checks()
        cpu0 = d.cpu_ms()
        bot0 = count.value
        results = multiprocessing.Queue()
        workers = [multiprocessing.Process(target=ordinary_process,
                                           args=(d.smtp_port, u, DURATION, results))
                   for u in users]
        for w in workers:
            w.start()
        for _ in workers:
            got_lat, got_refused = results.get(timeout=DURATION + 2 * IO_TIMEOUT)
            lat.extend(got_lat)
            refused.extend(got_refused)
        bot_done = count.value - bot0
        for w in workers:
            w.join(timeout=IO_TIMEOUT)
        cpu = d.cpu_ms() - cpu0
        checks1, _ = d.checks()
        botp.join(timeout=IO_TIMEOUT + 5)
        if botp.is_alive():
            botp.terminate()
            botp.join()
    finally:
        d.stop()
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
    exchanges = bot_done + len(lat) + len(refused)
    return {"logins": len(lat), "refused": len(refused), "p50": pct(0.50), "p95": pct(0.95),
            "p99": pct(0.99), "bot": bot_done, "checks": checks1 - checks0, "how": how,
            "cpu_ms": cpu, "cpu_per_auth": cpu / exchanges if exchanges else float("nan"),
            "why": refused[:3]}


def main():
    binaries = sys.argv[1:]
    if not binaries:
        sys.exit("usage: auth_flood.py MOATD [MOATD...]")
    work = tempfile.mkdtemp(prefix="moat-authflood-")
    names = {"a": "suspended bot, right password", "b": "bot, right password",
             "c": "bot, wrong password"}
    try:
        print(f"DURATION={DURATION}s BOTS={BOTS} USERS={USERS} (each every 200 ms), nproc="
              f"{os.cpu_count()}")
        print("| binary | scenario | ordinary logins | refused | p50 ms | p95 ms | p99 ms |"
              " bot AUTHs | Argon2 checks | moatd CPU ms | CPU ms/AUTH |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for sc in ("a", "b", "c"):
            for i, b in enumerate(binaries):
                r = run_scenario(b, work, sc, i)
                print(f"| {b} | {sc}) {names[sc]} | {r['logins']} | {r['refused']} |"
                      f" {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | {r['bot']} |"
                      f" {r['checks']} ({r['how']}) | {r['cpu_ms']:.0f} |"
                      f" {r['cpu_per_auth']:.2f} |", flush=True)
                if r["why"]:
                    print(f"  refused: {r['why']}", flush=True)
    finally:
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
