"""The SMTP client's time-outs (RFC 5321 section 4.5.3.2, each a config key) against
downstream servers that stall at one step, and the plaintext fallback of opportunistic TLS
when the handshake fails.  A stalled step defers the recipient (451 4.4.2 ... time-out);
nothing is lost and the file stays queued."""

import socket
import ssl
import threading

import pytest

from peers_delivery import Downstream, delivery_conf, rcpt_states, send, wait_for
from test_delivery_tls import make_cert

TIMEOUTS = dict(delivery_connect_timeout="1s", delivery_command_timeout="1s",
                delivery_data_timeout="1s", delivery_block_timeout="1s",
                delivery_dot_timeout="1s", retry_min="1h", retry_max="1h")


class StallingServer:
    """A raw SMTP server on loopback that answers normally up to `stall_at` (one of
    "banner", "ehlo", "mail", "rcpt", "data", "dot") and then says nothing, holding the
    connection open until stopped.  Counts connections."""

    def __init__(self, stall_at):
        self.stall_at = stall_at
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
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
            self.connections += 1
            self.conns.append(c)
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, c):
        c.settimeout(10)
        f = c.makefile("rb")
        try:
            if self.stall_at == "banner":
                return self.stop_ev.wait(20)
            c.sendall(b"220 stall.test ESMTP\r\n")
            for line in f:
                verb = line[:4].upper()
                step = {b"EHLO": "ehlo", b"HELO": "ehlo", b"MAIL": "mail", b"RCPT": "rcpt",
                        b"DATA": "data", b"QUIT": "quit"}.get(verb, "other")
                if step == self.stall_at:
                    return self.stop_ev.wait(20)
                if step == "ehlo":
                    c.sendall(b"250-stall.test\r\n250 8BITMIME\r\n")
                elif step == "data":
                    c.sendall(b"354 go ahead\r\n")
                    for body in f:
                        if body == b".\r\n":
                            break
                    if self.stall_at == "dot":
                        return self.stop_ev.wait(20)
                    c.sendall(b"250 2.0.0 ok\r\n")
                elif step == "quit":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.stop_ev.set()
        self.thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("stall_at", ["banner", "ehlo", "mail", "rcpt", "data", "dot"])
def test_stalled_step_defers(moatd_factory, stall_at):
    srv = StallingServer(stall_at)
    try:
        d = moatd_factory(**delivery_conf(srv.addr, **TIMEOUTS))
        qid = send(d, "alice@example.net", ["bob@example.org"])
        assert wait_for(lambda: rcpt_states(d, qid) == {"bob@example.org": "deferred"},
                        timeout=15), rcpt_states(d, qid)
        err = d.query("SELECT last_error FROM queue_rcpt WHERE qid = ?", (qid,))[0][0]
        assert err.startswith("451 4.4.2") and "time-out" in err, err
        assert d.queue_files() == [qid]
        # The daemon is not stuck behind the stalled connection.
        assert send(d, "alice@example.net", ["carol@example.org"])
    finally:
        srv.stop()


def test_opportunistic_tls_handshake_failure_falls_back_to_plaintext(moatd_factory, tmp_path):
    key, crt = make_cert(tmp_path, "old")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    ctx.maximum_version = ssl.TLSVersion.TLSv1  # below what moatd speaks: the handshake fails
    ds = Downstream(tls_context=ctx).start()
    try:
        d = moatd_factory(**delivery_conf(ds.addr, downstream_tls="opportunistic"))
        send(d, "alice@example.net", ["bob@example.org"])
        ds.wait_for(1)
        assert ds.messages[0]["tls"] is False
        assert f"TLS FALLBACK host=127.0.0.1: retrying without TLS" in d.log_text()
        # verify never falls back: the same server defers the mail.
        v = moatd_factory(**delivery_conf(ds.addr, downstream_tls="verify",
                                          delivery_ca_file=str(crt), retry_min="1h"))
        qid = send(v, "alice@example.net", ["carol@example.org"])
        assert wait_for(lambda: rcpt_states(v, qid) == {"carol@example.org": "deferred"}), \
            rcpt_states(v, qid)
        assert len(ds.messages) == 1
    finally:
        ds.stop()
