"""Cluster-wide counters in Redis (docs/cluster.md, "Redis"): three real moatd nodes share
one real Redis 7.  The limits an administrator sets hold for the cluster as a whole (an
account limited to N messages a minute sends N through all nodes together, the same for
recipients), a suspension on one node is refused on every node, a greylisted triplet passes
whichever node the retry reaches.  Without an answer from Redis (stopped, or frozen, or a
server that never answers) a node goes on with its local counters within
cluster_redis_timeout, shows it on /healthz, and uses Redis again when it is back."""

import json
import os
import signal
import smtplib
import socket
import threading
import time
import urllib.request

import pytest

from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401
from conftest import message, wait_for
from peers_cluster import Redis
from peers_dns import Dnsmasq
from peers_policy import Rbldnsd, applied, policy, raw_from
from submission_util import SUBMISSION_CONF, add_user, moatd_cli, smtp_tls

PW = "alice-password-1"
NOLIMIT = {"limit_account_messages": "0,0,0,0", "limit_account_recipients": "0,0,0,0",
           "limit_client_messages": "0,0,0,0", "limit_client_recipients": "0,0,0,0"}
TIMEOUT_MS = 200


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path / "redis").start()
    yield r
    r.cleanup()


def nodes_with(moatd_factory, redis_addr, n=3, **conf):
    c = dict(SUBMISSION_CONF, **NOLIMIT)
    c["cluster_redis_timeout"] = f"{TIMEOUT_MS}ms"
    c["cluster_retry"] = "200ms"
    c.update(conf)
    nodes = []
    for i in range(1, n + 1):
        c2 = dict(c, cluster_node=str(i), cluster_redis=redis_addr)
        nodes.append(moatd_factory(**c2))
    for d in nodes:
        add_user(d, "alice", ["alice@example.com"], PW)
    return nodes


def healthz(d):
    with urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/healthz", timeout=5) as r:
        return json.loads(r.read())


def redis_state(d):
    return healthz(d).get("cluster", {}).get("redis", {}).get("state")


def wait_up(nodes):
    for d in nodes:
        assert wait_for(lambda: redis_state(d) == "up", timeout=10), healthz(d)


def login(d):
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    return s


def one_message(s, rcpts=("friend@example.org",)):
    """MAIL, RCPTs and DATA on an open session: (code, text) of the first refusal or 250."""
    code, text = s.mail("alice@example.com")
    if code != 250:
        s.rset()
        return code, text.decode()
    for r in rcpts:
        code, text = s.rcpt(r)
        if code != 250:
            s.rset()
            return code, text.decode()
    code, text = s.data(message())
    return code, text.decode()


def assert_limit(reply, what):
    code, text = reply
    assert code == 451 and text.startswith("4.7.1"), reply
    assert "Rate limit exceeded" in text and what in text, reply


def test_messages_per_minute_hold_for_the_cluster_round_robin(moatd_factory, redis):
    nodes = nodes_with(moatd_factory, redis.address, limit_account_messages="0,6,0,0")
    wait_up(nodes)
    sessions = [login(d) for d in nodes]
    replies = [one_message(sessions[i % 3]) for i in range(18)]
    for s in sessions:
        s.quit()
    accepted = [r for r in replies if r[0] == 250]
    assert len(accepted) == 6, replies
    for r in replies:
        if r[0] != 250:
            assert_limit(r, "6 messages per minute for this account")
    # Only the first six: a refusal never lets a later message through within the minute.
    assert all(r[0] == 250 for r in replies[:6]), replies
    assert sum(len(d.queue_files()) for d in nodes) == 6
    assert "cluster=yes" in "".join(d.log_text() for d in nodes)
    assert redis.cli("EXISTS", "moat:rl:am:alice:1").strip() == "1"


def test_messages_per_minute_concurrent_on_all_nodes(moatd_factory, redis):
    nodes = nodes_with(moatd_factory, redis.address, limit_account_messages="0,6,0,0")
    wait_up(nodes)
    results = []
    lock = threading.Lock()

    def run(d):
        s = login(d)
        for _ in range(6):
            r = one_message(s)
            with lock:
                results.append(r)
        s.quit()

    threads = [threading.Thread(target=run, args=(d,)) for d in nodes for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 36
    assert sum(1 for r in results if r[0] == 250) == 6, results
    for r in results:
        if r[0] != 250:
            assert_limit(r, "6 messages per minute")
    assert sum(len(d.queue_files()) for d in nodes) == 6


def test_recipients_per_minute_hold_for_the_cluster(moatd_factory, redis):
    nodes = nodes_with(moatd_factory, redis.address, limit_account_recipients="0,5,0,0")
    wait_up(nodes)
    sessions = [login(d) for d in nodes]
    for s in sessions:
        assert s.mail("alice@example.com")[0] == 250
    codes = []
    for i in range(15):
        code, text = sessions[i % 3].rcpt(f"r{i}@example.org")
        codes.append(code)
        if code != 250:
            assert code == 451 and text.startswith(b"4.7.1"), text
            assert b"5 recipients per minute for this account" in text, text
    assert codes.count(250) == 5, codes
    for s in sessions:
        s.quit()


def test_client_address_limit_holds_for_the_cluster(moatd_factory, redis):
    nodes = nodes_with(moatd_factory, redis.address, limit_client_messages="0,4,0,0")
    for d in nodes:
        add_user(d, "bob", ["bob@example.com"], "bob-password-12")
    wait_up(nodes)
    codes = []
    for i in range(12):
        s = smtp_tls(nodes[i % 3].smtp_port)
        user, pw = ("alice", PW) if i % 2 == 0 else ("bob", "bob-password-12")
        s.login(user, pw)
        code, text = s.mail(f"{user}@example.com")
        codes.append(code)
        if code != 250:
            assert code == 451 and b"4 messages per minute for this client address" in text, text
        s.quit()
    assert codes.count(250) == 4, codes


def auth_reply(d):
    """(code, text) of AUTH PLAIN alice on a new session."""
    s = smtp_tls(d.smtp_port)
    try:
        s.login("alice", PW)
        return 235, b""
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code, e.smtp_error
    finally:
        s.close()


def suspend_by_bindings(d):
    """Senders the login does not own: 4 points each, suspended at 20 (the default)."""
    s = login(d)
    for i in range(8):
        code, text = s.mail(f"someone{i}@elsewhere.example")
        if code == 550 and b"suspended" in text:
            break
        s.rset()
    s.quit()
    assert wait_for(lambda: "ACCOUNT SUSPENDED user=alice" in d.log_text())


def test_suspension_on_one_node_is_refused_on_the_others(moatd_factory, redis):
    a, b, c = nodes_with(moatd_factory, redis.address)
    wait_up([a, b, c])
    s = login(b)
    assert one_message(s)[0] == 250
    suspend_by_bindings(a)
    assert wait_for(lambda: redis.cli("EXISTS", "moat:susp:alice").strip() == "1")
    # B and C never saw the account misbehave; their next MAIL is refused all the same.
    code, text = s.mail("alice@example.com")
    assert code == 550 and text.startswith(b"5.7.1") and b"suspended" in text, text
    s.quit()
    assert wait_for(lambda: "ACCOUNT SUSPENDED IN CLUSTER user=alice" in b.log_text())
    # C refuses the login itself, as A does.
    assert wait_for(lambda: auth_reply(c)[0] == 535, timeout=3), auth_reply(c)
    code, text = auth_reply(c)
    assert text.startswith(b"5.7.8") and b"suspended" in text, text
    assert wait_for(lambda: "account suspended in the cluster user=alice" in c.log_text())
    assert sum(len(d.queue_files()) for d in (b, c)) == 1
    # The administrator lifts it on A: the flag goes, B and C send again.
    r = moatd_cli(a, "accounts", "lift", "alice")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: redis.cli("EXISTS", "moat:susp:alice").strip() == "0", timeout=5)
    for d in (b, c):
        assert wait_for(lambda: auth_reply(d)[0] == 235, timeout=3), auth_reply(d)
        s = login(d)
        assert one_message(s)[0] == 250
        s.quit()


def test_suspension_flags_survive_a_redis_restart_and_a_lift_while_away(moatd_factory, redis):
    a, b = nodes_with(moatd_factory, redis.address, n=2, limit_account_messages="0,3,0,0")
    for d in (a, b):
        add_user(d, "bob", ["bob@example.com"], "bob-password-12")
    wait_up([a, b])
    suspend_by_bindings(a)
    assert wait_for(lambda: redis.cli("EXISTS", "moat:susp:alice").strip() == "1")
    # Redis comes back empty: the suspending node sets the flag again.
    redis.stop()
    redis.start()
    wait_up([a, b])
    assert wait_for(lambda: redis.cli("EXISTS", "moat:susp:alice").strip() == "1", timeout=5)
    assert wait_for(lambda: auth_reply(b)[0] == 535, timeout=3), auth_reply(b)
    # Its scripts are gone (as after SCRIPT FLUSH): the checks load them again, and the
    # cluster-wide limit holds (locally each node would take 3).
    redis.cli("SCRIPT", "FLUSH")
    sessions = []
    for d in (a, b):
        s = smtp_tls(d.smtp_port)
        s.login("bob", "bob-password-12")
        sessions.append(s)
    codes = []
    for i in range(4):
        codes.append(sessions[i % 2].mail("bob@example.com")[0])
        sessions[i % 2].rset()
    for s in sessions:
        s.quit()
    assert codes == [250, 250, 250, 451], codes
    assert "cmdstat_eval:" in redis.cli("INFO", "commandstats")  # after NOSCRIPT
    # Lifted on A while Redis does not answer: the flag is cleared once it is back.
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        r = moatd_cli(a, "accounts", "lift", "alice")
        assert r.returncode == 0, r.stderr
        assert wait_for(lambda: "account lifted user=alice" in a.log_text(), timeout=5)
        # Its DEL goes unanswered: A goes on alone until Redis is back.
        assert wait_for(lambda: redis_state(a) == "down", timeout=5)
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    assert wait_for(lambda: redis.cli("EXISTS", "moat:susp:alice").strip() == "0", timeout=10)
    wait_up([b])
    assert wait_for(lambda: auth_reply(b)[0] == 235, timeout=3), auth_reply(b)
    s = login(b)
    assert one_message(s)[0] == 250
    s.quit()


GREY_SEED = [
    ("add", "local_domain", "example.org"),
    ("set", "recipient_verify", "no"),
    ("remove", "relay_net", "127.0.0.0/8"),
    ("set", "score_greylist", "-100"),
    ("set", "greylist_delay", "1"),
]


def grey_send(d, src, sender, rcpt):
    body = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: grey\r\n"
            f"Message-ID: <{time.time_ns()}@client.test>\r\n\r\nHello.\r\n").encode()
    with smtplib.SMTP("127.0.0.1", d.smtp_port, source_address=(src, 0), timeout=10) as s:
        s.ehlo("client.test")
        try:
            s.sendmail(sender, [rcpt], body)
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error.decode()
        return 250, ""


def test_greylist_retry_passes_on_another_node(moatd_factory, redis):
    dns = Dnsmasq().start()
    try:
        a, b = [moatd_factory(seed_policy=GREY_SEED, dns_servers=dns.servers,
                              cluster_node=str(i), cluster_redis=redis.address,
                              cluster_redis_timeout=f"{TIMEOUT_MS}ms") for i in (1, 2)]
        code, text = grey_send(a, "127.0.21.10", "alice@client.test", "bob@example.org")
        assert code == 451 and "Greylisted" in text, (code, text)
        keys = redis.cli("KEYS", "moat:gl:t:*").split()
        assert keys == ["moat:gl:t:127.0.21.0/24|alice@client.test|bob@example.org"], keys
        # Before the delay, B defers it too: it knows the triplet from A.
        code, text = grey_send(b, "127.0.21.10", "alice@client.test", "bob@example.org")
        assert code == 451, (code, text)
        first = time.time()
        assert wait_for(lambda: time.time() > first + 1.2, timeout=3)
        assert grey_send(b, "127.0.21.11", "alice@client.test", "bob@example.org") == (250, "")
        # Passed: A lets the next one through at once.
        assert grey_send(a, "127.0.21.10", "alice@client.test", "bob@example.org") == (250, "")
        # Neither node's SQLite greylist decided.
        for d in (a, b):
            assert d.query("SELECT count(*) FROM greylist_triplet")[0][0] == 0
    finally:
        dns.stop()


def timed_message(s):
    t0 = time.monotonic()
    r = one_message(s)
    return r, time.monotonic() - t0


def test_redis_down_local_limits_then_cluster_again(moatd_factory, redis):
    nodes = nodes_with(moatd_factory, redis.address, limit_account_messages="0,10,0,0")
    wait_up(nodes)
    sessions = [login(d) for d in nodes]
    for i in range(3):
        assert one_message(sessions[i])[0] == 250
    redis.stop()
    # Every node goes on alone: its local limit (10 a minute) allows all of these.
    for i in range(6):
        r, took = timed_message(sessions[i % 3])
        assert r[0] == 250, r
        assert took < TIMEOUT_MS / 1000 + 1.0, took
    for d in nodes:
        assert wait_for(lambda: redis_state(d) == "down", timeout=5), healthz(d)
        h = healthz(d)
        assert h["status"] == "degraded" and h["cluster"]["redis"]["outages"] >= 1, h
    assert "CLUSTER DEGRADED redis" in nodes[0].log_text()
    for s in sessions:
        s.quit()
    redis.start()
    wait_up(nodes)
    for d in nodes:
        assert healthz(d)["status"] == "ok"
    # Redis is empty again: the cluster-wide limit holds from here, whatever each node counted.
    sessions = [login(d) for d in nodes]
    replies = [one_message(sessions[i % 3]) for i in range(30)]
    for s in sessions:
        s.quit()
    assert sum(1 for r in replies if r[0] == 250) == 10, replies
    assert sum(len(d.queue_files()) for d in nodes) == 3 + 6 + 10


def test_frozen_redis_costs_at_most_the_timeout(moatd_factory, redis):
    (d,) = nodes_with(moatd_factory, redis.address, n=1, limit_account_messages="0,100,0,0")
    wait_up([d])
    s = login(d)
    assert one_message(s)[0] == 250
    os.kill(redis.proc.pid, signal.SIGSTOP)  # connected, and answers nothing
    try:
        times = []
        for _ in range(5):
            r, took = timed_message(s)
            assert r[0] == 250, r
            times.append(took)
        # The first waits for the timeout; the node then decides alone at once.
        assert max(times) < TIMEOUT_MS / 1000 + 0.5, times
        assert wait_for(lambda: redis_state(d) == "down", timeout=3)
        assert wait_for(lambda: f"no answer within {TIMEOUT_MS}ms" in d.log_text())
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    assert wait_for(lambda: redis_state(d) == "up", timeout=10)
    assert one_message(s)[0] == 250
    s.quit()
    assert len(d.queue_files()) == 7


class SilentServer:
    """Accepts TCP connections, reads whatever comes and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop_ev = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        deadline = time.monotonic() + 120
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
                c.setblocking(False)
                self.conns.append(c)
            except socket.timeout:
                pass
            for c in self.conns:
                try:
                    c.recv(65536)
                except (BlockingIOError, OSError):
                    pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


def test_silent_redis_never_delays_mail(moatd_factory):
    with SilentServer() as srv:
        (d,) = nodes_with(moatd_factory, srv.address, n=1, limit_account_messages="0,3,0,0")
        assert wait_for(lambda: redis_state(d) == "down", timeout=5), healthz(d)
        assert wait_for(lambda: len(srv.conns) >= 2, timeout=5)  # it keeps trying
        s = login(d)
        replies = []
        for _ in range(4):
            r, took = timed_message(s)
            replies.append(r)
            assert took < TIMEOUT_MS / 1000 + 0.5, took
        s.quit()
        # The local limit decides: 3 a minute.
        assert [r[0] for r in replies] == [250, 250, 250, 451], replies
        assert healthz(d)["status"] == "degraded"


def test_dnsbl_statistics_are_the_cluster_totals(api_moatd, redis, tmp_path):
    rbl = Rbldnsd(tmp_path / "rbl", {"bl.test": [("127.0.0.2", "127.0.0.2")]}).start()
    try:
        nodes = [api_moatd(dns_servers=rbl.servers, dns_timeout="1s", dns_tries=1,
                           cluster_node=str(i), cluster_redis=redis.address) for i in (1, 2)]
        for d in nodes:
            policy(d, "set", "delay_reject", "no")
            policy(d, "dnsbl", "add", "BL.test")
            applied(d)
            wait_up([d])
        for d in nodes:
            for src in ("127.0.0.2", "127.0.0.6"):
                with raw_from(d, src) as c:
                    c.readreply()
        assert wait_for(lambda: redis.cli("HGET", "moat:dnsbl:bl.test", "hits").strip() == "2",
                        timeout=5), redis.cli("HGETALL", "moat:dnsbl:bl.test")
        api = Api(nodes[0].http_port)
        api.login("admin", ADMIN_PASSWORD)
        st = api.get("/api/v1/policy/dnsbl").expect(200).json["items"][0]["stats"]
        assert (st["hits"], st["queries"], st["hits_today"]) == (2, 4, 2), st
        assert st["last_hit"] is not None
        # This node alone saw one hit (its own SQLite), the cluster two.
        assert wait_for(lambda: nodes[0].query(
            "SELECT sum(hits) FROM dnsbl_stat WHERE zone = 'bl.test'")[0][0] == 1, timeout=5)
        # Redis gone: the node's own counts again.
        redis.stop()
        st = api.get("/api/v1/policy/dnsbl").expect(200).json["items"][0]["stats"]
        assert st["hits"] == 1, st
    finally:
        rbl.stop()
