"""A full spool file system is a transient fault: 452 4.3.1 (RFC 3463 "mail system full"),
at MAIL when a declared SIZE does not fit, at the end of DATA when the disk fills in the
middle of a message, and never a permanent 5xx.  Once space is freed mail flows again.

The spool lives on a small tmpfs mounted for the test (the tests run as root); the SQLite
database stays outside it.  Without permission to mount, the tests skip."""

import os
import subprocess

import pytest

from conftest import check_reply, message, qid_of, stuff, wait_for

TMPFS_SIZE = 2 * 1024 * 1024


@pytest.fixture
def spool_tmpfs(tmp_path):
    """A data directory whose spool/ is a 2 MB tmpfs; yields the data directory."""
    data = tmp_path / "data"
    spool = data / "spool"
    spool.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0750",
                        "tmpfs", str(spool)], capture_output=True, text=True, timeout=15)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(spool)], capture_output=True, timeout=15)


def fill(path, leave):
    """Fills path's file system with one file until about `leave` bytes are free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    with open(path / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))
        f.flush()
        os.fsync(f.fileno())
    return path / "filler"


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def start(moatd_factory, data, **conf):
    return moatd_factory(data_dir=data, **conf)


def test_declared_size_that_does_not_fit_is_452_at_mail(spool_tmpfs, moatd_factory):
    d = start(moatd_factory, spool_tmpfs)
    with d.raw() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@example.net> SIZE=5000000")
        check_reply(r, "452 4.3.1")
        assert "storage" in r.first.lower(), r
        # A size that fits is taken on the same connection.
        c.expect_cmd("MAIL FROM:<s@example.net> SIZE=10000", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        c.send(stuff(message("fits")))
        qid_of(c.readreply())
    row = d.log_rows("check_name = 'spool_full'")[0]
    assert row["code"] == "452 4.3.1" and row["result"] == "deferred", row
    assert "SPOOL FULL from [127.0.0.1]" in d.log_text()


def test_reserve_applies_without_a_declared_size(spool_tmpfs, moatd_factory):
    d = start(moatd_factory, spool_tmpfs, spool_min_free="4M")
    with d.raw() as c:
        c.ehlo()
        check_reply(c.cmd("MAIL FROM:<s@example.net>"), "452 4.3.1")


def test_disk_full_mid_message_is_452_then_recovers(spool_tmpfs, moatd_factory):
    d = start(moatd_factory, spool_tmpfs)
    spool = spool_tmpfs / "spool"
    filler = fill(spool, 300 * 1024)
    body = message("too big for the disk", body_lines=[b"z" * 998] * 1000)  # about 1 MB
    with d.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        c.send(stuff(body))
        r = c.readreply(timeout=15)
        check_reply(r, "452 4.3.1")
        # The whole message was read: the session is still in step for the next command.
        c.expect_cmd("NOOP", "250 2.0.0")
        # While the disk is full, MAIL is deferred at once.
        assert wait_for(lambda: c.cmd("MAIL FROM:<s@example.net> SIZE=500000").code == 452,
                        timeout=3)
    assert "SPOOL FULL from [127.0.0.1]" in d.log_text()
    assert d.log_rows("check_name = 'spool_full' AND code = '452 4.3.1'")
    assert d.query("SELECT count(*) FROM message_log WHERE code LIKE '5%'") == [(0,)]
    wait_for(lambda: d.incoming_files() == [], timeout=3)
    d.assert_nothing_queued()

    # Space comes back: the next message goes through (the free figure is refreshed
    # every second off the event loop).
    filler.unlink()
    assert free_bytes(spool) > TMPFS_SIZE // 2

    def try_send():
        with d.raw() as c:
            c.ehlo()
            if c.cmd("MAIL FROM:<s@example.net> SIZE=1100000").code != 250:
                return None
            c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
            c.expect_cmd("DATA", 354)
            c.send(stuff(body))
            return qid_of(c.readreply(timeout=15))
    qid = wait_for(try_send, timeout=5, interval=0.3)
    assert qid, "no message accepted after space was freed"
    assert d.spool_message(qid).endswith(body)
