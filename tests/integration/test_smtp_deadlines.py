"""Deadlines against slow clients: a command line must be complete within idle_timeout of
the moment it is awaited, and DATA within data_timeout unless it keeps up data_min_rate,
however the bytes trickle in; under stress (sessions above stress_sessions percent of
max_sessions) the shorter stress time-outs apply.  Each test is bounded in time."""

import time

from conftest import message, qid_of, stuff, wait_for

MARGIN = 2.0  # seconds a cut-off may come after its deadline on a loaded machine


def trickle_until_reply(c, data, every=2.0, give_up=14.0):
    """Sends data one byte every `every` seconds until a reply arrives; returns
    (reply, seconds from the start) or (None, seconds) when none came within give_up."""
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < give_up:
        if i < len(data):
            c.send(data[i:i + 1])
            i += 1
        if c.pending(timeout=every):
            return c.readreply(timeout=5), time.monotonic() - t0
    return None, time.monotonic() - t0


def test_trickled_command_line_is_cut_at_its_deadline(moatd_factory):
    d = moatd_factory(idle_timeout="3s")
    with d.raw() as c:
        c.ehlo()
        reply, elapsed = trickle_until_reply(c, b"MAIL FROM:<slow@example.net>\r\n")
        assert reply is not None, \
            f"a client sending one byte every 2 s still connected after {elapsed:.1f}s"
        assert reply.code == 421 and reply.first.startswith("421 4.4.2"), reply
        assert "timeout" in reply.first
        assert 2.5 <= elapsed <= 3 + MARGIN, f"cut after {elapsed:.2f}s, deadline 3s"
        c.expect_closed()
    assert wait_for(lambda: "COMMAND TIMEOUT from [127.0.0.1]" in d.log_text(), timeout=3)


def test_trickled_data_is_cut_at_its_deadline(moatd_factory):
    d = moatd_factory(data_timeout="3s")
    with d.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<slow@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        # Complete short lines, one byte every 2 s: progress by lines would never end.
        reply, elapsed = trickle_until_reply(c, b"a\r\n" * 20)
        assert reply is not None, \
            f"a DATA trickle of one byte every 2 s still connected after {elapsed:.1f}s"
        assert reply.first.startswith("421 4.4.2"), reply
        assert 2.5 <= elapsed <= 3 + MARGIN, f"cut after {elapsed:.2f}s, deadline 3s"
        c.expect_closed()
    assert wait_for(lambda: "DATA TIMEOUT from [127.0.0.1]" in d.log_text(), timeout=3)
    rows = d.log_rows("result = 'aborted'")
    assert len(rows) == 1, rows
    wait_for(lambda: d.incoming_files() == [], timeout=3)
    d.assert_nothing_queued()


def test_steady_data_outlives_data_timeout(moatd_factory):
    """Progress at more than data_min_rate moves the DATA deadline: a message that takes
    twice data_timeout to arrive at a steady 20 kB/s is accepted."""
    d = moatd_factory(data_timeout="1500ms", data_min_rate="2k")
    body = message("steady", body_lines=[b"y" * 98] * 600)  # about 60 kB
    wire = stuff(body)
    with d.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        t0 = time.monotonic()
        head, tail = wire[:-3], wire[-3:]   # the final ".\r\n" last
        for i in range(0, len(head), 2000):
            c.send(head[i:i + 2000])
            assert not c.pending(timeout=0.1), f"reply before the end: {c.readreply()}"
        assert time.monotonic() - t0 > 3.0
        c.send(tail)
        qid_of(c.readreply())


def test_pipelined_commands_each_get_a_deadline(moatd_factory):
    d = moatd_factory(idle_timeout="2s")
    with d.raw() as c:
        c.ehlo()
        for _ in range(3):
            time.sleep(1.2)   # each wait is within one deadline, together well past it
            c.expect_cmd("NOOP", "250 2.0.0")


def test_stress_shortens_deadlines(moatd_factory):
    d = moatd_factory(max_sessions="4", stress_sessions="50", idle_timeout="30s",
                      stress_idle_timeout="1s", max_sessions_per_client="10")
    first = d.raw()
    second = d.raw()
    assert "STRESS on" not in d.log_text()
    first.ehlo()
    # The third session crosses 50 % of 4: stress mode; its command deadline is 1 s.
    t0 = time.monotonic()
    third = d.raw()
    assert wait_for(lambda: "STRESS on sessions=3 max_sessions=4" in d.log_text(), timeout=3), \
        d.log_text()[-2000:]
    r = third.readreply(timeout=1 + MARGIN + 1)
    elapsed = time.monotonic() - t0
    assert r.first.startswith("421 4.4.2"), r
    assert elapsed <= 1 + MARGIN, f"cut after {elapsed:.2f}s under stress, want about 1s"
    third.expect_closed()
    assert wait_for(lambda: "COMMAND TIMEOUT from [127.0.0.1] timeout=1000ms stress=yes"
                    in d.log_text(), timeout=3)
    # Back under the threshold: normal deadlines again for commands awaited from now on.
    assert wait_for(lambda: "stress off sessions=2" in d.log_text(), timeout=3)
    first.expect_cmd("NOOP", "250 2.0.0")
    time.sleep(1.5)
    first.expect_cmd("NOOP", "250 2.0.0")
    first.close()
    second.close()
