"""RCPT TO:<Postmaster> without a domain (RFC 5321 4.5.1), from an Internet client and from a
trusted one: routed to postmaster@ the first local domain (or the postmaster_address
setting), never refused as an unknown recipient, and delivered to a real downstream."""

import pytest

from conftest import check_reply, message, qid_of, stuff
from peers_delivery import Downstream, delivery_conf
from peers_policy import applied, policy, raw_from

SEED = [
    ("add", "local_domain", "example.org"),
    ("add", "local_domain", "example.com"),
    ("remove", "relay_net", "127.0.0.0/8"),
    ("add", "relay_net", "127.0.0.1"),
    # recipient_verify stays on: the postmaster needs no directory entry.
    ("user", "add", "alice", "alice@example.org"),
]


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


def start(moatd_factory, ds, seed=SEED):
    conf = delivery_conf(ds.addr)
    conf["seed_policy"] = seed
    return moatd_factory(**conf)


def send_to(d, src, rcpt):
    with raw_from(d, src, banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd(f"RCPT TO:<{rcpt}>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        c.send(stuff(message("to the postmaster")))
        return qid_of(c.readreply())


@pytest.mark.parametrize("src,spelling", [
    ("127.0.0.2", "Postmaster"),   # an Internet client
    ("127.0.0.2", "postmaster"),
    ("127.0.0.1", "POSTMASTER"),   # on relay_net
])
def test_postmaster_is_delivered(moatd_factory, downstream, src, spelling):
    d = start(moatd_factory, downstream)
    qid = send_to(d, src, spelling)
    downstream.wait_for(1)
    assert downstream.rcpts() == ["postmaster@example.org"]
    assert b"Subject: to the postmaster" in downstream.messages[0]["content"]
    row = d.log_rows("qid = ?", (qid,))[0]
    assert row["recipients"] == '["postmaster@example.org"]', row


def test_postmaster_address_setting(moatd_factory, downstream):
    d = start(moatd_factory, downstream)
    bad = policy(d, "set", "postmaster_address", "not an address", check=False)
    assert bad.returncode != 0 and "postmaster_address" in bad.stderr
    policy(d, "set", "postmaster_address", "abuse-desk@example.com")
    applied(d)
    send_to(d, "127.0.0.2", "Postmaster")
    downstream.wait_for(1)
    assert downstream.rcpts() == ["abuse-desk@example.com"]


def test_postmaster_without_a_local_domain_says_why(moatd_factory, downstream):
    d = start(moatd_factory, downstream, seed=[("set", "relay_enforce", "none")])
    with raw_from(d, "127.0.0.2", banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        r = c.cmd("RCPT TO:<Postmaster>")
        check_reply(r, "451 4.3.5")
        assert "no local domain" in r.first, r
    assert d.log_rows("check_name = 'postmaster'")
