"""Peers and helpers for the front-door policy tests.

Rbldnsd(zones) runs Debian's rbldnsd on 127.0.0.1 with a free UDP port, one ip4set zone per
entry: zones={"bl.test": [("127.0.0.2", "127.0.0.2"), ...]} lists an address with the A
record it answers.  Names outside the zones are REFUSED (moatd sees a temporary failure).

Reverse-DNS and HELO tests use peers_dns.Dnsmasq (host records, PTR-only records, A-only).

policy(d, *args) runs `moatd policy --data-dir <d's data dir> ...` and returns the result.
raw_from(d, src) is a RawSMTP whose socket is bound to source address src (any of 127/8).
set_rules(d, rules) replaces the server rule set and waits until moatd runs it.

Every process has a bounded start and is stopped at teardown.
"""

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import RawSMTP, IO_TIMEOUT, MOATD_BIN
from peers_dns import free_udp_port, stop_process, wait_answering

RBLDNSD = "/usr/sbin/rbldnsd"


class Rbldnsd:
    def __init__(self, workdir, zones, zones6=None):
        # rbldnsd refuses to run as root and drops to nobody: its files live in a
        # world-readable directory of their own (workdir is kept for the caller's logs).
        self.dir = Path(tempfile.mkdtemp(prefix="moat-rbl-"))
        os.chmod(self.dir, 0o755)
        self.port = free_udp_port()
        self.zones = zones
        self.zones6 = zones6 or {}   # {"bl6.test": [("::1/128", "127.0.0.2")]}: ip6trie
        self.proc = None

    @property
    def servers(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        specs = []
        for zone, entries in self.zones.items():
            f = self.dir / f"{zone}.ip4set"
            lines = [":127.0.0.2:Listed in " + zone]
            for ip, code in entries:
                lines.append(f"{ip} :{code}:Listed {ip} in {zone}")
            f.write_text("\n".join(lines) + "\n")
            os.chmod(f, 0o644)
            specs.append(f"{zone}:ip4set:{f.name}")
        for zone, entries in self.zones6.items():
            f = self.dir / f"{zone}.ip6trie"
            lines = [":127.0.0.2:Listed in " + zone]
            for net, code in entries:
                lines.append(f"{net} :{code}:Listed in {zone}")
            f.write_text("\n".join(lines) + "\n")
            os.chmod(f, 0o644)
            specs.append(f"{zone}:ip6trie:{f.name}")
        self.proc = subprocess.Popen(
            [RBLDNSD, "-n", "-u", "nobody", "-w", str(self.dir), "-b", f"127.0.0.1/{self.port}",
             "-t", "60"] + specs,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_answering(self.proc, self.port, "2.0.0.127." + next(iter(self.zones)), "rbldnsd")
        return self

    def stop(self):
        stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def policy(d, *args, check=True):
    """Runs `moatd policy` on d's data directory; asserts exit 0 unless check=False."""
    proc = subprocess.run([MOATD_BIN, "policy", "--data-dir", str(d.data_dir)] +
                          [str(a) for a in args],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=15, text=True)
    if check:
        assert proc.returncode == 0, f"moatd policy {args}: rc={proc.returncode} {proc.stderr}"
    return proc


def raw_from(d, src, banner=False, timeout=IO_TIMEOUT):
    """A RawSMTP connected from source address src; banner=True reads and checks the 220."""
    c = RawSMTP.__new__(RawSMTP)
    c.sock = socket.create_connection(("127.0.0.1", d.smtp_port), timeout=timeout,
                                      source_address=(src, 0))
    c.timeout = timeout
    c.buf = b""
    c.eof = False
    if banner:
        c.expect(220)
    return c


def applied(d, timeout=15.0):
    """Waits until moatd has swapped in the policy generation now in the database: from
    then on every new connection sees the change."""
    want = d.query("SELECT generation FROM policy_meta")[0][0]

    def loaded():
        gens = [int(g) for g in re.findall(r"policy loaded generation=(\d+)", d.log_text())]
        return bool(gens) and max(gens) >= want
    assert wait_applied(loaded, timeout=timeout), f"policy generation {want} not loaded"


def wait_applied(pred, timeout=5.0, interval=0.1):
    """Polls pred() until true: a policy change reaches new connections within ~0.5 s."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def set_rules(d, rules):
    """Replaces the server rule set (rule objects in order, written straight into the rule
    table as the API would) and waits until moatd runs it; the new rule ids in order."""
    con = sqlite3.connect(str(d.db_path), timeout=10)
    try:
        con.execute("DELETE FROM rule")
        now = int(time.time() * 1000)
        for i, r in enumerate(rules):
            r = dict({"enabled": True, "except": None, "comment": ""}, **r)
            con.execute("INSERT INTO rule (position, name, enabled, definition, created_at,"
                        " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (i, r["name"], 1 if r["enabled"] else 0, json.dumps(r), now, now))
        con.commit()
    finally:
        con.close()
    applied(d)
    return [row[0] for row in d.query("SELECT id FROM rule ORDER BY position")]
