"""Greylisting against the real binary (docs/score.md, "Greylisting"): a message whose score is
in the greylist band is deferred with 451 4.7.1 at the end of DATA until its (client network,
sender, recipient) triplet retries after greylist_delay; a network whose triplets passed
greylist_auto_allow times is let through at once; the API lists and deletes triplets and
allowed networks.  Every message is put into the band with score_greylist -100; clients connect
from 127.0.x.y source addresses so that each test has networks of its own (127.0.0.0/8 is taken
off relay_net: only inbound mail is greylisted); a dnsmasq on loopback answers sender
authentication at once (SPF none, or a pass for spf.test)."""

import smtplib
import time

import pytest

from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401
from conftest import wait_for
from peers_dns import Dnsmasq

SEED = [
    ("add", "local_domain", "example.org"),
    ("set", "recipient_verify", "no"),
    ("remove", "relay_net", "127.0.0.0/8"),
    ("set", "score_greylist", "-100"),   # every message is in the band
    ("set", "greylist_delay", "1"),
]

# Senders are under .test, which the loopback DNS server answers at once: SPF none (no
# points) for every domain but spf.test, whose record lets 127.0.11.0/24 send.
SPF_NET = "127.0.11.0/24"


@pytest.fixture
def dns():
    server = Dnsmasq(txt=[("spf.test", f"v=spf1 ip4:{SPF_NET} -all")]).start()
    yield server
    server.stop()


@pytest.fixture
def start(api_moatd, dns):
    def run(*extra):
        d = api_moatd(seed_policy=SEED + list(extra), dns_servers=dns.servers)
        api = Api(d.http_port)
        api.login("admin", ADMIN_PASSWORD)
        return d, api
    return run


def message(sender, subject):
    return (f"From: <{sender or 'mailer-daemon@client.test'}>\r\nTo: <rcpt@example.org>\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{time.time_ns()}@client.test>\r\n\r\n"
            "Hello.\r\n").encode()


def send(d, src, sender, rcpts, subject="greylist"):
    """Send one message from source address src; (code, text) of the end of DATA."""
    with smtplib.SMTP("127.0.0.1", d.smtp_port, source_address=(src, 0), timeout=10) as s:
        s.ehlo("client.test")
        try:
            s.sendmail(sender, rcpts, message(sender, subject))
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error.decode()
        return 250, ""


def assert_greylisted(reply):
    code, text = reply
    assert code == 451, f"got {code} {text}, want 451 4.7.1"
    assert text.startswith("4.7.1") and "Greylisted" in text, text


def triplets(api, **filters):
    q = "&".join(f"{k}={v}" for k, v in filters.items())
    r = api.get("/api/v1/greylist" + (f"?{q}" if q else ""))
    assert r.status == 200, r
    return r.json


def wait_delay_from(first_seen_ms, delay_s=1):
    """The greylist delay is a span of wall-clock time: wait until it has run from first_seen."""
    assert wait_for(lambda: time.time() * 1000 >= first_seen_ms + delay_s * 1000 + 50,
                    timeout=delay_s + 3)


def test_client_that_retries_after_the_delay_is_accepted(start):
    d, api = start()
    assert_greylisted(send(d, "127.0.1.10", "Alice@Example.TEST", ["bob@example.org"]))
    # Stored under the /24, the sender and recipient lower-cased, waiting.
    t = triplets(api, state="waiting")
    assert t["total"] == 1
    row = t["items"][0]
    assert (row["network"], row["sender"], row["recipient"], row["state"]) == \
        ("127.0.1.0/24", "alice@example.test", "bob@example.org", "waiting")
    # A retry before the delay is deferred again and counted.
    assert_greylisted(send(d, "127.0.1.10", "alice@example.test", ["bob@example.org"]))
    assert triplets(api)["items"][0]["attempts"] == 2
    wait_delay_from(row["first_seen"])
    # The retry after the delay, from another address of the same /24, is accepted.
    assert send(d, "127.0.1.77", "alice@example.test", ["bob@example.org"]) == (250, "")
    row = triplets(api, state="passed")["items"][0]
    assert row["state"] == "passed" and row["passes"] == 1 and row["passed_at"] is not None
    assert triplets(api, state="waiting")["total"] == 0
    # A passed triplet stays passed: the next message goes through at once.
    assert send(d, "127.0.1.10", "alice@example.test", ["bob@example.org"]) == (250, "")
    assert triplets(api)["items"][0]["passes"] == 2
    assert d.query("SELECT count(*) FROM queue_message")[0][0] == 2


def test_each_recipient_sender_and_network_is_its_own_triplet(start):
    d, api = start()
    assert_greylisted(send(d, "127.0.2.10", "", ["a@example.org", "b@example.org"]))
    rows = triplets(api, network="127.0.2.99")["items"]
    assert sorted((r["sender"], r["recipient"]) for r in rows) == \
        [("<>", "a@example.org"), ("<>", "b@example.org")]
    wait_delay_from(max(r["first_seen"] for r in rows))
    # Same sender and recipient from another /24: a first sight there.
    assert_greylisted(send(d, "127.0.3.10", "", ["a@example.org"]))
    # The retry with one recipient more: that recipient is new, so the message waits.
    assert_greylisted(send(d, "127.0.2.10", "", ["a@example.org", "c@example.org"]))
    assert triplets(api, network="127.0.2.0/24", recipient="A@EXAMPLE.ORG")["items"][0][
        "state"] == "passed"
    assert triplets(api, network="127.0.2.0/24", state="waiting")["total"] == 2
    assert triplets(api, network="127.0.3.0/24")["total"] == 1


def test_network_auto_allowed_after_passes_and_forgotten_on_delete(start):
    d, api = start(("set", "greylist_auto_allow", "2"))
    for rcpt in ("a@example.org", "b@example.org"):
        assert_greylisted(send(d, "127.0.4.10", "s@example.test", [rcpt]))
    first = max(r["first_seen"] for r in triplets(api)["items"])
    wait_delay_from(first)
    for rcpt in ("a@example.org", "b@example.org"):
        assert send(d, "127.0.4.10", "s@example.test", [rcpt]) == (250, "")
    allowed = api.get("/api/v1/greylist/allowed").json
    assert allowed["auto_allow"] == 2 and allowed["total"] == 1
    net = allowed["items"][0]
    assert (net["network"], net["passes"]) == ("127.0.4.0/24", 2)
    # A sender and recipient never seen, from the allowed network: accepted at once,
    # and no triplet is recorded for it.
    assert send(d, "127.0.4.200", "new@example.test", ["z@example.org"]) == (250, "")
    assert triplets(api, recipient="z@example.org")["total"] == 0
    # Another network is still greylisted.
    assert_greylisted(send(d, "127.0.5.1", "new@example.test", ["z@example.org"]))
    # Forgotten: greylisted again.
    assert api.delete(f"/api/v1/greylist/allowed/{net['id']}").status == 204
    assert api.get("/api/v1/greylist/allowed").json["total"] == 0
    assert_greylisted(send(d, "127.0.4.200", "new2@example.test", ["y@example.org"]))
    assert api.delete(f"/api/v1/greylist/allowed/{net['id']}").status == 404


def test_api_filters_delete_and_bad_parameters(start):
    d, api = start()
    assert_greylisted(send(d, "127.0.6.10", "x@example.test", ["p@example.org"]))
    assert_greylisted(send(d, "127.0.6.10", "y@example.test", ["q@example.org"]))
    assert triplets(api, sender="X@example.test")["total"] == 1
    page = triplets(api, limit=1)
    assert page["total"] == 2 and len(page["items"]) == 1 and page["next_cursor"] is not None
    rest = triplets(api, limit=1, cursor=page["next_cursor"])
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert rest["items"][0]["id"] != page["items"][0]["id"]
    # Deleting a triplet makes its next message a first sight, even after the delay.
    row = triplets(api, sender="x@example.test")["items"][0]
    assert api.delete(f"/api/v1/greylist/{row['id']}").status == 204
    assert api.delete(f"/api/v1/greylist/{row['id']}").expect(404, "not_found")
    wait_delay_from(row["first_seen"])
    assert_greylisted(send(d, "127.0.6.10", "x@example.test", ["p@example.org"]))
    # Every bad parameter is refused naming it.
    for query, field in (("state=gone", "state"), ("network=mail.example.org", "network"),
                         ("network=127.0.6.0/16", "network"), ("limit=0", "limit"),
                         ("cursor=abc", "cursor"), ("bogus=1", "bogus"),
                         ("recipient=" + "r" * 400, "recipient")):
        r = api.get(f"/api/v1/greylist?{query}")
        assert r.status == 422 and r.error["field"] == field, (query, r)
    assert api.get("/api/v1/greylist/allowed?offset=-1").error["field"] == "offset"
    # Deleting all needs {"confirm": true}.
    api.delete("/api/v1/greylist").expect(415)
    api.delete("/api/v1/greylist", body={}).expect(422, field="confirm")
    api.delete("/api/v1/greylist", body={"confirm": False}).expect(422, field="confirm")
    r = api.delete("/api/v1/greylist", body={"confirm": True})
    assert r.status == 200 and r.json["deleted"] == 2
    assert triplets(api)["total"] == 0
    # Administrators only.
    api.create_user("gina", "gina-pass-1")
    user = Api(d.http_port)
    user.login("gina", "gina-pass-1")
    assert user.get("/api/v1/greylist").status == 403
    assert user.delete("/api/v1/greylist/allowed/1").status == 403
    # Each change is audited.
    actions = {e["action"] for e in api.get("/api/v1/audit?limit=20").json["items"]}
    assert {"greylist.delete", "greylist.delete_all"} <= actions


def test_delay_zero_passes_the_first_retry(start):
    d, api = start(("set", "greylist_delay", "0"))
    assert_greylisted(send(d, "127.0.7.10", "z@example.test", ["p@example.org"]))
    assert send(d, "127.0.7.10", "z@example.test", ["p@example.org"]) == (250, "")


def test_spf_pass_keys_by_domain(start):
    """A pool whose SPF passes is keyed by the domain: a retry from another address of the
    pool with another bounce address passes; without an SPF pass the address is the key."""
    d, api = start()
    assert_greylisted(send(d, "127.0.11.5", "bounce-1111@spf.test", ["r@example.org"]))
    row = triplets(api, network="127.0.11.5")["items"][0]
    assert (row["sender"], row["recipient"]) == ("spf.test", "r@example.org")
    wait_delay_from(row["first_seen"])
    assert send(d, "127.0.11.9", "bounce-2222@spf.test", ["r@example.org"]) == (250, "")
    # The same domain from outside its SPF record: SPF fails, the address is the key.
    assert_greylisted(send(d, "127.0.12.5", "bounce-3333@spf.test", ["r@example.org"]))
    assert triplets(api, network="127.0.12.0/24")["items"][0]["sender"] == \
        "bounce-3333@spf.test"
