"""Cost of the whole front-door policy per connection (see bench/README.md).

Run through bench/policy.sh.  Starts rbldnsd with 5 DNSBL zones on loopback and moatd three
times: no policy (baseline), 10,000 list entries + 5 DNSBL sites with the DNS cache on, and the
same with the cache off (dns_cache_entries = 0: every connection asks all 5 zones).  For each,
COUNT sequential connections from 127.0.0.9 (listed nowhere, so every check runs to the end):
connect, read the banner, QUIT, read 221.  Prints per-connection latency and its excess over
the baseline.  Everything is bounded by time-outs and cleaned up.
"""

import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

MOATD = sys.argv[1]
COUNT = int(os.environ.get("COUNT", "2000"))
ENTRIES = 10000
ZONES = ["bl1.bench", "bl2.bench", "bl3.bench", "bl4.bench", "bl5.bench"]
CLIENT = "127.0.0.9"


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_rbldnsd(work):
    d = tempfile.mkdtemp(prefix="moat-rbl-")
    os.chmod(d, 0o755)
    specs = []
    for z in ZONES:
        f = os.path.join(d, z)
        with open(f, "w") as fh:
            fh.write(f"$SOA 60 {z}. admin.{z}. 1 600 600 600 60\n:127.0.0.2:listed\n")
            for i in range(1000):                     # 1000 listed addresses per zone
                fh.write(f"10.{i // 250}.{i % 250}.1\n")
        os.chmod(f, 0o644)
        specs.append(f"{z}:ip4set:{z}")
    port = free_port(socket.SOCK_DGRAM)
    p = subprocess.Popen(["/usr/sbin/rbldnsd", "-n", "-u", "nobody", "-w", d, "-b",
                          f"127.0.0.1/{port}", "-t", "300"] + specs,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    if p.poll() is not None:
        sys.exit("rbldnsd did not start")
    return p, port, d


def start_moatd(work, name, conf):
    wd = os.path.join(work, name)
    os.makedirs(wd)
    conf = dict({"data_dir": os.path.join(wd, "data"), "hostname": "bench.test",
                 "log": os.path.join(wd, "moatd.log"), "log_level": "warn",
                 "smtp_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0",
                 "max_sessions": "1000", "max_sessions_per_client": "1000"}, **conf)
    cpath = os.path.join(wd, "moatd.conf")
    with open(cpath, "w") as fh:
        fh.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
    return cpath, conf


def run_moatd(cpath, conf):
    err = open(conf["log"] + ".stderr", "w")
    p = subprocess.Popen([MOATD, "-c", cpath], stdout=err, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            text = open(conf["log"]).read()
        except FileNotFoundError:
            text = ""
        m = re.search(r" ready smtp=127\.0\.0\.1:(\d+)", text)
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            sys.exit(f"moatd exited: {open(conf['log'] + '.stderr').read()[-2000:]}")
        time.sleep(0.05)
    p.kill()
    sys.exit("moatd not ready")


def load_policy(cpath, conf, dns_port):
    # Create the database (migrations) through the CLI, then bulk-insert.
    subprocess.run([MOATD, "policy", "-c", cpath, "set", "reverse_lookup", "no"], check=True,
                   timeout=30)
    db = sqlite3.connect(os.path.join(conf["data_dir"], "moat.db"))
    now = int(time.time() * 1000)
    rows = []
    for i in range(ENTRIES // 4):
        rows.append(("conn_deny", f"172.{16 + i // 256 % 16}.{i % 256}.0/24"))
        rows.append(("conn_deny", f"2001:db8:{i:x}::/48"))
        rows.append(("sender_deny", f"spam{i}@junk{i % 97}.example"))
        rows.append(("rcpt_deny", f"r{i}.deny.example"))
    db.executemany("INSERT OR IGNORE INTO policy_entry (list, value, comment, created)"
                   " VALUES (?, ?, 'bench', ?)", [(l, v, now) for l, v in rows])
    for z in ZONES:
        db.execute("INSERT INTO dnsbl_site (zone, created) VALUES (?, ?)", (z, now))
    db.commit()
    n = db.execute("SELECT count(*) FROM policy_entry").fetchone()[0]
    db.close()
    return n


def measure(port):
    lat = []
    for _ in range(COUNT):
        t0 = time.perf_counter()
        s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                     source_address=(CLIENT, 0))
        f = s.makefile("rb")
        line = f.readline()
        if not line.startswith(b"220"):
            sys.exit(f"unexpected banner {line!r}")
        s.sendall(b"QUIT\r\n")
        f.readline()
        f.close()
        s.close()
        lat.append((time.perf_counter() - t0) * 1e6)
    return lat


def summary(name, lat, base=None):
    lat = sorted(lat)
    mean = statistics.fmean(lat)
    p50 = lat[len(lat) // 2]
    p99 = lat[int(len(lat) * 0.99)]
    extra = f"{mean - base:+8.0f}" if base is not None else "       -"
    print(f"{name:34s} {len(lat):6d} {mean:8.0f} {p50:8.0f} {p99:8.0f} {extra}")
    return mean


def main():
    work = tempfile.mkdtemp(prefix="moat-bench-policy-")
    rbl, dns_port, rbl_dir = start_rbldnsd(work)
    procs = [rbl]
    try:
        scenarios = [
            ("baseline: empty policy", {}, False),
            ("10k entries + 5 DNSBL, cached", {"dns_cache_entries": "100000"}, True),
            ("10k entries + 5 DNSBL, uncached", {"dns_cache_entries": "0"}, True),
        ]
        print(f"{'scenario':34s} {'conns':>6s} {'mean_us':>8s} {'p50_us':>8s} {'p99_us':>8s}"
              f" {'+policy':>8s}")
        base = None
        for name, extra, loaded in scenarios:
            conf = {"dns_servers": f"127.0.0.1:{dns_port}", "dns_timeout": "1s",
                    "dns_tries": "1"}
            conf.update(extra)
            cpath, conf = start_moatd(work, f"s{len(procs)}", conf)
            if loaded:
                n = load_policy(cpath, conf, dns_port)
                assert n >= ENTRIES, n
            else:
                subprocess.run([MOATD, "policy", "-c", cpath, "set", "reverse_lookup", "no"],
                               check=True, timeout=30)
            p, port = run_moatd(cpath, conf)
            procs.append(p)
            measure(port)  # warm-up (and, cached, fills the cache)
            m = summary(name, measure(port), base)
            if base is None:
                base = m
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=20)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)
        shutil.rmtree(rbl_dir, ignore_errors=True)
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)


main()
