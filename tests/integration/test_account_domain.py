"""Recipient-domain check for authenticated relay (docs/submission.md), with dnsmasq as
the resolver: MX, else A/AAAA; a null MX (RFC 7505) or NXDOMAIN is 550 5.1.2 at RCPT; a DNS
time-out defers with 451 4.4.3. Mail to dead domains never reaches the queue."""

import pytest

from conftest import local_domains_seed, message
from peers_dns import Dnsmasq
from submission_util import SUBMISSION_CONF, add_user, smtp_tls

PW = "alice-password-1"


@pytest.fixture
def dns():
    d = Dnsmasq(mx=[("good.test", "mx.good.test", 10)],
                hosts=[("mx.good.test", "127.0.0.2"), ("aonly.test", "127.0.0.3")],
                null_mx=["nullmx.test"]).start()
    yield d
    d.stop()


def start(moatd_factory, dns_servers, **extra):
    conf = dict(SUBMISSION_CONF, recipient_domain_check="yes", dns_servers=dns_servers,
                dns_timeout="500ms", dns_tries="1", account_suspend_score="0",
                seed_policy=local_domains_seed("example.com"))
    conf.update(extra)
    d = moatd_factory(**conf)
    add_user(d, "alice", ["alice@example.com"], PW)
    return d


def test_live_and_dead_domains(moatd_factory, dns):
    d = start(moatd_factory, dns.servers)
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    assert s.mail("alice@example.com")[0] == 250
    assert s.rcpt("x@good.test")[0] == 250         # MX
    assert s.rcpt("x@aonly.test")[0] == 250        # no MX, an A record
    assert s.rcpt("y@example.com")[0] == 250       # our own domain: not looked up
    for dead in ("x@nullmx.test", "x@missing.test", "x@no.such.domain.test"):
        code, resp = s.rcpt(dead)
        assert code == 550 and resp.startswith(b"5.1.2"), (dead, resp)
    code, resp = s.data(message())
    assert code == 250
    s.quit()
    rcpts = sorted(r for (r,) in d.query("SELECT rcpt FROM queue_rcpt"))
    assert rcpts == ["x@aonly.test", "x@good.test", "y@example.com"]
    refused = d.log_rows("result = 'refused' AND check_name = 'rcpt_domain'", want=3)
    assert [r["code"] for r in refused] == ["550 5.1.2"] * 3


def test_dns_timeout_defers(moatd_factory):
    d = start(moatd_factory, "127.0.0.1:9")  # nothing answers there
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    assert s.mail("alice@example.com")[0] == 250
    code, resp = s.rcpt("x@good.test")
    assert code == 451 and resp.startswith(b"4.4.3"), resp
    s.quit()
    assert not d.query("SELECT 1 FROM queue_rcpt")


def test_unauthenticated_not_checked(moatd_factory, dns):
    d = start(moatd_factory, dns.servers)
    s = d.smtp()
    s.ehlo("client.example")
    s.mail("someone@example.net")
    assert s.rcpt("x@example.com")[0] == 250
    s.quit()


def test_disconnect_while_dns_pending(moatd_factory):
    d = start(moatd_factory, "127.0.0.1:9", dns_timeout="2s")
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    s.mail("alice@example.com")
    s.putcmd("RCPT", "TO:<x@good.test>")
    s.close()
    import time
    time.sleep(2.5)  # the answer arrives for a session that is gone
    s = smtp_tls(d.smtp_port)
    assert s.noop()[0] == 250
    s.quit()
