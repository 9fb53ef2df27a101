"""Delivery: moatd relays accepted mail to a real downstream SMTP server (aiosmtpd).

Covers: delivery and cleanup, failover between downstream servers, downstream down then
up, 4xx then success (back-off), 5xx for one recipient of three (dead, reply kept, file
kept for review), hold_undeliverable=no, several messages over one connection.
"""

import time

import pytest

from conftest import message, strip_received
from peers_delivery import Downstream, delivery_conf, rcpt_states, refusing_port, send, wait_for



@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


def queue_empty(d):
    return d.query("SELECT count(*) FROM queue_message")[0][0] == 0 and d.queue_files() == []


def test_delivery_and_cleanup(moatd_factory, downstream):
    d = moatd_factory(**delivery_conf(downstream.addr))
    body = message(subject="hello", body_lines=("line one", ".leading dot", "end"))
    qid = send(d, "alice@example.net", ["bob@example.org", "carol@example.org"], body)
    downstream.wait_for(2)
    assert downstream.rcpts() == ["bob@example.org", "carol@example.org"]
    m = downstream.messages[0]
    assert m["mail_from"] == "alice@example.net"
    # Byte for byte what was received, after our Received: header; dot-stuffing undone.
    assert strip_received(m["content"]) == body
    assert wait_for(lambda: queue_empty(d)), f"queue not emptied: {rcpt_states(d, qid)}"
    assert f"{qid} delivery sent to=<bob@example.org>" in d.log_text()


def test_failover_to_second_downstream(moatd_factory, downstream):
    dead, dead_port = refusing_port()
    with dead:
        d = moatd_factory(**delivery_conf(f"127.0.0.1:{dead_port}, {downstream.addr}"))
        send(d, "alice@example.net", ["bob@example.org"])
        downstream.wait_for(1)
        assert wait_for(lambda: queue_empty(d))
    assert f"connection failed host=127.0.0.1 reason=\"Connection refused\"" in d.log_text()


def test_downstream_down_then_up(moatd_factory):
    ds = Downstream()  # port chosen, not listening yet
    d = moatd_factory(**delivery_conf(ds.addr))
    qid = send(d, "alice@example.net", ["bob@example.org"])
    assert wait_for(lambda: rcpt_states(d, qid) == {"bob@example.org": "deferred"}), \
        rcpt_states(d, qid)
    row = d.query("SELECT attempts, last_error FROM queue_rcpt WHERE qid = ?", (qid,))[0]
    assert row[0] >= 1 and row[1].startswith("451 4.4."), row
    assert d.queue_files() == [qid]
    ds.start()
    try:
        ds.wait_for(1, timeout=20)
        assert wait_for(lambda: queue_empty(d))
    finally:
        ds.stop()


def test_4xx_then_success(moatd_factory, downstream):
    downstream.replies["bob@example.org"] = ["451 4.3.0 greylisted, try later", None]
    d = moatd_factory(**delivery_conf(downstream.addr))
    qid = send(d, "alice@example.net", ["bob@example.org"])
    assert wait_for(lambda: d.query(
        "SELECT 1 FROM queue_rcpt WHERE qid = ? AND state = 'deferred'", (qid,)), timeout=10) \
        or downstream.deliveries(), "never deferred"
    downstream.wait_for(1, timeout=20)
    assert wait_for(lambda: queue_empty(d))
    log = d.log_text()
    assert "deferred to=<bob@example.org>" in log and "greylisted" in log
    assert "sent to=<bob@example.org>" in log


def test_5xx_for_one_of_three(moatd_factory, downstream):
    downstream.replies["nobody@example.org"] = "550 5.1.1 <nobody@example.org>: no such user"
    d = moatd_factory(**delivery_conf(downstream.addr))
    qid = send(d, "alice@example.net",
               ["bob@example.org", "nobody@example.org", "carol@example.org"])
    downstream.wait_for(2)
    assert wait_for(lambda: rcpt_states(d, qid) == {
        "bob@example.org": "done", "nobody@example.org": "dead", "carol@example.org": "done"}), \
        rcpt_states(d, qid)
    err = d.query("SELECT last_error FROM queue_rcpt WHERE qid = ? AND rcpt = ?",
                  (qid, "nobody@example.org"))[0][0]
    assert "550 5.1.1" in err and "no such user" in err
    # Held for review: the file stays, no bounce went anywhere.
    assert d.queue_files() == [qid]
    assert downstream.rcpts() == ["bob@example.org", "carol@example.org"]


def test_hold_undeliverable_off_discards_dead(moatd_factory, downstream):
    downstream.replies["nobody@example.org"] = "550 5.1.1 no such user"
    d = moatd_factory(**delivery_conf(downstream.addr, hold_undeliverable="no"))
    send(d, "alice@example.net", ["bob@example.org", "nobody@example.org"])
    downstream.wait_for(1)
    assert wait_for(lambda: queue_empty(d))
    assert downstream.rcpts() == ["bob@example.org"]


def test_many_messages_few_connections(moatd_factory, downstream):
    d = moatd_factory(**delivery_conf(downstream.addr,
                                      delivery_concurrency_per_destination="2"))
    qids = [send(d, "alice@example.net", [f"u{i}@example.org"]) for i in range(20)]
    downstream.wait_for(20)
    assert wait_for(lambda: queue_empty(d))
    assert len(set(qids)) == 20
    peers = {m["peer"] for m in downstream.messages}
    assert len(peers) <= 2 * 3, f"too many connections: {peers}"


def test_downstream_data_5xx_kills_all(moatd_factory, downstream):
    downstream.data_reply = "554 5.6.0 content rejected"
    d = moatd_factory(**delivery_conf(downstream.addr))
    qid = send(d, "alice@example.net", ["bob@example.org", "carol@example.org"])
    assert wait_for(lambda: set(rcpt_states(d, qid).values()) == {"dead"}), rcpt_states(d, qid)
    assert "554 5.6.0" in d.query("SELECT last_error FROM queue_rcpt WHERE qid = ?", (qid,))[0][0]


def test_local_domains_come_from_the_policy(moatd_factory, downstream):
    """The policy's local_domain list (console, API, `moatd policy`) decides what goes
    downstream: a domain added at runtime is routed there without a restart, wildcards too."""
    from peers_policy import applied, policy
    d = moatd_factory(**delivery_conf(downstream.addr, local_domains=("example.org",)))
    policy(d, "add", "local_domain", "example.com")
    policy(d, "add", "local_domain", "*.corp.test")
    applied(d)
    send(d, "alice@example.net", ["bob@example.com", "eve@Mail.Corp.Test"])
    downstream.wait_for(2)
    assert downstream.rcpts() == ["bob@example.com", "eve@Mail.Corp.Test"]
    assert wait_for(lambda: queue_empty(d))


def test_local_domain_without_downstream_waits(moatd_factory):
    d = moatd_factory(**delivery_conf(""))
    qid = send(d, "alice@example.net", ["bob@example.org"])
    assert wait_for(lambda: rcpt_states(d, qid) == {"bob@example.org": "deferred"}), \
        rcpt_states(d, qid)
    row = d.query("SELECT last_error FROM queue_rcpt WHERE qid = ?", (qid,))[0]
    assert row[0].startswith("451 4.3.5"), row
    assert "NO DOWNSTREAM for local recipient bob@example.org" in d.log_text()
    assert d.queue_files() == [qid]


def test_spool_file_lost_while_queued_is_dead_not_stuck(moatd_factory):
    ds = Downstream()  # not listening: the message waits, deferred
    d = moatd_factory(**delivery_conf(ds.addr))
    qid = send(d, "alice@example.net", ["bob@example.org"])
    assert wait_for(lambda: rcpt_states(d, qid) == {"bob@example.org": "deferred"}), \
        rcpt_states(d, qid)
    (d.queue_dir() / qid).unlink()  # the disk lost it
    assert wait_for(lambda: rcpt_states(d, qid) == {"bob@example.org": "dead"}, timeout=10), \
        rcpt_states(d, qid)
    err = d.query("SELECT last_error FROM queue_rcpt WHERE qid = ?", (qid,))[0][0]
    assert err.startswith("550 5.3.0 spool file missing"), err
    assert f"{qid} queue warn: SPOOL FILE MISSING" in d.log_text()


def test_dead_mail_purged_after_retention_pending_kept(moatd_factory, downstream):
    """dead_retention: a message whose recipients are all final and died long enough ago
    goes (rows and file); one with a recipient still pending stays.  The purge runs 2 s
    after start, then every minute."""
    downstream.replies["nobody@example.org"] = "550 5.1.1 no such user"
    downstream.replies["later@example.org"] = "451 4.3.0 try later"
    d = moatd_factory(**delivery_conf(downstream.addr, retry_min="1h", retry_max="1h"))
    dead = send(d, "alice@example.net", ["nobody@example.org", "bob@example.org"])
    mixed = send(d, "alice@example.net", ["nobody@example.org", "later@example.org"])
    assert wait_for(lambda: rcpt_states(d, dead) == {"nobody@example.org": "dead",
                                                     "bob@example.org": "done"}), \
        rcpt_states(d, dead)
    assert wait_for(lambda: rcpt_states(d, mixed) == {"nobody@example.org": "dead",
                                                      "later@example.org": "deferred"}), \
        rcpt_states(d, mixed)
    assert d.stop() == 0
    time.sleep(1.2)   # both dead recipients are now older than the retention below
    d = moatd_factory(data_dir=d.data_dir, **delivery_conf(downstream.addr, retry_min="1h",
                                                           retry_max="1h",
                                                           dead_retention="1s"))
    assert wait_for(lambda: rcpt_states(d, dead) == {}, timeout=10), rcpt_states(d, dead)
    assert wait_for(lambda: d.queue_files() == [mixed]), d.queue_files()
    assert rcpt_states(d, mixed) == {"nobody@example.org": "dead",
                                     "later@example.org": "deferred"}
    assert d.query("SELECT qid FROM queue_message") == [(mixed,)]
