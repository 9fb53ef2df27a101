"""The SMTP client against downstream servers that break the protocol.

A raw socket server on loopback answers normally except at one step, where it sends a
reply that is malformed or that answers nothing moatd has sent: a stray line after 354
(the classic case: "354 go" + "250 stray" at once, then 451 to the real dot), garbage, a
1 MB line, a NUL, a multi-line reply cut off by a close, bare LF, a code changing inside a
multi-line reply, a 421 in the middle of a transaction, a reply before the banner's
answer was asked for, an extra reply among pipelined ones.  Every case must end with the
recipient deferred (4xx, the message still in the queue and its spool file present) and
never delivered; the violations are logged as PROTOCOL VIOLATION.
"""

import socket
import threading

import pytest

from peers_delivery import delivery_conf, rcpt_states, send, wait_for

CONF = dict(delivery_connect_timeout="2s", delivery_command_timeout="2s",
            delivery_data_timeout="2s", delivery_block_timeout="2s",
            delivery_dot_timeout="2s", retry_min="1h", retry_max="1h")

BANNER = b"220 raw.test ESMTP\r\n"


class RawDownstream:
    """A raw SMTP server: `script` maps a step ("banner", "ehlo", "mail", "rcpt", "data",
    "dot") to the bytes sent instead of the normal reply; steps in `close_after` close the
    connection after their reply.  `pipelining` offers PIPELINING.  `delivered` counts
    the messages it accepted with a real 250 to the final dot."""

    def __init__(self, script, close_after=(), pipelining=False):
        self.script = script
        self.close_after = set(close_after)
        self.pipelining = pipelining
        self.delivered = 0
        self.dots = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop_ev = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def _serve(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.conns.append(c)
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _reply(self, c, step, default):
        c.sendall(self.script.get(step, default))
        return step in self.close_after

    def _session(self, c):
        try:
            c.settimeout(10)
            f = c.makefile("rb")
            if self._reply(c, "banner", BANNER):
                return
            for line in f:
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    caps = b"250-raw.test\r\n" + (b"250-PIPELINING\r\n" if self.pipelining
                                                  else b"") + b"250 8BITMIME\r\n"
                    if self._reply(c, "ehlo", caps):
                        return
                elif verb == b"MAIL":
                    if self._reply(c, "mail", b"250 2.1.0 ok\r\n"):
                        return
                elif verb == b"RCPT":
                    if self._reply(c, "rcpt", b"250 2.1.5 ok\r\n"):
                        return
                elif verb == b"DATA":
                    data = self.script.get("data", b"354 go ahead\r\n")
                    if self._reply(c, "data", b"354 go ahead\r\n"):
                        return
                    if not data.startswith(b"354"):
                        continue
                    got_dot = False
                    for body in f:
                        if body == b".\r\n":
                            got_dot = True
                            break
                    if not got_dot:
                        return  # the client gave up inside the body
                    self.dots += 1
                    if "dot" not in self.script:
                        self.delivered += 1
                    if self._reply(c, "dot", b"250 2.0.0 ok\r\n"):
                        return
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def stop(self):
        self.stop_ev.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.sock.close()


def deferred_not_delivered(d, ds, qid, rcpt="bob@example.org"):
    """The recipient ends deferred with a 4xx reason, the message and its file stay."""
    assert wait_for(lambda: rcpt_states(d, qid) == {rcpt: "deferred"}, timeout=15), \
        f"state {rcpt_states(d, qid)}, want deferred\n{d.log_text()[-3000:]}"
    attempts, err = d.query("SELECT attempts, last_error FROM queue_rcpt WHERE qid = ?",
                            (qid,))[0]
    assert attempts >= 1 and err.startswith("4"), (attempts, err)
    assert d.queue_files() == [qid], "the spool file must stay until delivered"
    assert d.query("SELECT count(*) FROM queue_message WHERE qid = ?", (qid,)) == [(1,)]
    assert f"{qid} delivery sent" not in d.log_text()
    assert ds.delivered == 0
    return err


CASES = {
    # 354 and a stray 250 in one segment: the 250 answers no dot (none was sent yet).
    "stray_after_354": dict(script={"data": b"354 go\r\n250 stray\r\n",
                                    "dot": b"451 4.3.0 try later\r\n"}),
    "stray_after_354_pipelining": dict(script={"data": b"354 go\r\n250 stray\r\n",
                                               "dot": b"451 4.3.0 try later\r\n"},
                                       pipelining=True),
    # MAIL, RCPT, DATA outstanding: one reply too many pushes a 250 onto DATA.
    "extra_reply_pipelining": dict(script={"mail": b"250 ok\r\n250 extra\r\n"},
                                   pipelining=True),
    # Without pipelining one command is outstanding: a second reply answers nothing.
    "extra_reply_one_by_one": dict(script={"mail": b"250 ok\r\n250 extra\r\n"}),
    "reply_after_banner": dict(script={"banner": BANNER + b"250 stray\r\n"}),
    "garbage": dict(script={"mail": b"hello there, this is no reply\r\n"}),
    "megabyte_line": dict(script={"rcpt": b"250 " + b"x" * (1 << 20) + b"\r\n"}),
    "nul": dict(script={"dot": b"250 2.0.0 ok\x00 really\r\n"}),
    "multiline_cut_by_close": dict(script={"dot": b"250-2.0.0 first line\r\n"},
                                   close_after={"dot"}),
    "bare_lf": dict(script={"dot": b"250 2.0.0 ok\n"}, close_after={"dot"}),
    "bare_lf_inside": dict(script={"dot": b"250 2.0.0 ok\n250 more\r\n"}),
    "code_changes_in_multiline": dict(script={"dot": b"250-2.0.0 queued\r\n550 5.0.0 no\r\n"}),
    "dot_answered_354": dict(script={"dot": b"354 more?\r\n"}),
    "data_answered_250": dict(script={"data": b"250 2.0.0 fine\r\n"}, pipelining=True),
    "421_mid_transaction": dict(script={"rcpt": b"421 4.3.2 shutting down\r\n"},
                                close_after={"rcpt"}),
    "421_mid_transaction_pipelining": dict(script={"rcpt": b"421 4.3.2 shutting down\r\n"},
                                           close_after={"rcpt"}, pipelining=True),
    "421_to_dot": dict(script={"dot": b"421 4.3.2 shutting down\r\n"}, close_after={"dot"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_reply_defers(moatd_factory, case):
    ds = RawDownstream(**CASES[case])
    try:
        d = moatd_factory(**delivery_conf(ds.addr, **CONF))
        qid = send(d, "alice@example.net", ["bob@example.org"])
        err = deferred_not_delivered(d, ds, qid)
        if case.startswith("421"):
            assert "421 4.3.2 shutting down" in err, err
        else:
            assert "PROTOCOL VIOLATION" in d.log_text(), d.log_text()[-3000:]
            assert err.startswith("451 4.5.0") and "protocol violation" in err, err
    finally:
        ds.stop()


def test_stray_line_then_real_delivery(moatd_factory):
    """After a violation the message is retried on a fresh connection and delivered once."""
    ds = RawDownstream(script={"data": b"354 go\r\n250 stray\r\n",
                               "dot": b"451 4.3.0 try later\r\n"})
    try:
        d = moatd_factory(**delivery_conf(ds.addr, **dict(CONF, retry_min="1s",
                                                           retry_max="1s")))
        qid = send(d, "alice@example.net", ["bob@example.org"])
        deferred_not_delivered(d, ds, qid)
        err = d.query("SELECT last_error FROM queue_rcpt WHERE qid = ?", (qid,))[0][0]
        assert "451 4.5.0" in err and "protocol violation" in err, err
        ds.script = {}  # the server mends its ways
        assert wait_for(lambda: ds.delivered == 1, timeout=15), ds.delivered
        assert wait_for(lambda: rcpt_states(d, qid) == {} and d.queue_files() == [],
                        timeout=10), rcpt_states(d, qid)
        assert ds.delivered == 1
    finally:
        ds.stop()
