"""Three moatd nodes on one real PostgreSQL and one real Redis together (docs/cluster.md):
a user created with the CLI of one node logs in on the others, a per-account limit holds for
the cluster as a whole, and with both engines gone in the middle of a load every node goes on
alone (degraded on /healthz, nothing lost) and catches up when they are back."""

import smtplib
import sqlite3
import time

import pytest

from api_client import api_moatd  # noqa: F401 (fixture)
from conftest import message, wait_for
from peers_cluster import (Load, Postgres, Redis, admin, cluster_nodes,  # noqa: F401
                           downstream, health, lines_received, sender_refused)
from peers_delivery import delivery_conf
from submission_util import SUBMISSION_CONF, add_user, smtp_tls

PW = "alice-password-1"
LIMIT = 5  # messages per minute for the account, the cluster as a whole


@pytest.fixture
def engines(tmp_path):
    pg = Postgres()
    redis = Redis(tmp_path / "redis")
    try:
        yield pg.start(), redis.start()
    finally:
        redis.cleanup()
        pg.cleanup()


def engine_states(d):
    cl = health(d).get("cluster", {})
    return cl.get("postgresql", {}).get("state"), cl.get("redis", {}).get("state")


def can_login(d):
    s = smtp_tls(d.smtp_port)
    try:
        s.login("alice", PW)
        return True
    except smtplib.SMTPAuthenticationError:
        return False
    finally:
        s.close()


def submit(d, i):
    """One message from alice on a new session: the reply code of MAIL or of the DATA."""
    s = smtp_tls(d.smtp_port)
    try:
        s.login("alice", PW)
        code, _ = s.mail("alice@example.org")
        if code != 250:
            return code
        code, _ = s.rcpt("friend@example.net")
        if code != 250:
            return code
        code, _ = s.data(message(subject=f"submitted {i}"))
        return code
    finally:
        s.close()


def test_three_nodes_on_postgres_and_redis(api_moatd, engines, downstream):
    pg, redis = engines
    conf = dict(delivery_conf(downstream.addr), **SUBMISSION_CONF)
    conf.update(limit_account_messages=f"0,{LIMIT},0,0", limit_account_recipients="0,0,0,0",
                limit_client_messages="0,0,0,0", limit_client_recipients="0,0,0,0",
                cluster_retry="300ms", cluster_redis_timeout="200ms")
    nodes = cluster_nodes(api_moatd, 3, pg=pg, redis=redis, **conf)
    a, b, c = nodes
    for d in nodes:
        assert wait_for(lambda: "cluster joined" in d.log_text(), timeout=15)
        assert wait_for(lambda: engine_states(d) == ("up", "up"), timeout=10), health(d)

    # The directory through PostgreSQL: alice exists only through A's CLI.
    add_user(a, "alice", ["alice@example.org"], PW)
    for d in (b, c):
        assert wait_for(lambda: d.query("SELECT count(*) FROM dir_user WHERE name = 'alice'"
                                        " AND password_hash IS NOT NULL")[0][0] == 1,
                        timeout=5)
    assert can_login(c)

    # The limit through Redis: LIMIT a minute for the three nodes together.
    codes = [submit(nodes[i % 3], i) for i in range(3 * LIMIT)]
    assert codes.count(250) == LIMIT, codes
    assert all(code == 451 for code in codes if code != 250), codes

    # Both engines gone in the middle of a load: every node goes on alone.
    total = 120
    load = Load(nodes, total)
    try:
        assert wait_for(lambda: len(load.sent) >= 20, timeout=30)
        pg.stop()
        redis.stop()
        assert wait_for(lambda: engine_states(a) == ("down", "down"), timeout=10), health(a)
        assert health(a)["status"] == "degraded"
        admin(a).post("/api/v1/policy/entries", {"list": "sender_deny",
                                                 "value": "outage@bad.example"}).expect(201)
        # A submission while Redis is gone is judged by the node's own counters at once.
        started = time.monotonic()
        assert submit(b, "outage") in (250, 451)
        assert time.monotonic() - started < 5
    finally:
        load.join()
    assert load.errors == [] and len(load.sent) == total

    pg.start()
    redis.start()
    for d in nodes:
        assert wait_for(lambda: health(d)["status"] == "ok", timeout=15), health(d)
    assert wait_for(lambda: sender_refused(c, "outage@bad.example"), timeout=5)
    assert wait_for(lambda: lines_received(downstream, load.want) == load.want, timeout=60), \
        len(lines_received(downstream, load.want))
    # Redis came back empty: the limit holds for the cluster again from there.
    codes = [submit(nodes[i % 3], i) for i in range(2 * LIMIT)]
    assert codes.count(250) == LIMIT, codes


def digests_to(downstream, rcpt):
    return [m for m in list(downstream.messages)
            if rcpt in m["rcpt_tos"] and b"multipart/alternative" in m["content"]]


def set_last_digest(d, user, at):
    """dir_user.digest_last_at written straight into a node's SQLite copy, as moatd's cluster
    thread applies a row (moat_cluster_applying() = 1: not captured for PostgreSQL)."""
    con = sqlite3.connect(str(d.db_path), timeout=10)
    try:
        con.create_function("moat_cluster_applying", 0, lambda: 1)
        con.execute("UPDATE dir_user SET digest_interval = 'hourly', digest_last_at = ?"
                    " WHERE name = ?", (at, user))
        con.commit()
    finally:
        con.close()


def test_one_digest_per_user_from_the_whole_cluster(api_moatd, engines, downstream):
    """Every node sees alice's quarantine and is due to send her digest; with PostgreSQL away
    none learns that another sent it, and the claim in Redis still lets only one send."""
    pg, redis = engines
    conf = dict(delivery_conf(downstream.addr), digest_check="1s", cluster_retry="300ms",
                cluster_redis_timeout="200ms")
    nodes = cluster_nodes(api_moatd, 3, pg=pg, redis=redis, **conf)
    a = nodes[0]
    for d in nodes:
        assert wait_for(lambda: "cluster joined" in d.log_text(), timeout=15)
        assert wait_for(lambda: engine_states(d) == ("up", "up"), timeout=10), health(d)
    api = admin(a)
    api.post("/api/v1/rules", {"name": "q wins", "when": {"field": "header", "header": "Subject",
                                                          "op": "contains", "value": "Win"},
                               "action": {"type": "quarantine"}}).expect(201)
    api.post("/api/v1/users", {"name": "alice", "password": "password-xxxx",
                               "addresses": ["alice@example.org"]}).expect(201)
    gen = a.query("SELECT generation FROM policy_meta")[0][0]
    assert wait_for(lambda: f"loaded generation={gen}" in a.log_text(), timeout=3)
    with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=10) as s:
        s.sendmail("spammer@example.net", ["alice@example.org"], message(subject="Win big"))
    for d in nodes:
        assert wait_for(lambda: d.query("SELECT count(*) FROM quarantine")[0][0] == 1,
                        timeout=5)
    # Alice's first digest (her interval is daily from the start): every node is due at
    # once, one sends.
    for d in nodes:
        assert wait_for(lambda: d.query("SELECT digest_last_at IS NOT NULL FROM dir_user"
                                        " WHERE name = 'alice'") == [(1,)], timeout=10)
    assert wait_for(lambda: all(d.query("SELECT count(*) FROM queue_rcpt")[0][0] == 0
                                for d in nodes), timeout=20)
    first = len(digests_to(downstream, "alice@example.org"))
    assert first <= 1
    pg.stop()
    for d in nodes:
        assert wait_for(lambda: engine_states(d)[0] == "down", timeout=10), health(d)
    # Alice's last digest long ago on every node: each one's next round finds her due.
    for d in nodes:
        set_last_digest(d, "alice", 1)
    for d in nodes:
        assert wait_for(lambda: d.query("SELECT digest_last_at > 1 FROM dir_user"
                                        " WHERE name = 'alice'") == [(1,)], timeout=10)
    assert wait_for(lambda: len(digests_to(downstream, "alice@example.org")) > first,
                    timeout=20)
    assert wait_for(lambda: all(d.query("SELECT count(*) FROM queue_rcpt")[0][0] == 0
                                for d in nodes), timeout=20)
    assert len(digests_to(downstream, "alice@example.org")) == first + 1


def test_a_node_started_without_postgres_works_and_joins_later(api_moatd, engines):
    """A node that starts while PostgreSQL is away takes mail at once, joins when it comes
    back, and after a restart catches up on what changed while it was stopped."""
    pg, redis = engines
    conf = dict(cluster_retry="300ms", cluster_pg=pg.conninfo, cluster_redis=redis.address)
    a = api_moatd(cluster_node="1", **conf)
    assert wait_for(lambda: "cluster joined node=1 how=seeded" in a.log_text(), timeout=15)
    api = admin(a)
    api.post("/api/v1/policy/entries", {"list": "sender_deny",
                                        "value": "before@bad.example"}).expect(201)
    pg.stop()
    b = api_moatd(cluster_node="2", **conf)
    assert wait_for(lambda: engine_states(b)[0] == "down", timeout=10), health(b)
    assert health(b)["status"] == "degraded"
    with smtplib.SMTP("127.0.0.1", b.smtp_port, timeout=10) as s:
        s.sendmail("someone@example.net", ["r@example.org"], message(subject="alone"))
    pg.start()
    assert wait_for(lambda: "cluster joined node=2 how=pulled" in b.log_text(), timeout=15)
    assert wait_for(lambda: sender_refused(b, "before@bad.example"), timeout=5)
    # B stopped; a change on A meanwhile; B started again on its data directory catches up.
    data_b = b.data_dir
    assert b.stop() == 0
    api.post("/api/v1/policy/entries", {"list": "sender_deny",
                                        "value": "while-away@bad.example"}).expect(201)
    b2 = api_moatd(cluster_node="2", data_dir=data_b, **conf)
    assert wait_for(lambda: sender_refused(b2, "while-away@bad.example"), timeout=5)
    assert "cluster joined" not in b2.log_text()  # joined once, not again
