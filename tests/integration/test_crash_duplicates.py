"""Duplicates after kill -9, counted.

A bounded load (N messages from several smtplib threads) goes through moatd to a real
aiosmtpd downstream that records every message it accepts; moatd is killed with SIGKILL
and restarted on the same data directory several times while the load runs.  Then:

- lost == 0: every message moatd acknowledged with 250 arrives downstream at least once;
- duplicates stay within what the crash guarantee allows: a message is delivered twice
  only when a kill falls between the downstream's 250 and the commit of its outcome, so
  per kill at most the deliveries in flight at that instant (the per-destination
  connection limit) can be repeated.

The figure (duplicates per kill) is printed for the record.
"""

import os
import random
import smtplib
import threading
import time
import uuid

from peers_delivery import Downstream, delivery_conf, wait_for

N = int(os.environ.get("DUP_N", "1000"))
SENDERS = int(os.environ.get("DUP_SENDERS", "12"))
KILLS = 8
IN_FLIGHT = int(os.environ.get("DUP_IN_FLIGHT", "8"))  # delivery_concurrency_per_destination


def make_message(mid, i):
    return (f"From: <alice@example.net>\r\nTo: <r{i}@example.org>\r\nSubject: m{i}\r\n"
            f"Message-ID: {mid}\r\n\r\nmessage {i}\r\n").encode()


def test_kill9_cycles_lose_nothing_and_bound_duplicates(moatd_factory):
    ds = Downstream().start()
    ds.data_delay = 0.002  # a little time between DATA and 250, as a real server takes
    conf = delivery_conf(ds.addr, delivery_concurrency_per_destination=str(IN_FLIGHT),
                         max_sessions_per_client="100")
    cur = {"d": moatd_factory(**conf)}
    data_dir = cur["d"].data_dir
    lock = threading.Lock()
    acked = set()          # Message-IDs moatd answered 250 to
    next_i = [0]
    deadline = time.monotonic() + 45

    def sender():
        while time.monotonic() < deadline:
            with lock:
                if next_i[0] >= N:
                    return
                i = next_i[0]
                next_i[0] += 1
            while time.monotonic() < deadline:
                # A fresh Message-ID per attempt: an attempt cut off by the kill may have
                # been queued anyway, and is not a duplicate made by moatd.
                mid = f"<{uuid.uuid4().hex}@example.net>"
                try:
                    port = cur["d"].smtp_port
                    with smtplib.SMTP("127.0.0.1", port, timeout=5) as c:
                        c.sendmail("alice@example.net", [f"r{i}@example.org"],
                                   make_message(mid, i))
                    with lock:
                        acked.add(mid)
                    break
                except (OSError, smtplib.SMTPException):
                    time.sleep(0.05)  # moatd is down or restarting: try again

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    try:
        rng = random.Random(1234)
        for k in range(KILLS):
            # Kill at an instant unrelated to any delivery step, while mail is both
            # arriving and being delivered (the downstream has made progress since the
            # last restart).
            seen = len(ds.messages)
            assert wait_for(lambda: len(ds.messages) >= min(seen + 20, N), timeout=20), \
                f"downstream stalled at {len(ds.messages)} before kill {k + 1}"
            time.sleep(rng.uniform(0.05, 0.25))
            cur["d"].kill9()
            cur["d"] = moatd_factory(data_dir=data_dir, **conf)
        for t in threads:
            t.join(timeout=max(1.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in threads), "senders did not finish in time"
        assert len(acked) == N, f"only {len(acked)} of {N} messages acknowledged"
        d = cur["d"]
        assert wait_for(lambda: acked <= set(ds.message_ids()), timeout=30), \
            f"lost: {len(acked - set(ds.message_ids()))} acknowledged messages never arrived"
        assert wait_for(lambda: d.query("SELECT count(*) FROM queue_message") == [(0,)]
                        and d.queue_files() == [], timeout=15)
        counts = ds.message_ids()
        dups = sum(n - 1 for mid, n in counts.items() if mid in acked)
        print(f"kills={KILLS} messages={N} duplicates={dups} per_kill={dups / KILLS:.2f}")
        assert dups <= KILLS * IN_FLIGHT, \
            f"{dups} duplicates after {KILLS} kills, want <= {KILLS * IN_FLIGHT}"
    finally:
        ds.stop()
