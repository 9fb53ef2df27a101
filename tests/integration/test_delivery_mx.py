"""MX routing with a real DNS server on loopback (dnsmasq): MX preference order with
failover, A fallback without MX, null MX (RFC 7505) and NXDOMAIN dead at once, smart host."""

import pytest

from peers_dns import Dnsmasq
from peers_delivery import Downstream, delivery_conf, rcpt_states, send, wait_for, free_port


@pytest.fixture
def world():
    port = free_port("127.0.0.2")
    ds = Downstream(host="127.0.0.2", port=port).start()
    dns = Dnsmasq(
        mx=[("mx.test", "mx1.mx.test", 10), ("mx.test", "mx2.mx.test", 20)],
        hosts=[("mx1.mx.test", "127.0.0.3"),   # preferred, but nobody listens there
           ("mx2.mx.test", "127.0.0.2"),
           ("amx.test", "127.0.0.2")],
        null_mx=["null.test"]).start()
    yield ds, dns
    dns.stop()
    ds.stop()


def mx_conf(ds, dns, **extra):
    conf = delivery_conf("", local_domains=(), dns_servers=dns.servers,
                         mx_port=str(ds.port), dns_timeout="2s")
    conf.update(extra)
    return conf


def test_mx_failover_a_fallback_null_mx_nxdomain(moatd_factory, world):
    ds, dns = world
    d = moatd_factory(**mx_conf(ds, dns))
    q1 = send(d, "alice@example.net", ["bob@mx.test", "carol@amx.test"])
    q2 = send(d, "alice@example.net", ["x@null.test", "y@nothere.test"])
    ds.wait_for(2)
    assert ds.rcpts() == ["bob@mx.test", "carol@amx.test"]
    assert wait_for(lambda: d.query("SELECT count(*) FROM queue_rcpt WHERE qid = ?", (q1,))
                    == [(0,)]), rcpt_states(d, q1)
    assert wait_for(lambda: rcpt_states(d, q2) == {"x@null.test": "dead",
                                                  "y@nothere.test": "dead"}), rcpt_states(d, q2)
    errs = dict(d.query("SELECT rcpt, last_error FROM queue_rcpt WHERE qid = ?", (q2,)))
    assert errs["x@null.test"].startswith("556 5.1.10") and "null MX" in errs["x@null.test"]
    assert errs["y@nothere.test"].startswith("550 5.1.2")
    # dead mail is held, never bounced: the file is kept for review
    assert q2 in d.queue_files()


def test_dns_down_defers(moatd_factory, world):
    ds, dns = world
    dns.stop()
    d = moatd_factory(**mx_conf(ds, dns, dns_timeout="300ms"))
    qid = send(d, "alice@example.net", ["bob@mx.test"])
    assert wait_for(lambda: rcpt_states(d, qid) == {"bob@mx.test": "deferred"}), \
        rcpt_states(d, qid)
    err = d.query("SELECT last_error FROM queue_rcpt WHERE qid = ?", (qid,))[0][0]
    assert err.startswith("451 4.4.3"), err


def test_smarthost_takes_non_local(moatd_factory):
    local = Downstream().start()
    smart = Downstream().start()
    try:
        d = moatd_factory(**delivery_conf(local.addr, smarthost=smart.addr))
        send(d, "alice@example.net", ["bob@example.org", "ext@elsewhere.test"])
        local.wait_for(1)
        smart.wait_for(1)
        assert local.rcpts() == ["bob@example.org"]
        assert smart.rcpts() == ["ext@elsewhere.test"]
    finally:
        local.stop()
        smart.stop()
