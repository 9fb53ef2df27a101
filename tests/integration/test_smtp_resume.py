"""A command that waits for a policy verdict (DNS, a tarpit) resumes where it waited: its
checks and counters run once. The session's disconnect line counts RCPT commands as
rcpt=<accepted>/<seen> (docs/smtp.md), so a RCPT counted again after its wait shows there."""

import re

import pytest

from conftest import local_domains_seed, message, wait_for
from peers_dns import Dnsmasq
from submission_util import SUBMISSION_CONF, add_user, smtp_tls

PW = "alice-password-1"


@pytest.fixture
def dns():
    d = Dnsmasq(mx=[("good.test", "mx.good.test", 10)],
                hosts=[("mx.good.test", "127.0.0.2")],
                null_mx=["nullmx.test"]).start()
    yield d
    d.stop()


def disconnect_counts(d, client_addr="127.0.0.1"):
    """(accepted, seen) from the first disconnect line of the client, once it is logged."""
    pat = re.compile(r"disconnect client=\S*\[" + re.escape(client_addr) + r"\] rcpt=(\d+)/(\d+)")

    def found():
        m = pat.search(d.log_text())
        return (int(m.group(1)), int(m.group(2))) if m else None
    return wait_for(found, timeout=5)


def test_rcpt_waiting_for_dns_counts_once(moatd_factory, dns):
    d = moatd_factory(**dict(SUBMISSION_CONF, recipient_domain_check="yes",
                             dns_servers=dns.servers, dns_timeout="2s", dns_tries="1",
                             account_suspend_score="0",
                             seed_policy=local_domains_seed("example.com")))
    add_user(d, "alice", ["alice@example.com"], PW)
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    assert s.mail("alice@example.com")[0] == 250
    assert s.rcpt("x@good.test")[0] == 250        # waited for the MX answer
    code, resp = s.rcpt("x@nullmx.test")           # waited, then refused
    assert code == 550 and resp.startswith(b"5.1.2"), resp
    assert s.rcpt("y@example.com")[0] == 250      # ours: no lookup, no wait
    assert s.data(message())[0] == 250
    s.quit()
    assert disconnect_counts(d) == (2, 3), d.log_text()[-2000:]
    # the refused one is logged once, by the check that refused it
    rows = d.log_rows("check_name = 'rcpt_domain'", want=1)
    assert [r["code"] for r in rows] == ["550 5.1.2"]


def test_rcpt_waiting_for_tarpit_counts_once(moatd_factory):
    seed = [("add", "local_domain", "example.org"), ("user", "add", "real", "real@example.org"),
            ("set", "harvest_threshold", "2"), ("set", "harvest_tarpit", "300")]
    d = moatd_factory(seed_policy=seed)
    s = d.smtp()
    s.ehlo("client.example")
    assert s.mail("x@spam.example")[0] == 250
    for i in range(2):
        assert s.rcpt(f"user{i}@example.org")[0] == 550
    code, resp = s.rcpt("real@example.org")      # past the threshold: tarpit, then 450
    assert code == 450 and resp.startswith(b"4.7.1"), resp
    assert s.rcpt("real@example.org")[0] == 450
    s.quit()
    assert disconnect_counts(d) == (0, 4), d.log_text()[-2000:]
    assert len(d.log_rows("check_name = 'harvest'", want=2)) == 2
