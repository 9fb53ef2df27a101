"""Malformed input and limits: each gets its exact reply, and nothing refused is ever queued."""

import socket
import struct
import time

import pytest

from conftest import RawSMTP, check_reply, message, qid_of, strip_received, stuff, wait_for


def begin_data(c, sender="s@example.net", rcpt="r@example.org"):
    c.ehlo()
    c.expect_cmd(f"MAIL FROM:<{sender}>", "250 2.1.0")
    c.expect_cmd(f"RCPT TO:<{rcpt}>", "250 2.1.5")
    c.expect_cmd("DATA", 354)


def assert_session_usable(d, c):
    """A full transaction still works on this connection; returns its qid."""
    body = message("still usable")
    qid = qid_of(c.transaction("s@example.net", ["r@example.org"], body))
    assert strip_received(d.spool_message(qid)) == body
    return qid


def assert_only_queued(d, qids):
    assert d.incoming_files() == [], f"left in spool/incoming: {d.incoming_files()}"
    assert sorted(d.queue_files()) == sorted(qids)
    assert sorted(r[0] for r in d.query("SELECT qid FROM queue_message")) == sorted(qids)
    assert sorted({r[0] for r in d.query("SELECT qid FROM queue_rcpt")}) == sorted(qids)


def assert_no_accepted_log(d):
    assert d.query("SELECT count(*) FROM message_log WHERE result = 'accepted'") == [(0,)]


# --- command lines ------------------------------------------------------------------------

def test_command_line_limit_boundary(moatd):
    with moatd.raw() as c:
        c.ehlo()
        c.expect_cmd(b"NOOP " + b"x" * 505, "250 2.0.0")      # 512 octets with CRLF
        c.expect_cmd(b"NOOP " + b"x" * 506, "500 5.5.2")      # 513
        c.expect_cmd("NOOP", "250 2.0.0")
        c.expect_cmd(b"MAIL FROM:<" + b"a" * 600 + b"@example.net>", "500 5.5.2")
        qid = assert_session_usable(moatd, c)
    assert_only_queued(moatd, [qid])


def test_command_line_limit_configurable(moatd_factory):
    d = moatd_factory(max_command_line=600)
    with d.raw() as c:
        c.ehlo()
        c.expect_cmd(b"NOOP " + b"x" * 593, "250 2.0.0")      # 600 octets with CRLF
        c.expect_cmd(b"NOOP " + b"x" * 594, "500 5.5.2")


def test_huge_command_line_answered_at_end_of_line(moatd):
    with moatd.raw() as c:
        c.ehlo()
        c.send(b"NOOP " + b"y" * 200_000)
        assert not c.pending(0.5), "replied before the overlong line ended"
        c.send(b"\r\n")
        c.expect("500 5.5.2")
        c.expect_cmd("NOOP", "250 2.0.0")
        qid = assert_session_usable(moatd, c)
    assert_only_queued(moatd, [qid])


@pytest.mark.parametrize("line", [b"NOOP a\x00b", b"\x00", b"MAIL FROM:<a\x00@example.net>",
                                  b"EHLO x\x00y"])
def test_nul_in_command(moatd, line):
    with moatd.raw() as c:
        c.expect_cmd("EHLO client.example", 250)
        c.expect_cmd(line, "500 5.5.2")
    assert moatd.queue_files() == []


# --- inside DATA --------------------------------------------------------------------------

def test_text_line_at_limit_accepted(moatd):
    body = b"Subject: long\r\n\r\n" + b"a" * 998 + b"\r\n"      # 1000 octets with CRLF
    with moatd.raw() as c:
        c.ehlo()
        qid = qid_of(c.transaction("s@example.net", ["r@example.org"], body))
    assert strip_received(moatd.spool_message(qid)) == body


@pytest.mark.parametrize("length", [999, 1001, 100_000])
def test_text_line_too_long(moatd, length):
    body = b"Subject: long\r\n\r\nshort\r\n" + b"a" * length + b"\r\nafter\r\n"
    with moatd.raw() as c:
        begin_data(c)
        c.send(stuff(body)[:-3])
        assert not c.pending(0.3), "replied before the end of data"
        c.send(b".\r\n")
        c.expect("554 5.6.0")
        assert_only_queued(moatd, [])
        rows = moatd.log_rows("code = '554 5.6.0'")
        assert [r["result"] for r in rows] == ["refused"]
        qid = assert_session_usable(moatd, c)
    assert_only_queued(moatd, [qid])


def test_text_line_limit_configurable(moatd_factory):
    d = moatd_factory(max_text_line=2000)
    ok = b"Subject: x\r\n\r\n" + b"b" * 1998 + b"\r\n"           # 2000 octets with CRLF
    with d.raw() as c:
        c.ehlo()
        qid = qid_of(c.transaction("s@example.net", ["r@example.org"], ok))
        begin_data(c)
        c.send(stuff(b"Subject: x\r\n\r\n" + b"b" * 1999 + b"\r\n"))
        c.expect("554 5.6.0")
    assert_only_queued(d, [qid])
    assert strip_received(d.spool_message(qid)) == ok


@pytest.mark.parametrize("where", ["header", "body"])
def test_nul_in_data(moatd, where):
    if where == "header":
        body = b"Subject: a\x00b\r\n\r\nhello\r\n"
    else:
        body = b"Subject: nul\r\n\r\nhel\x00lo\r\n"
    with moatd.raw() as c:
        begin_data(c)
        c.send(stuff(body))
        c.expect("554 5.6.0")
        assert_only_queued(moatd, [])
        assert [r["result"] for r in moatd.log_rows("code = '554 5.6.0'")] == ["refused"]
        qid = assert_session_usable(moatd, c)
    assert_only_queued(moatd, [qid])


def test_message_too_large(moatd_factory):
    d = moatd_factory(max_message_size="10k")
    small = message("small", ["x" * 70] * 50)                       # ~3.7 KB
    big = message("big", ["y" * 70] * 300)                          # ~21 KB
    with d.raw() as c:
        c.ehlo()
        qid = qid_of(c.transaction("s@example.net", ["r@example.org"], small))
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        try:
            c.send(stuff(big))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and stop reading early; the reply is what counts
        c.expect("552 5.3.4")
    assert_only_queued(d, [qid])
    rows = d.log_rows("code = '552 5.3.4'")
    assert [r["result"] for r in rows] == ["refused"]


def test_size_param_over_limit(moatd_factory):
    d = moatd_factory(max_message_size="10k")
    with d.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net> SIZE=10241", "552 5.3.4")
        c.expect_cmd("MAIL FROM:<s@example.net> SIZE=10240", "250 2.1.0")
    assert_only_queued(d, [])


@pytest.mark.parametrize("payload", [
    b"Subject: lf\r\n\r\nhello\nworld\r\n",
    b"Subject: cr\r\n\r\nhello\rworld\r\n",
    b"Subject: lf\nX: y\r\n\r\nhello\r\n",
    b"Subject: cr then text\r\n\r\nhello\r\rworld\r\n",
])
def test_bare_lf_or_cr_closes(moatd, payload):
    with moatd.raw() as c:
        begin_data(c)
        c.send(payload)   # no end-of-data: the refusal must be immediate
        c.expect("554 5.5.2", timeout=5)
        c.expect_closed()
    assert_only_queued(moatd, [])
    assert_no_accepted_log(moatd)
    rows = moatd.log_rows("code = '554 5.5.2'")
    assert rows and all(r["result"] in ("refused", "aborted") for r in rows), rows


@pytest.mark.parametrize("sep", [b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r\n.\r", b"\r.\r\n"])
def test_smuggling(moatd, sep):
    smuggled = (b"MAIL FROM:<evil@example.net>\r\n"
                b"RCPT TO:<victim@example.org>\r\n"
                b"DATA\r\n"
                b"From: ceo@example.org\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
                b"QUIT\r\n")
    with moatd.raw() as c:
        begin_data(c)
        c.send(b"Subject: outer\r\n\r\nhello" + sep + smuggled)
        c.expect("554 5.5.2", timeout=5)
        c.expect_closed()
    time.sleep(0.3)
    assert_only_queued(moatd, [])
    assert_no_accepted_log(moatd)


# --- connection-level limits --------------------------------------------------------------

def test_bytes_before_banner(moatd_factory):
    d = moatd_factory(greet_pause="500ms")
    c = RawSMTP(d.smtp_port)
    with c:
        c.send(b"EHLO eager.example\r\n")
        c.expect("554 5.5.1", timeout=5)
        c.expect_closed()
    rows = d.log_rows("result = 'refused'")
    assert len(rows) == 1, rows
    assert rows[0]["code"] == "554 5.5.1"
    assert "127.0.0.1" in rows[0]["client_addr"]


def test_greet_pause_patient_client(moatd_factory):
    d = moatd_factory(greet_pause="500ms")
    t0 = time.monotonic()
    with d.raw(banner=False) as c:
        c.expect(220, timeout=5)
        assert time.monotonic() - t0 >= 0.45
        c.ehlo()
        qid_of(c.transaction("s@example.net", ["r@example.org"], message("patient")))
    assert d.query("SELECT count(*) FROM message_log WHERE result = 'refused'") == [(0,)]


def test_idle_timeout(moatd_factory):
    d = moatd_factory(idle_timeout="1s")
    with d.raw() as c:
        t0 = time.monotonic()
        c.expect("421 4.4.2", timeout=5)
        assert time.monotonic() - t0 >= 0.8
        c.expect_closed()
    with d.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", 250)
        c.expect("421 4.4.2", timeout=5)
        c.expect_closed()
    assert_only_queued(d, [])


def test_idle_timer_restarts_on_each_command(moatd_factory):
    d = moatd_factory(idle_timeout="1s")
    with d.raw() as c:
        for _ in range(4):
            time.sleep(0.6)
            c.expect_cmd("NOOP", "250 2.0.0")


def test_data_timeout(moatd_factory):
    d = moatd_factory(data_timeout="1s")
    with d.raw() as c:
        begin_data(c)
        c.send(b"Subject: slow\r\n\r\nfirst part\r\n")
        c.expect(421, timeout=5)
        c.expect_closed()
    wait_for(lambda: d.incoming_files() == [], timeout=3)
    assert_only_queued(d, [])
    rows = d.log_rows("result = 'aborted'")
    assert len(rows) == 1, rows


def test_disconnect_inside_data(moatd):
    with moatd.raw() as c:
        begin_data(c)
        c.send(b"Subject: gone\r\n\r\n" + b"z" * 50_000 + b"\r\n")
    rows = moatd.log_rows("result = 'aborted'")
    assert len(rows) == 1, rows
    wait_for(lambda: moatd.incoming_files() == [], timeout=3)
    assert_only_queued(moatd, [])


def read_until_421(c, max_errors, bad=b"FROBNICATE"):
    """Sends bad commands until the 421; returns the number of 5xx replies before it."""
    errors = 0
    for _ in range(max_errors + 1):
        if not c.pending(0.3):
            c.send(bad + b"\r\n")
        r = c.readreply()
        if r.code == 421:
            check_reply(r, "421 4.7.0")
            return errors
        assert r.code == 500, r
        errors += 1
    raise AssertionError(f"no 421 after {errors} errors")


def test_max_errors(moatd_factory):
    d = moatd_factory(max_errors=3)
    with d.raw() as c:
        c.ehlo()
        errors = read_until_421(c, 3)
        assert errors == 3, f"got 421 after {errors} error replies, want after 3"
        c.expect_closed()


def open_sessions(d, n):
    conns = []
    for _ in range(n):
        conns.append(d.raw())
    return conns


@pytest.mark.parametrize("limit", ["max_sessions", "max_sessions_per_client"])
def test_session_limits(moatd_factory, limit):
    conf = {"max_sessions": 10, "max_sessions_per_client": 10}
    conf[limit] = 2
    d = moatd_factory(**conf)
    conns = open_sessions(d, 2)
    try:
        with RawSMTP(d.smtp_port) as extra:
            extra.expect("421 4.7.0", timeout=5)
            extra.expect_closed()
        # The admitted sessions still work.
        for c in conns:
            c.expect_cmd("NOOP", "250 2.0.0")
        rows = d.log_rows("code LIKE '421%'")
        assert len(rows) == 1 and rows[0]["result"] in ("refused", "deferred"), rows
        # Closing one frees its slot.
        conns[0].expect_cmd("QUIT", 221)
        conns[0].close()

        def admitted():
            with RawSMTP(d.smtp_port) as c:
                return c.readreply().code == 220
        assert wait_for(admitted, timeout=3, interval=0.2), "slot not released after QUIT"
    finally:
        for c in conns:
            c.close()


def test_many_recipients(moatd_factory):
    # The 452s are refusals (max_refusals_unauth), not protocol errors (max_errors).
    d = moatd_factory(max_recipients=100, max_refusals_unauth=1000)
    with d.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", 250)
        c.send(b"".join(f"RCPT TO:<u{i}@example.org>\r\n".encode() for i in range(1000)))
        for i in range(1000):
            c.expect("250 2.1.5" if i < 100 else "452 4.5.3")
        c.expect_cmd("DATA", 354)
        c.send(stuff(message("many")))
        qid = qid_of(c.readreply())
    assert d.query("SELECT count(*) FROM queue_rcpt WHERE qid = ?", (qid,)) == [(100,)]


def test_connection_reset_by_client_is_harmless(moatd):
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", moatd.smtp_port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\n")
        s.close()  # RST
    # The reset sessions free their slots (20 per client by default) once moatd sees the RSTs.
    def admitted():
        with RawSMTP(moatd.smtp_port) as c:
            return c.readreply().code == 220
    assert wait_for(admitted, timeout=3, interval=0.2), "reset sessions still hold their slots"
    with moatd.raw() as c:
        c.expect_cmd("EHLO after.example", 250)
    assert moatd.alive()


@pytest.mark.parametrize("value,seconds", [("2s", 2.0), ("1500ms", 1.5)])
def test_session_timeout(moatd_factory, value, seconds):
    d = moatd_factory(session_timeout=value, idle_timeout="1m")
    with d.raw() as c:
        c.ehlo()
        t0 = time.monotonic()
        while True:
            c.send(b"NOOP\r\n")
            r = c.readreply(timeout=5)
            if r.code != 250:
                break
            assert time.monotonic() - t0 < 5, "session_timeout not enforced"
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        assert r.code == 421, r
        assert seconds - 0.25 <= elapsed < seconds + 2, \
            f"{r} after {elapsed:.2f}s with session_timeout = {value}"
        c.expect_closed()


def test_idle_timeout_milliseconds(moatd_factory):
    d = moatd_factory(idle_timeout="1500ms")
    with d.raw() as c:
        t0 = time.monotonic()
        c.expect("421 4.4.2", timeout=5)
        elapsed = time.monotonic() - t0
        assert 1.25 <= elapsed < 3.5, f"421 after {elapsed:.2f}s with idle_timeout = 1500ms"
