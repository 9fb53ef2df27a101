"""Protocol errors and policy refusals are counted apart (docs/smtp.md "Protocol errors
and policy refusals"): unknown commands and bad syntax close the session at max_errors;
refused recipients (dead domains, relay denied, rate limits) count toward max_refusals
(max_refusals_unauth before AUTH), so a mailing with stale addresses is not cut off.
Real dnsmasq for the dead domains, real aiosmtpd downstream for the live ones."""

import json

import pytest

from conftest import local_domains_seed, message, wait_for
from peers_delivery import Downstream, free_port
from peers_dns import Dnsmasq
from submission_util import SUBMISSION_CONF, add_user, smtp_tls

PW = "alice-password-1"
NOLIMIT = {"limit_account_messages": "0,0,0,0", "limit_account_recipients": "0,0,0,0",
           "limit_client_messages": "0,0,0", "limit_client_recipients": "0,0,0"}


@pytest.fixture
def world():
    port = free_port("127.0.0.2")
    ds = Downstream(host="127.0.0.2", port=port).start()
    dns = Dnsmasq(mx=[("live.test", "mx.live.test", 10), ("big.test", "mx.live.test", 10),
                      ("dangle.test", "gone.dangle.test", 10)],
                  hosts=[("mx.live.test", "127.0.0.2")], null_mx=["nullmx.test"]).start()
    yield ds, dns
    dns.stop()
    ds.stop()


def start(moatd_factory, dns, ds=None, **extra):
    conf = dict(SUBMISSION_CONF, recipient_domain_check="yes", dns_servers=dns.servers,
                dns_timeout="500ms", dns_tries="1", account_suspend_score="0",
                seed_policy=local_domains_seed("example.com"), **NOLIMIT)
    if ds is not None:
        conf.update(delivery="yes", mx_port=str(ds.port), downstream="", retry_min="1s",
                    retry_max="2s", queue_poll="200ms", downstream_tls="off",
                    delivery_tls="off")
    conf.update(extra)
    d = moatd_factory(**conf)
    add_user(d, "alice", ["alice@example.com"], PW)
    return d


def test_mailing_with_dead_domains_is_not_cut_off(moatd_factory, world):
    ds, dns = world
    d = start(moatd_factory, dns, ds, max_recipients="1000")
    dead_domains = ["dangle.test", "nullmx.test", "nothere.test", "gone.test"]
    rcpts = []
    for i in range(150):
        if i % 15 < 4 and len([r for r in rcpts if r.split("@")[1] in dead_domains]) < 40:
            rcpts.append(f"r{i}@{dead_domains[i % 4]}")
        else:
            rcpts.append(f"r{i}@{'live.test' if i % 2 else 'big.test'}")
    dead = [r for r in rcpts if r.split("@")[1] in dead_domains]
    live = [r for r in rcpts if r not in dead]
    assert len(rcpts) == 150 and len(dead) == 40

    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    assert s.mail("alice@example.com")[0] == 250
    for r in rcpts:
        code, resp = s.rcpt(r)
        want = 550 if r in dead else 250
        assert code == want, (r, code, resp)
    code, resp = s.data(message(subject="newsletter"))
    assert code == 250, resp
    assert s.noop()[0] == 250     # still open
    s.quit()
    ds.wait_for(len(live), timeout=20)
    assert ds.rcpts() == sorted(live)
    assert "ERROR LIMIT" not in d.log_text() and "REFUSAL LIMIT" not in d.log_text()
    accepted = d.log_rows("result = 'accepted'", want=1)
    assert sorted(json.loads(accepted[0]["recipients"])) == sorted(live)


def test_unknown_commands_still_close_at_max_errors(moatd_factory):
    d = moatd_factory()     # max_errors = 10 by default
    c = d.raw()
    c.ehlo()
    errors = 0
    for _ in range(25):
        if not c.pending(0.3):
            c.send(b"FROBNICATE\r\n")
        r = c.readreply()
        if r.code == 421:
            assert r.first.startswith("421 4.7.0") and "too many errors" in r.first, r.first
            break
        assert r.code == 500, r
        errors += 1
    assert errors == 10, f"got 421 after {errors} error replies, want after 10"
    c.expect_closed()
    assert "ERROR LIMIT from [127.0.0.1]" in d.log_text()


def test_refusals_past_max_refusals_close(moatd_factory, world):
    ds, dns = world
    d = start(moatd_factory, dns, max_refusals="20", max_recipients="1000")
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    assert s.mail("alice@example.com")[0] == 250
    assert s.rcpt("ok@live.test")[0] == 250
    for i in range(19):
        code, resp = s.rcpt(f"x{i}@nothere.test")
        assert code == 550 and resp.startswith(b"5.1.2"), (i, code, resp)
    # The 20th refusal is given, then the limit closes the session.
    s.putcmd("RCPT", "TO:<x19@nothere.test>")
    code, resp = s.getreply()
    assert code == 550, resp
    code, resp = s.getreply()
    assert code == 421 and resp.startswith(b"4.7.0"), resp
    assert b"Too many refused recipients, closing" in resp, resp
    assert wait_for(lambda: "REFUSAL LIMIT from [127.0.0.1] refused=20" in d.log_text())
    assert not d.query("SELECT 1 FROM queue_rcpt")


def test_unauthenticated_refusals_lower_limit(moatd_factory):
    # Relay denied for every external recipient of an unauthenticated Internet client.
    d = moatd_factory(max_refusals_unauth="5", seed_policy=local_domains_seed("example.com")
                      + [("remove", "relay_net", "127.0.0.0/8")])
    c = d.raw()
    c.ehlo()
    c.expect_cmd("MAIL FROM:<someone@example.net>", 250)
    for i in range(4):
        r = c.cmd(f"RCPT TO:<x{i}@elsewhere.example>")
        assert r.code == 554 and r.first.startswith("554 5.7.1"), r
    c.send(b"RCPT TO:<x4@elsewhere.example>\r\n")
    assert c.readreply().code == 554
    r = c.readreply()
    assert r.code == 421 and "Too many refused recipients" in r.first, r
    c.expect_closed()
    assert "REFUSAL LIMIT from [127.0.0.1] refused=5" in d.log_text()


def test_rate_limited_recipients_do_not_close(moatd_factory, world):
    ds, dns = world
    d = start(moatd_factory, dns, limit_account_recipients="5,0,0")
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    assert s.mail("alice@example.com")[0] == 250
    for i in range(5):
        assert s.rcpt(f"r{i}@live.test")[0] == 250
    for i in range(5, 30):
        code, resp = s.rcpt(f"r{i}@live.test")
        assert code == 451 and resp.startswith(b"4.7.1"), (i, code, resp)
    code, resp = s.data(message())
    assert code == 250, resp
    s.quit()
    assert sorted(r for (r,) in d.query("SELECT rcpt FROM queue_rcpt")) == \
        sorted(f"r{i}@live.test" for i in range(5))
    assert "ERROR LIMIT" not in d.log_text()
