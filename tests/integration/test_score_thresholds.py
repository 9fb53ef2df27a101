"""Score thresholds per domain and per user, through the real binary: the API (validation,
round trip, audit rows, an end user's own thresholds), `moatd score thresholds`, and over
real SMTP with a real aiosmtpd downstream: a domain's or a user's override decides what
happens to that recipient while the other recipients of the same message keep the global
thresholds."""

import json

import pytest

from conftest import message, qid_of, stuff
from peers_delivery import Downstream, delivery_conf
from peers_policy import applied
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)
from submission_util import add_user, moatd_cli

BASE = "/api/v1/score/thresholds"
GLOBAL = {"tag": 5, "quarantine": 10, "refuse": 15, "greylist": 4}


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


@pytest.fixture
def d(api_moatd, downstream):
    return api_moatd(**delivery_conf(downstream.addr))


@pytest.fixture
def inbound(api_moatd, downstream):
    """A moatd for which the test client (loopback) is a client from outside: loopback is
    taken off relay_net, so its mail is inbound and scored."""
    conf = delivery_conf(downstream.addr)
    conf["seed_policy"] = conf["seed_policy"] + [("remove", "relay_net", "127.0.0.0/8")]
    return api_moatd(**conf)


def admin(d):
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    return api


def audit_rows(d, object_type="score_threshold"):
    return [(a, actor, oid, json.loads(b) if b else None, json.loads(af) if af else None)
            for a, actor, oid, b, af in d.query(
                "SELECT action, actor, object_id, before, after FROM api_audit"
                " WHERE object_type = ? ORDER BY id", (object_type,))]


def values(row):
    return {k: row[k] for k in ("tag", "quarantine", "refuse", "greylist")}


def test_api_round_trip_and_audit(d):
    api = admin(d)
    got = api.get(BASE).expect(200).json
    assert got == {"global": GLOBAL, "items": []}
    g0 = d.query("SELECT generation FROM policy_meta")[0][0]

    row = api.put(f"{BASE}/domain/Example.ORG", {"tag": 4, "quarantine": 8}).expect(200).json
    assert row["scope"] == "domain" and row["name"] == "example.org"
    assert values(row) == {"tag": 4, "quarantine": 8, "refuse": None, "greylist": None}
    assert d.query("SELECT generation FROM policy_meta")[0][0] > g0
    applied(d)
    # A PUT replaces the row: what it leaves out inherits again.
    row = api.put(f"{BASE}/domain/example.org", {"quarantine": 12, "refuse": None,
                                                 "greylist": 2.5}).expect(200).json
    assert values(row) == {"tag": None, "quarantine": 12, "refuse": None, "greylist": 2.5}
    add_user(d, "alice", ["alice@example.org", "al@example.net"], "alice-pass-1")
    api.put(f"{BASE}/user/alice", {"refuse": 40}).expect(200)
    items = api.get(BASE).json["items"]
    assert [(i["scope"], i["name"], values(i)) for i in items] == [
        ("domain", "example.org", {"tag": None, "quarantine": 12, "refuse": None,
                                   "greylist": 2.5}),
        ("user", "alice", {"tag": None, "quarantine": None, "refuse": 40, "greylist": None})]
    assert d.query("SELECT scope, name, tag, quarantine, refuse, greylist FROM score_threshold"
                   " ORDER BY id") == [("domain", "example.org", None, 12.0, None, 2.5),
                                       ("user", "alice", None, None, 40.0, None)]

    # The global values are the policy settings.
    api.put("/api/v1/policy/settings/score_tag", {"value": "3.5"}).expect(200)
    assert api.get(BASE).json["global"] == dict(GLOBAL, tag=3.5)

    api.delete(f"{BASE}/domain/EXAMPLE.org").expect(204)
    api.delete(f"{BASE}/domain/example.org").expect(404)
    assert [i["name"] for i in api.get(BASE).json["items"]] == ["alice"]
    applied(d)

    rows = audit_rows(d)
    assert [(a, actor, oid) for a, actor, oid, _, _ in rows] == [
        ("score_threshold.set", "admin", "domain/example.org"),
        ("score_threshold.set", "admin", "domain/example.org"),
        ("score_threshold.set", "admin", "user/alice"),
        ("score_threshold.delete", "admin", "domain/example.org")]
    assert rows[0][3] is None and rows[0][4]["quarantine"] == 8
    assert rows[1][3]["quarantine"] == 8 and rows[1][4]["quarantine"] == 12
    assert rows[3][3]["greylist"] == 2.5 and rows[3][4] is None


def test_api_validation_names_the_field(d):
    api = admin(d)
    add_user(d, "bob", ["bob@example.org"], "bob-pass-1")
    # Order after inheritance: a value given against what it inherits.
    api.put(f"{BASE}/domain/example.org", {"quarantine": 4}).expect(422, "invalid_value",
                                                                     "quarantine")
    api.put(f"{BASE}/domain/example.org", {"tag": 11}).expect(422, "invalid_value", "tag")
    api.put(f"{BASE}/domain/example.org", {"refuse": 9.5}).expect(422, "invalid_value",
                                                                  "refuse")
    api.put(f"{BASE}/domain/example.org", {"quarantine": 20, "refuse": 18}).expect(
        422, "invalid_value", "quarantine")
    # Greylisting is a band of its own: any value (at or above refuse: never greylisted).
    api.put(f"{BASE}/domain/example.org", {"greylist": 100}).expect(200)
    api.put(f"{BASE}/domain/example.org", {"tag": -3, "quarantine": -2, "refuse": -1}).expect(200)
    # A user's row is checked against its domain's: bob is in example.org (quarantine -2).
    api.put(f"{BASE}/user/bob", {"tag": 0}).expect(422, "invalid_value", "tag")
    api.put(f"{BASE}/user/bob", {"tag": -2.5}).expect(200)
    # Values: numbers in -1000..1000 with at most 3 decimals, or null.
    api.put(f"{BASE}/domain/example.net", {"tag": "5"}).expect(422, "invalid_type", "tag")
    api.put(f"{BASE}/domain/example.net", {"tag": True}).expect(422, "invalid_type", "tag")
    api.put(f"{BASE}/domain/example.net", {"refuse": 1000.5}).expect(422, "invalid_value",
                                                                     "refuse")
    api.put(f"{BASE}/domain/example.net", {"greylist": 0.0001}).expect(422, "invalid_value",
                                                                       "greylist")
    api.put(f"{BASE}/domain/example.net", {"score": 1}).expect(422, "unknown_field", "score")
    api.put(f"{BASE}/domain/example.net", raw=b"{").expect(400)
    api.put(f"{BASE}/domain/exa_mple..net", {"tag": 1}).expect(422, "invalid_value", "name")
    api.put(f"{BASE}/user/nobody", {"tag": 1}).expect(404)
    api.put(f"{BASE}/group/staff", {"tag": 1}).expect(404)
    api.delete(f"{BASE}/user/nobody").expect(404)
    assert d.query("SELECT scope, name FROM score_threshold ORDER BY id") == [
        ("domain", "example.org"), ("user", "bob")]
    # Only what was written is audited.
    assert len(audit_rows(d)) == 3


def test_end_user_sees_and_sets_own_thresholds(d):
    api = admin(d)
    add_user(d, "carol", ["carol@example.org"], "carol-pass-1")
    carol = Api(d.http_port)
    carol.login("carol", "carol-pass-1")
    got = carol.get("/api/v1/account/score").expect(200).json
    assert got["address"] == "carol@example.org" and got["own"] is None
    assert values(got) == GLOBAL
    assert got["source"] == {k: "global" for k in GLOBAL}

    api.put(f"{BASE}/domain/example.org", {"quarantine": 8}).expect(200)
    api.put(f"{BASE}/user/carol", {"refuse": 30}).expect(200)
    got = carol.get("/api/v1/account/score").json
    assert values(got) == {"tag": 5, "quarantine": 8, "refuse": 30, "greylist": 4}
    assert got["source"] == {"tag": "global", "quarantine": "domain:example.org",
                             "refuse": "user:carol", "greylist": "global"}

    # Her own tag and quarantine; the administrator's refuse stays.
    got = carol.put("/api/v1/account/score", {"tag": 2, "quarantine": 6}).expect(200).json
    assert values(got) == {"tag": 2, "quarantine": 6, "refuse": 30, "greylist": 4}
    assert values(got["own"]) == {"tag": 2, "quarantine": 6, "refuse": 30, "greylist": None}
    carol.put("/api/v1/account/score", {"refuse": 100}).expect(422, "unknown_field", "refuse")
    carol.put("/api/v1/account/score", {"quarantine": 50}).expect(422, "invalid_value",
                                                                  "quarantine")
    carol.get(BASE).expect(403)
    carol.put(f"{BASE}/user/carol", {"refuse": 100}).expect(403)
    assert d.query("SELECT tag, quarantine, refuse FROM score_threshold WHERE scope = 'user'") \
        == [(2.0, 6.0, 30.0)]
    rows = audit_rows(d)
    assert rows[-1][:3] == ("score_threshold.set", "carol", "user/carol")
    assert rows[-1][3]["tag"] is None and rows[-1][4]["tag"] == 2


def test_cli_set_list_delete_and_audit(d):
    r = moatd_cli(d, "score", "thresholds", "set", "domain", "Example.ORG", "--quarantine", "8")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == ("domain example.org: tag=inherit quarantine=8 refuse=inherit"
                                 " greylist=inherit\n")
    # set changes only what it is given.
    r = moatd_cli(d, "score", "thresholds", "set", "domain", "example.org", "--tag", "-1.5",
                  "--refuse", "20")
    assert r.returncode == 0, r.stderr
    r = moatd_cli(d, "score", "thresholds", "set", "domain", "example.org", "--refuse",
                  "inherit")
    assert r.returncode == 0, r.stderr
    r = moatd_cli(d, "score", "thresholds", "list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        "scope\tname\ttag\tquarantine\trefuse\tgreylist",
        "global\t-\t5\t10\t15\t4",
        "domain\texample.org\t-1.5\t8\t-\t-"]
    # The checks are the API's.
    r = moatd_cli(d, "score", "thresholds", "set", "domain", "example.org", "--tag", "9")
    assert r.returncode == 1 and "tag" in r.stderr.decode() and "quarantine" in r.stderr.decode()
    r = moatd_cli(d, "score", "thresholds", "set", "user", "nobody", "--tag", "1")
    assert r.returncode == 1 and "no such user" in r.stderr.decode()
    r = moatd_cli(d, "score", "thresholds", "set", "domain", "example.org", "--tag", "x")
    assert r.returncode == 1 and "expected a number" in r.stderr.decode()
    r = moatd_cli(d, "score", "thresholds", "set", "group", "staff", "--tag", "1")
    assert r.returncode == 2
    r = moatd_cli(d, "score", "thresholds", "set", "domain", "example.org")
    assert r.returncode == 2
    assert d.query("SELECT tag, quarantine, refuse FROM score_threshold") == [(-1.5, 8.0, None)]
    applied(d)
    r = moatd_cli(d, "score", "thresholds", "delete", "domain", "example.org")
    assert r.returncode == 0 and r.stdout.decode() == "removed domain example.org\n", r.stderr
    r = moatd_cli(d, "score", "thresholds", "delete", "domain", "example.org")
    assert r.returncode == 1
    assert d.query("SELECT count(*) FROM score_threshold") == [(0,)]
    rows = audit_rows(d)
    assert [(a, actor, oid) for a, actor, oid, _, _ in rows] == \
        [("score_threshold.set", "cli", "domain/example.org")] * 3 + \
        [("score_threshold.delete", "cli", "domain/example.org")]
    assert rows[2][3]["refuse"] == 20 and rows[2][4]["refuse"] is None


def send(d, rcpts, subject):
    c = d.raw()
    try:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        for r in rcpts:
            c.expect_cmd(f"RCPT TO:<{r}>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        c.send(stuff(message(subject=subject)))
        return c.readreply()
    finally:
        c.close()


def quarantined(d, qid):
    return d.query("SELECT rcpt, kind FROM quarantine WHERE qid = ? ORDER BY rcpt", (qid,))


def test_domain_override_quarantines_that_domain_only(inbound, downstream):
    d = inbound
    api = admin(d)
    api.put(f"{BASE}/domain/example.org", {"tag": -100, "quarantine": -100}).expect(200)
    applied(d)
    r = send(d, ["a@example.org", "b@example.net"], "hello")
    assert r.code == 250, r
    qid = qid_of(r)
    assert quarantined(d, qid) == [("a@example.org", "spam")]
    downstream.wait_for(1)
    assert [m["rcpt_tos"] for m in downstream.messages] == [["b@example.net"]]
    # Back to the global thresholds: delivered.
    api.delete(f"{BASE}/domain/example.org").expect(204)
    applied(d)
    r = send(d, ["a@example.org"], "hello again")
    assert r.code == 250, r
    assert quarantined(d, qid_of(r)) == []
    downstream.wait_for(2)
    assert downstream.messages[1]["rcpt_tos"] == ["a@example.org"]


def test_user_override_refuses_or_quarantines_that_user_only(inbound, downstream):
    d = inbound
    api = admin(d)
    add_user(d, "dora", ["dora@example.org", "d.alias@example.org"], "dora-pass-1")
    api.put(f"{BASE}/user/dora", {"tag": -100, "quarantine": -100, "refuse": -100}).expect(200)
    applied(d)
    # Every recipient at or above its refuse threshold: refused before the 250.
    r = send(d, ["d.alias@example.org"], "to dora")
    assert r.code == 550 and "5.7.1" in r.text, r
    # With a recipient that is not: dora's copy is quarantined, the other delivered.
    r = send(d, ["dora@example.org", "eve@example.org"], "to both")
    assert r.code == 250, r
    assert quarantined(d, qid_of(r)) == [("dora@example.org", "spam")]
    downstream.wait_for(1)
    assert [m["rcpt_tos"] for m in downstream.messages] == [["eve@example.org"]]
