"""The score of a message at the end of DATA (docs/score.md): sender authentication against
a real DNS server on loopback (dnsmasq with SPF and DMARC records), the parts and the
thresholds, the X-Moat-Score and Authentication-Results fields in the copy a real downstream
server (aiosmtpd) receives, the message log's score and parts, and the timeline's score event.
"""

import pytest

import time
from urllib.parse import quote
from peers_delivery import Downstream, delivery_conf, header_value, wait_for
from peers_dns import Dnsmasq
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)

# 127.0.0.1 may send for good.test; nobody for bad.test; both publish DMARC p=reject.
TXT = [
    ("good.test", "v=spf1 ip4:127.0.0.1 -all"),
    ("_dmarc.good.test", "v=DMARC1; p=reject"),
    ("bad.test", "v=spf1 -all"),
    ("_dmarc.bad.test", "v=DMARC1; p=reject"),
    ("soft.test", "v=spf1 ~all"),
]


@pytest.fixture(scope="module")
def dns():
    d = Dnsmasq(txt=TXT).start()
    yield d
    d.stop()


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


def start(api_moatd, downstream, dns, settings=()):
    conf = delivery_conf(downstream.addr, dns_servers=dns.servers, dns_timeout="2s")
    # Loopback is on relay_net by default: these clients are from outside.
    conf["seed_policy"] = conf["seed_policy"] + [("remove", "relay_net", "127.0.0.0/8")] + \
        [("set", "score_greylist", "100")] + [("set", k, v) for k, v in settings]
    d = api_moatd(**conf)
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    return d, api


def message(from_, subject):
    return (f"From: <{from_}>\r\nTo: <bob@example.org>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time_ns()}@test>\r\n\r\nHello.\r\n").encode()


def send(d, sender, rcpts, subject="hello"):
    c = d.raw()
    try:
        c.ehlo("client.good.test")
        return c.transaction(sender, rcpts, message(sender, subject))
    finally:
        c.close()


def delivered(downstream, n=1):
    assert wait_for(lambda: len(downstream.messages) >= n, 20), "nothing delivered"
    return downstream.messages[-1]["content"]


def log_entry(api, sender):
    def find():
        items = api.get(f"/api/v1/messages?sender={quote(sender)}").expect(200).json["items"]
        return items[0] if items else None
    e = wait_for(find, 10)
    assert e, f"no message log entry for {sender}"
    return e


def test_spf_and_dmarc_pass_lower_the_score_and_are_reported(api_moatd, downstream, dns):
    d, api = start(api_moatd, downstream, dns)
    r = send(d, "alice@good.test", ["bob@example.org"])
    assert r.code == 250, r
    content = delivered(downstream)
    score = header_value(content, b"X-Moat-Score")
    ar = header_value(content, b"Authentication-Results")
    assert score is not None and score.startswith("-1.50 (none)"), score
    assert "SPF_PASS=-0.50" in score and "DMARC_PASS=-1.00" in score, score
    assert ar is not None and "spf=pass" in ar and "dmarc=pass" in ar, ar
    assert header_value(content, b"X-Spam-Flag") is None
    e = log_entry(api, "alice@good.test")
    assert e["score"] == -1.5, e
    assert {p["name"] for p in e["score_parts"]} == {"SPF_PASS", "DMARC_PASS"}, e
    assert "score=-1.50 (none)" in e["reason"], e
    tl = api.get(f"/api/v1/messages/{e['id']}/timeline").expect(200).json
    ev = [x for x in tl["events"] if x["stage"] == "score"]
    assert ev and ev[0]["event"] == "none" and ev[0]["detail"]["score"] == -1.5, tl


def test_a_score_in_the_greylist_band_defers(api_moatd, downstream, dns):
    d, api = start(api_moatd, downstream, dns, settings=[("score_greylist", "4")])
    r = send(d, "ceo@bad.test", ["bob@example.org"])
    assert r.code == 451 and "4.7.1" in r.text and "Greylisted" in r.text, r
    e = log_entry(api, "ceo@bad.test")
    assert e["result"] == "deferred" and e["check_name"] == "greylist", e
    # A good sender scores below the band and passes at once.
    assert send(d, "alice@good.test", ["bob@example.org"]).code == 250


def test_forged_sender_is_tagged_with_subject_prefix(api_moatd, downstream, dns):
    d, api = start(api_moatd, downstream, dns)
    r = send(d, "ceo@bad.test", ["bob@example.org"], subject="invoice")
    assert r.code == 250, r
    content = delivered(downstream)
    score = header_value(content, b"X-Moat-Score")
    # SPF fail 2 + DMARC fail with p=reject 4 = 6: tag (5) but not quarantine (10).
    assert score.startswith("6.00 (tag)"), score
    assert "SPF_FAIL=2.00" in score and "DMARC_FAIL=4.00" in score, score
    assert header_value(content, b"X-Spam-Flag") == "YES"
    assert header_value(content, b"Subject") == "[SPAM] invoice"
    assert "spf=fail" in header_value(content, b"Authentication-Results")


def test_thresholds_quarantine_and_refuse(api_moatd, downstream, dns):
    d, api = start(api_moatd, downstream, dns,
                   settings=[("score_quarantine", "1"), ("score_refuse", "5.5")])
    # soft.test: SPF softfail 1, no DMARC: quarantined (kind spam), not delivered.
    r = send(d, "x@soft.test", ["bob@example.org"])
    assert r.code == 250, r
    items = wait_for(lambda: api.get("/api/v1/quarantine").expect(200).json["items"], 10)
    assert items and items[0]["kind"] == "spam", items
    assert "score 1.00 (quarantine, global)" in items[0]["reason"], items
    # bad.test: 6 >= 5.5: refused at end of DATA, nothing queued.
    r = send(d, "ceo@bad.test", ["bob@example.org"])
    assert r.code == 550 and "5.7.1" in r.text and "spam" in r.text, r
    e = log_entry(api, "ceo@bad.test")
    assert e["result"] == "refused" and e["check_name"] == "score" and e["score"] == 6.0, e
    assert downstream.messages == []


def test_score_headers_never_and_score_disabled(api_moatd, downstream, dns):
    d, api = start(api_moatd, downstream, dns, settings=[("score_headers", "never")])
    assert send(d, "ceo@bad.test", ["bob@example.org"], subject="s1").code == 250
    content = delivered(downstream)
    assert header_value(content, b"X-Moat-Score") is None
    assert header_value(content, b"Subject") == "[SPAM] s1"  # the tag still applies
    api.put("/api/v1/policy/settings/score_enabled", {"value": "no"}).expect(200)
    # The next session takes the new snapshot once the watcher has it.
    def unscored():
        n = len(downstream.messages)
        assert send(d, "ceo@bad.test", ["bob@example.org"], subject="s2").code == 250
        c = delivered(downstream, n + 1)
        return header_value(c, b"Subject") == "s2"
    assert wait_for(unscored, 15, 0.5)


def test_authenticated_and_relay_mail_gets_no_sender_checks(api_moatd, downstream, dns):
    d, api = start(api_moatd, downstream, dns)
    api.post("/api/v1/policy/entries", {"list": "relay_net", "value": "127.0.0.1"}).expect(201)
    def relayed():
        n = len(downstream.messages)
        assert send(d, "ceo@bad.test", ["bob@example.org"], subject="r").code == 250
        c = delivered(downstream, n + 1)
        return header_value(c, b"Authentication-Results") is None and c
    c = wait_for(relayed, 15, 0.5)
    assert c and header_value(c, b"X-Moat-Score") is None
    assert header_value(c, b"Subject") == "r"


def test_a_silent_name_server_does_not_hold_the_message(api_moatd, downstream, tmp_path):
    """sender_auth_timeout: with a resolver that never answers, the message is judged
    without sender authentication after the timeout, and accepted."""
    import socket
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    try:
        conf = delivery_conf(downstream.addr, dns_servers=f"127.0.0.1:{hole.getsockname()[1]}",
                             dns_timeout="10s")
        conf["seed_policy"] = conf["seed_policy"] + [("remove", "relay_net", "127.0.0.0/8"),
                                                     ("set", "reverse_lookup", "no"),
                                                     ("set", "sender_auth_timeout", "1")]
        d = api_moatd(**conf)
        t0 = time.monotonic()
        r = send(d, "alice@good.test", ["bob@example.org"])
        took = time.monotonic() - t0
        assert r.code == 250, r
        assert 0.9 <= took < 8, took
        assert wait_for(lambda: "sender_auth timeout" in d.log_text(), 5)
        content = delivered(downstream)
        assert header_value(content, b"Authentication-Results") is None
        assert header_value(content, b"X-Moat-Score").startswith("0.00 (none)")
    finally:
        hole.close()


def test_autolearn_learns_confident_mail(api_moatd, downstream, dns):
    """bayes_autolearn: inbound mail whose score (without BAYES) reaches bayes_autolearn_spam
    is learned as spam, at or below bayes_autolearn_ham as ham; off by default."""
    d, api = start(api_moatd, downstream, dns,
                   settings=[("bayes_autolearn_spam", "5"), ("bayes_autolearn_ham", "-1")])

    def counts():
        m = [x for x in api.get("/api/v1/bayes").expect(200).json["models"]
             if x["user_id"] == 0]
        return (m[0]["spam"], m[0]["ham"]) if m else (0, 0)
    assert send(d, "ceo@bad.test", ["bob@example.org"], subject="off").code == 250
    delivered(downstream)
    assert counts() == (0, 0)  # off by default
    api.put("/api/v1/policy/settings/bayes_autolearn", {"value": "yes"}).expect(200)

    def learned():
        n = len(downstream.messages)
        assert send(d, "ceo@bad.test", ["bob@example.org"], subject="x").code == 250
        delivered(downstream, n + 1)
        return counts()[0] >= 1
    assert wait_for(learned, 15, 0.5)            # 6 >= 5: spam
    assert send(d, "alice@good.test", ["bob@example.org"], subject="y").code == 250
    assert wait_for(lambda: counts()[1] == 1, 10)  # -1.5 <= -1: ham
