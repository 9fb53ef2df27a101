"""Dead recipient domains are refused at RCPT, not queued (docs/submission.md "Recipient
domain check"), against a real dnsmasq on loopback and a real aiosmtpd downstream.

Live: MX -> host with an A record; no MX but an AAAA; no MX but an A; two MX hosts of
which the first is dangling.  Dead (550 5.1.2): NXDOMAIN, null MX, a name with only a TXT
record, an MX host that does not exist (dangling MX), an MX host with only a TXT record.
Temporary (451 4.4.3, never 550): the domain, or its only live-looking MX host, under a
zone forwarded to a server that never answers.
"""

import json
import socket
import threading
import time

import pytest

from conftest import local_domains_seed, message, wait_for
from peers_delivery import Downstream, free_port
from peers_dns import Dnsmasq
from submission_util import SUBMISSION_CONF, add_user, smtp_tls

PW = "alice-password-1"

LIVE = ["a@live.test", "b@v6only.test", "c@aonly.test", "d@mixed.test"]
DEAD = {  # recipient -> why (the message log's entry)
    "e@nothere.test": "nxdomain",
    "f@nullmx.test": "null_mx",
    "g@txtonly.test": "no_records",
    "h@dangle.test": "mx_no_address",
    "i@txtmx.test": "mx_no_address",
}
SLOW = ["j@dom.slow.test", "k@mxslow.test", "l@dangslow.test"]


class SilentServer:
    """A UDP "DNS server" that reads queries and never answers; names() says what it saw."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data = self.sock.recv(512)
            except OSError:
                continue
            labels, i = [], 12
            while i < len(data) and data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace"))
                i += 1 + data[i]
            self.seen.append(".".join(labels).lower())

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def world():
    port = free_port("127.0.0.2")
    ds = Downstream(host="127.0.0.2", port=port).start()
    silent = SilentServer()
    dns = Dnsmasq(
        mx=[("live.test", "mx.live.test", 10),
            ("dangle.test", "gone.dangle.test", 10),
            ("txtmx.test", "txthost.test", 10),
            ("mixed.test", "gone.mixed.test", 10), ("mixed.test", "mx.live.test", 20),
            ("mxslow.test", "mx.slow.test", 10),
            ("dangslow.test", "gone.dangslow.test", 10), ("dangslow.test", "mx.slow.test", 20)]
        + [(f"d{i}.test", "mx.live.test", 10) for i in range(100)],
        hosts=[("mx.live.test", "127.0.0.2"), ("aonly.test", "127.0.0.2"),
               ("v6only.test", "::1")],
        null_mx=["nullmx.test"])
    dns.args += ["--txt-record=txtonly.test,v=spf1 -all", "--txt-record=txthost.test,hello",
                 f"--server=/slow.test/127.0.0.1#{silent.port}"]
    dns.start()
    yield ds, dns, silent
    dns.stop()
    silent.stop()
    ds.stop()


def start(moatd_factory, dns, ds=None, **extra):
    conf = dict(SUBMISSION_CONF, recipient_domain_check="yes", dns_servers=dns.servers,
                dns_timeout="500ms", dns_tries="1", account_suspend_score="0",
                seed_policy=local_domains_seed("example.com"))
    if ds is not None:
        conf.update(delivery="yes", mx_port=str(ds.port), downstream="", retry_min="1s",
                    retry_max="2s", queue_poll="200ms", downstream_tls="off",
                    delivery_tls="off")
    conf.update(extra)
    d = moatd_factory(**conf)
    add_user(d, "alice", ["alice@example.com"], PW)
    return d


def test_live_dead_and_temporary_verdicts(moatd_factory, world):
    ds, dns, silent = world
    d = start(moatd_factory, dns)
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    assert s.mail("alice@example.com")[0] == 250
    for rcpt in LIVE:
        code, resp = s.rcpt(rcpt)
        assert code == 250, (rcpt, code, resp)
    for rcpt in DEAD:
        code, resp = s.rcpt(rcpt)
        assert code == 550 and resp.startswith(b"5.1.2"), (rcpt, code, resp)
        assert b"does not accept mail" in resp, resp
    for rcpt in SLOW:
        code, resp = s.rcpt(rcpt)
        assert code == 451 and resp.startswith(b"4.4.3"), (rcpt, code, resp)
    # A second recipient at a domain that timed out is deferred from the session's memory,
    # without asking (and waiting for) the silent server again.
    asked = len(silent.seen)
    code, resp = s.rcpt("other@mxslow.test")
    assert code == 451 and resp.startswith(b"4.4.3"), (code, resp)
    assert len(silent.seen) == asked
    # A second recipient at a dead domain shares the session's verdict.
    assert s.rcpt("other@dangle.test")[0] == 550
    code, resp = s.data(message())
    assert code == 250, resp
    s.quit()

    # Nothing dead or deferred in the queue: exactly the live recipients.
    rcpts = sorted(r for (r,) in d.query("SELECT rcpt FROM queue_rcpt"))
    assert rcpts == sorted(LIVE)
    refused = d.log_rows("result = 'refused' AND check_name = 'rcpt_domain'", want=6)
    got = {json_rcpt(r): r["entry"] for r in refused}
    assert got == dict(DEAD, **{"other@dangle.test": "mx_no_address"})
    assert all(r["code"] == "550 5.1.2" for r in refused)
    deferred = d.log_rows("result = 'deferred' AND check_name = 'rcpt_domain'", want=4)
    assert sorted(json_rcpt(r) for r in deferred) == sorted(SLOW + ["other@mxslow.test"])
    assert all(r["code"] == "451 4.4.3" for r in deferred)
    # The silent server was asked for the MX host of mxslow.test: the time-out is real.
    assert "mx.slow.test" in silent.seen
    assert "dead domain domain=dangle.test why=mx_no_address mx_hosts=1" in d.log_text()


def json_rcpt(row):
    rcpts = json.loads(row["recipients"])
    assert len(rcpts) == 1, row
    return rcpts[0]


def test_mixed_transaction_delivers_live_only(moatd_factory, world):
    ds, dns, silent = world
    d = start(moatd_factory, dns, ds)
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    assert s.mail("alice@example.com")[0] == 250
    live = ["a@live.test", "c@aonly.test", "d@mixed.test"]
    order = ["h@dangle.test", "a@live.test", "e@nothere.test", "c@aonly.test",
             "i@txtmx.test", "d@mixed.test", "f@nullmx.test", "g@txtonly.test"]
    for rcpt in order:
        code, resp = s.rcpt(rcpt)
        assert code == (250 if rcpt in live else 550), (rcpt, code, resp)
        # Never a dead recipient in the queue, at any moment.
        assert not d.query("SELECT rcpt FROM queue_rcpt WHERE rcpt IN (%s)"
                           % ",".join("?" * len(DEAD)), tuple(DEAD))
    code, resp = s.data(message(subject="mixed"))
    assert code == 250, resp
    s.quit()
    ds.wait_for(3)
    assert sorted(ds.rcpts()) == sorted(live)
    accepted = d.log_rows("result = 'accepted'", want=1)
    assert sorted(json.loads(accepted[0]["recipients"])) == sorted(live)
    assert wait_for(lambda: d.query("SELECT count(*) FROM queue_rcpt") == [(0,)])


def test_disconnect_while_mx_host_lookup_pending(moatd_factory, world):
    ds, dns, silent = world
    d = start(moatd_factory, dns, dns_timeout="1s")
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    s.mail("alice@example.com")
    s.putcmd("RCPT", "TO:<x@mxslow.test>")
    # The session waits on the address of mx.slow.test; the client goes away.
    assert wait_for(lambda: "mx.slow.test" in silent.seen, timeout=5)
    s.close()
    assert wait_for(lambda: "disconnect" in d.log_text(), timeout=5)
    # A second session asks the same and waits past the first one's time-out.
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    s.mail("alice@example.com")
    code, resp = s.rcpt("y@mxslow.test")
    assert code == 451 and resp.startswith(b"4.4.3"), resp
    assert s.rcpt("a@live.test")[0] == 250
    s.quit()
    assert d.alive()


def test_hundred_domains_in_one_transaction(moatd_factory, world):
    ds, dns, silent = world
    d = start(moatd_factory, dns, max_recipients="1000", limit_account_recipients="0,0,0",
              limit_client_recipients="0,0,0")
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    assert s.mail("alice@example.com")[0] == 250
    t0 = time.monotonic()
    for i in range(100):
        code, resp = s.rcpt(f"user{i}@d{i}.test")
        assert code == 250, (i, code, resp)
    cold = time.monotonic() - t0
    assert s.rset()[0] == 250
    assert s.mail("alice@example.com")[0] == 250
    t0 = time.monotonic()
    for i in range(100):
        assert s.rcpt(f"other{i}@d{i}.test")[0] == 250
    warm = time.monotonic() - t0
    assert s.rcpt("z@nothere.test")[0] == 550   # the check did run
    s.quit()
    print(f"100 RCPTs at 100 distinct live domains: {cold:.3f} s with an empty cache, "
          f"{warm:.3f} s with the resolver cache")
    assert cold < 3.0, cold
    assert warm < 3.0, warm
