"""Durable before 250: kill -9 under load, restart, and account for every message."""

import threading
import time

from conftest import RawSMTP, message, qid_of, strip_received, stuff

N_MESSAGES = 40
N_CONNECTIONS = 4
KILL_AFTER_ACKS = 15


class Ledger:
    """What the clients know: acknowledged messages and those whose reply was lost."""

    def __init__(self, n):
        self.lock = threading.Lock()
        self.todo = list(range(n))
        self.acked = {}       # qid -> (body, rcpts)
        self.in_flight = {}   # i -> (body, rcpts): final '.' sent, no reply read
        self.errors = []
        self.killing = threading.Event()


def client(port, ledger):
    try:
        with RawSMTP(port) as c:
            c.expect(220)
            c.ehlo()
            while True:
                with ledger.lock:
                    if not ledger.todo:
                        return
                    i = ledger.todo.pop(0)
                rcpts = [f"crash{i}-{k}@example.org" for k in range(1 + i % 3)]
                body = message(f"crash {i}", [f"message {i}"] + ["x" * 76] * (i * 7 % 200))
                c.expect_cmd("MAIL FROM:<s@example.net>", 250)
                for r in rcpts:
                    c.expect_cmd(f"RCPT TO:<{r}>", 250)
                c.expect_cmd("DATA", 354)
                wire = stuff(body)
                c.send(wire[:-3])
                with ledger.lock:
                    ledger.in_flight[i] = (body, rcpts)
                c.send(wire[-3:])
                qid = qid_of(c.readreply())
                with ledger.lock:
                    del ledger.in_flight[i]
                    ledger.acked[qid] = (body, rcpts)
    except (AssertionError, OSError) as e:
        if not ledger.killing.is_set():
            ledger.errors.append(repr(e))


def check_consistent(d, acked, in_flight):
    """Every acknowledged message is complete; nothing else exists unless it was in flight."""
    assert d.incoming_files() == [], f"spool/incoming not empty after restart: {d.incoming_files()}"
    db_qids = {r[0] for r in d.query("SELECT qid FROM queue_message")}
    files = set(d.queue_files())
    assert files == db_qids, f"files without rows {files - db_qids}, rows without files {db_qids - files}"
    rcpt_qids = {r[0] for r in d.query("SELECT qid FROM queue_rcpt")}
    assert rcpt_qids == db_qids
    missing = set(acked) - db_qids
    assert not missing, f"acknowledged messages lost: {sorted(missing)}"
    in_flight_bodies = {body: rcpts for body, rcpts in in_flight.values()}
    extra = db_qids - set(acked)
    assert len(extra) <= len(in_flight), f"unacknowledged messages queued: {sorted(extra)}"
    for qid in db_qids:
        content = strip_received(d.spool_message(qid))
        if qid in acked:
            body, rcpts = acked[qid]
            assert content == body, f"{qid}: spool content differs"
        else:
            assert content in in_flight_bodies, f"{qid}: queued but never sent as a whole"
            rcpts = in_flight_bodies[content]
        rows = d.query("SELECT rcpt, state FROM queue_rcpt WHERE qid = ? ORDER BY rcpt", (qid,))
        assert rows == sorted((r, "queued") for r in rcpts), f"{qid}: {rows}"


def test_kill9_under_load(moatd_factory):
    d = moatd_factory()
    ledger = Ledger(N_MESSAGES)
    threads = [threading.Thread(target=client, args=(d.smtp_port, ledger), daemon=True)
               for _ in range(N_CONNECTIONS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with ledger.lock:
            if len(ledger.acked) >= KILL_AFTER_ACKS or ledger.errors:
                break
        time.sleep(0.002)
    ledger.killing.set()
    d.kill9()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads), "client thread hung"
    assert not ledger.errors, ledger.errors
    assert len(ledger.acked) >= KILL_AFTER_ACKS
    acked = dict(ledger.acked)
    in_flight = dict(ledger.in_flight)

    d2 = moatd_factory(data_dir=d.data_dir)
    check_consistent(d2, acked, in_flight)
    # The restarted daemon accepts new mail and new queue ids do not collide.
    body = message("after crash")
    with d2.raw() as c:
        c.ehlo()
        qid = qid_of(c.transaction("s@example.net", ["r@example.org"], body))
    assert qid not in acked
    assert strip_received(d2.spool_message(qid)) == body


def test_kill9_during_data(moatd_factory):
    d = moatd_factory()
    done = message("complete")
    with d.raw() as c:
        c.ehlo()
        qid = qid_of(c.transaction("s@example.net", ["r@example.org"], done))
        c.expect_cmd("MAIL FROM:<s@example.net>", 250)
        c.expect_cmd("RCPT TO:<r@example.org>", 250)
        c.expect_cmd("DATA", 354)
        c.send(b"Subject: partial\r\n\r\n" + (b"p" * 76 + b"\r\n") * 2000)
        time.sleep(0.5)
        d.kill9()
    d2 = moatd_factory(data_dir=d.data_dir)
    check_consistent(d2, {qid: (done, ["r@example.org"])}, {})
    assert d2.queue_files() == [qid]
