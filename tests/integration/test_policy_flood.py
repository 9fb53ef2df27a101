"""A flood from one address must not starve trusted senders.

500 connections from 127.0.0.2 (held open when accepted) while 127.0.0.1, on conn_allow,
keeps delivering. With max_sessions = 100 and trusted_reserve = 20 the flooder gets at most
80 sessions, every other attempt gets 421 4.7.0 and a message-log row, and every trusted
message is queued.
"""

import socket
import threading
import time

from conftest import message, qid_of
from peers_policy import applied, policy, raw_from

FLOOD = 500
TRUSTED_MESSAGES = 20


def test_flood_does_not_starve_trusted_sender(moatd_factory):
    d = moatd_factory(max_sessions=100, max_sessions_per_client=1000)
    policy(d, "add", "conn_allow", "127.0.0.1", "trusted relay")
    policy(d, "set", "trusted_reserve", "20")
    policy(d, "set", "reverse_lookup", "no")
    applied(d)

    held = []
    counts = {"220": 0, "421": 0, "other": 0, "error": 0}
    done_flooding = threading.Event()
    stop = threading.Event()

    def flood():
        for _ in range(FLOOD):
            try:
                c = raw_from(d, "127.0.0.2", timeout=5)
                rep = c.readreply()
            except (OSError, AssertionError):
                counts["error"] += 1
                continue
            if rep.code == 220:
                counts["220"] += 1
                held.append(c)          # keep the slot busy
            elif rep.code == 421:
                counts["421"] += 1
                assert rep.first == "421 4.7.0 Too many connections, try again later", rep
                c.close()
            else:
                counts["other"] += 1
                c.close()
        done_flooding.set()
        stop.wait(30)

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    delivered = 0
    t0 = time.monotonic()
    # Deliver for as long as the flood lasts (and at least TRUSTED_MESSAGES times).
    while delivered < TRUSTED_MESSAGES or not done_flooding.is_set():
        assert time.monotonic() - t0 < 60, "flood did not finish"
        with raw_from(d, "127.0.0.1", banner=True) as c:
            c.ehlo()
            qid_of(c.transaction("s@example.org", ["r@example.org"],
                                 message(f"trusted {delivered}")))
            delivered += 1
    sent = delivered
    # Once the flood is over, the trusted sender still gets in with all 80 slots taken.
    with raw_from(d, "127.0.0.1", banner=True) as c:
        c.ehlo()
        qid_of(c.transaction("s@example.org", ["r@example.org"], message("after flood")))
        delivered += 1
    elapsed = time.monotonic() - t0
    stop.set()
    for c in held:
        c.close()
    t.join(10)

    print(f"flood: {counts}, trusted delivered {delivered}/{sent + 1} in {elapsed:.2f}s")
    assert delivered == sent + 1
    assert counts["error"] == 0 and counts["other"] == 0, counts
    assert 70 <= counts["220"] <= 80, counts
    assert counts["220"] + counts["421"] == FLOOD, counts
    refused = d.log_rows("check_name = 'session_reserve'", want=counts["421"], timeout=10)
    assert len(refused) == counts["421"]
    assert all(r["client_addr"] == "127.0.0.2" for r in refused)
    # Log rows are written by the spool writer after the reply, so wait for the last one.
    accepted = d.log_rows("result = 'accepted' AND client_addr = '127.0.0.1'",
                          want=delivered, timeout=10)
    assert len(accepted) == delivered
