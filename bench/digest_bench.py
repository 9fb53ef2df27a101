#!/usr/bin/env python3
"""Digest job benchmark: one round of the periodic digest job over USERS users, each with
ITEMS new quarantine items, timed by moatd itself.

It starts the moatd you name once on a throw-away data directory (to create and migrate the
database), stops it, fills users, addresses and quarantine rows by SQL, then starts it again
with digest_check = 1s and delivery off, and waits for the job's one line
`digest round users=N sent=N items=N ms=N`.  It checks that every digest is in the queue
(queue_message rows and spool/queue files) and prints the figures.  Everything is bounded
by TIMEOUT seconds; the directory is removed at the end unless KEEP=1.

    scripts/dev.sh build
    bench/digest_bench.py build/moatd            # USERS=10000 ITEMS=3 by default
"""

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

USERS = int(os.environ.get("USERS", "10000"))
ITEMS = int(os.environ.get("ITEMS", "3"))
TIMEOUT = float(os.environ.get("TIMEOUT", "300"))


def start(moatd, data, log, check):
    args = [moatd, "--data-dir", data, "--smtp-listen", "127.0.0.1:0", "--http-listen",
            "127.0.0.1:0", "-o", f"log={log}", "-o", "delivery=no", "-o",
            f"digest_check={check}", "-o", "hostname=bench.example"]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(log) and " main ready " in open(log).read():
            return p
        if p.poll() is not None:
            sys.exit(f"moatd exited with {p.returncode}; see {log}")
        time.sleep(0.05)
    p.kill()
    sys.exit("moatd did not become ready")


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)


def fill(db):
    now = int(time.time() * 1000)
    con = sqlite3.connect(db, timeout=30)
    con.execute("PRAGMA foreign_keys = ON")
    with con:
        con.executemany("INSERT INTO dir_user (id, name, created, digest_interval)"
                        " VALUES (?, ?, ?, 'hourly')",
                        [(1000 + i, f"user{i:05d}", now) for i in range(USERS)])
        con.executemany("INSERT INTO dir_address (address, user_id, kind)"
                        " VALUES (?, ?, 'primary')",
                        [(f"user{i:05d}@example.org", 1000 + i) for i in range(USERS)])
        rows = []
        for i in range(USERS):
            for k in range(ITEMS):
                rows.append((f"{i:011x}{k:05x}", f"user{i:05d}@example.org",
                             "spam" if k % 2 else "policy", f"rule {k + 1} bulk <offer>",
                             f"sender{k}@example.net", f"Offer {k} for user {i} & friends",
                             "192.0.2.1", 4000 + k, now - 60000 + k, now + 14 * 86400000))
        # Start-up reconciliation drops items without their message: write one each.
        qdir = os.path.join(os.path.dirname(db), "spool", "quarantine")
        os.makedirs(qdir, exist_ok=True)
        for r in rows:
            with open(os.path.join(qdir, r[0]), "wb") as f:
                f.write(b"From: <" + r[4].encode() + b">\r\nSubject: " + r[5].encode() +
                        b"\r\n\r\nbody\r\n")
        con.executemany("INSERT INTO quarantine (qid, rcpt, kind, reason, sender, subject,"
                        " client_addr, size, created_at, expires_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    moatd = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="moat-digest-bench-")
    data = os.path.join(work, "data")
    log = os.path.join(work, "moatd.log")
    try:
        p = start(moatd, data, log, "1h")
        stop(p)
        t0 = time.monotonic()
        fill(os.path.join(data, "moat.db"))
        print(f"filled {USERS} users, {USERS * ITEMS} items in {time.monotonic() - t0:.1f} s")
        os.remove(log)
        p = start(moatd, data, log, "1s")
        deadline = time.monotonic() + TIMEOUT
        m = None
        while time.monotonic() < deadline and m is None:
            m = re.search(r"digest round users=(\d+) sent=(\d+) items=(\d+) ms=(\d+)",
                          open(log).read())
            time.sleep(0.2)
        stop(p)
        if m is None:
            sys.exit(f"no digest round within {TIMEOUT} s; see {log}")
        users, sent, items, ms = (int(x) for x in m.groups())
        con = sqlite3.connect(os.path.join(data, "moat.db"))
        queued = con.execute("SELECT count(*) FROM queue_message").fetchone()[0]
        con.close()
        files = len(os.listdir(os.path.join(data, "spool", "queue")))
        size = sum(os.path.getsize(os.path.join(data, "spool", "queue", f))
                   for f in os.listdir(os.path.join(data, "spool", "queue")))
        print(f"round: users={users} sent={sent} items={items} ms={ms} "
              f"({sent / (ms / 1000):.0f} digests/s); queued={queued} files={files} "
              f"avg_size={size // max(files, 1)} B")
        if sent != USERS or queued != USERS or files != USERS:
            sys.exit("FAIL: not every user's digest was queued")
    finally:
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)


if __name__ == "__main__":
    main()
