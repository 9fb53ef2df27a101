"""Rules that test the spam score and add points to it, through the real binary: the rules API
accepts the fields score and score_part and the action score (and answers 422 naming the field
for a bad one), the dry run shows each recipient's points, and over SMTP a rule's points move
a message across the thresholds (refuse at 15, quarantine at 10 by default) while the score the
rules test is the one before any rule's points."""

import pytest

from api_client import ADMIN_PASSWORD, Api, admin_api, api_moatd  # noqa: F401 (fixtures)
from conftest import message, stuff
from peers_delivery import Downstream, delivery_conf
from peers_policy import set_rules


def subject_has(word):
    return {"field": "header", "header": "Subject", "op": "contains", "value": word}


def score(op, value):
    return {"field": "score", "op": op, "value": value}


def part(name, op, value):
    return {"field": "score_part", "name": name, "op": op, "value": value}


def points(p):
    return {"type": "score", "points": p}


# ---- the API -------------------------------------------------------------------------------

def test_rule_api_takes_score_fields_and_points(admin_api):
    d, api = admin_api
    r = api.post("/api/v1/rules", {
        "name": "pills", "when": subject_has("viagra"), "action": points("+20")}).expect(201).json
    # a decimal given as a string is stored and shown as the number it is
    assert r["action"] == {"type": "score", "points": 20}
    r = api.post("/api/v1/rules", {
        "name": "filter sure",
        "when": {"all": [part("BAYES", "greater_than", "1.5"), part("DKIM_PASS", "is", 0)]},
        "except": score("less_than", -2),
        "action": points(-0.5)}).expect(201).json
    assert r["when"] == {"all": [
        {"field": "score_part", "name": "BAYES", "op": "gt", "value": 1.5},
        {"field": "score_part", "name": "DKIM_PASS", "op": "is", "value": 0}]}
    assert r["except"] == {"field": "score", "op": "lt", "value": -2}
    assert r["action"] == {"type": "score", "points": -0.5}
    api.post("/api/v1/rules", {"name": "high", "when": score("gt", 12),
                               "action": {"type": "quarantine", "kind": "spam"}}).expect(201)
    # export and import back: the same set
    exported = api.get("/api/v1/rules/export").expect(200).json
    assert [x["action"] for x in exported][:2] == [points(20), points(-0.5)]
    api.post("/api/v1/rules/import", {"rules": exported, "mode": "replace"}).expect(200)
    assert api.get("/api/v1/rules/export").expect(200).json == exported


@pytest.mark.parametrize("rule,field,words", [
    ({"when": subject_has("x"), "action": points(0)}, "rule.action.points", "not 0"),
    ({"when": subject_has("x"), "action": points(1000.5)}, "rule.action.points", "-1000 to 1000"),
    ({"when": subject_has("x"), "action": points("lots")}, "rule.action.points", "decimal"),
    ({"when": subject_has("x"), "action": points("1e3")}, "rule.action.points", "decimal"),
    ({"when": subject_has("x"), "action": {"type": "score"}}, "rule.action.points", "required"),
    ({"when": score("gt", "high"), "action": {"type": "hold"}}, "rule.when.value", "decimal"),
    ({"when": score("contains", 5), "action": {"type": "hold"}}, "rule.when.op",
     "does not apply to field score"),
    ({"when": {"field": "score_part", "op": "gt", "value": 1}, "action": {"type": "hold"}},
     "rule.when.name", "required for field score_part"),
    ({"when": {"any": [subject_has("x"), part("SPF FAIL", "gt", 1)]}, "action": {"type": "hold"}},
     "rule.when.any[1].name", "invalid score part name"),
    ({"when": dict(score("gt", 1), name="BAYES"), "action": {"type": "hold"}},
     "rule.when.name", "only for field score_part"),
])
def test_rule_api_refuses_bad_score_shapes(admin_api, rule, field, words):
    d, api = admin_api
    e = api.post("/api/v1/rules", dict({"name": "bad"}, **rule)).expect(
        422, "invalid_rule", field).error
    assert words in e["message"], e
    assert api.get("/api/v1/rules").json["items"] == []


def test_import_names_the_rule_with_bad_points(admin_api):
    d, api = admin_api
    api.post("/api/v1/rules/import", {"mode": "replace", "rules": [
        {"name": "ok", "when": subject_has("a"), "action": points(1)},
        {"name": "bad", "when": subject_has("b"), "action": points("+")}]}).expect(
        422, "invalid_rule", "rules[1].action.points")
    assert api.get("/api/v1/rules").json["items"] == []


MSG = "\r\n".join(["From: Shop <s@shop.example>", "To: a@example.org", "Subject: VIAGRA deal",
                   "", "Buy now.", ""])


def test_dry_run_shows_points_per_recipient(admin_api):
    d, api = admin_api
    rules = [
        {"name": "pills", "when": subject_has("viagra"), "action": points(20)},
        {"name": "vip", "when": {"field": "recipient", "op": "is", "value": "vip@example.org"},
         "action": points(-25.5)},
        # the score rules test is the one given, not raised by the points above
        {"name": "seen as given", "when": score("gt", 10), "action": points(100)},
        {"name": "bayes", "when": part("bayes", "gt", 1), "action": points(2.5)},
        {"name": "hold high", "when": part("DNSBL_zen.spamhaus.org", "is", 3),
         "action": {"type": "hold"}},
        {"name": "behind the hold", "when": subject_has("deal"), "action": points(7)},
    ]
    body = {"message": MSG, "recipients": ["a@example.org", "vip@example.org"], "rules": rules,
            "score": 4.25, "score_parts": {"BAYES": 3.25, "DNSBL_zen.spamhaus.org": 3}}
    r = api.post("/api/v1/rules/test", body).expect(200).json["results"][0]
    by = {x["recipient"]: x for x in r["recipients"]}
    assert by["a@example.org"]["points"] == 22.5, by
    assert by["vip@example.org"]["points"] == -3, by
    assert by["a@example.org"]["action"] == "hold"
    assert [m["name"] for m in r["matched"]] == ["pills", "vip", "bayes", "hold high"]
    # with no score given the score and its parts are 0: nothing holds, the last rule adds 7
    del body["score"], body["score_parts"]
    r = api.post("/api/v1/rules/test", body).expect(200).json["results"][0]
    assert [x["points"] for x in r["recipients"]] == [27, 1.5]
    assert r["recipients"][0]["action"] == "deliver"
    api.post("/api/v1/rules/test", dict(body, score="high")).expect(422, "invalid_value", "score")
    api.post("/api/v1/rules/test", dict(body, score_parts={"BAYES": "x"})).expect(
        422, "invalid_value", "score_parts")
    api.post("/api/v1/rules/test", dict(body, score_parts=[1])).expect(
        422, "invalid_value", "score_parts")


# ---- over SMTP (the score at the end of DATA) ----------------------------------------------

@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


@pytest.fixture
def d(api_moatd, downstream):
    d = api_moatd(**delivery_conf(downstream.addr))
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    # no DNS on loopback here: the score is the rules' points alone
    api.put("/api/v1/policy/settings/sender_auth", {"value": "no"}).expect(200)
    return d


def send(d, subject, rcpts=("a@example.org",)):
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


def test_points_over_the_refusal_threshold_refuse(d, downstream):
    set_rules(d, [{"name": "pills", "when": subject_has("VIAGRA"), "action": points(20)}])
    r = send(d, "Cheap viagra now")
    assert r.code == 550 and "5.7.1" in r.text, r
    assert d.query("SELECT count(*) FROM queue_message") == [(0,)]
    d.log_rows("result = 'refused'")
    # another subject gets no points and is delivered
    r = send(d, "lunch")
    assert r.code == 250, r
    downstream.wait_for(1)


def test_points_in_the_quarantine_band_quarantine(d, downstream):
    set_rules(d, [{"name": "offer", "when": subject_has("offer"), "action": points(12)}])
    r = send(d, "A special offer")
    assert r.code == 250, r
    q = d.query("SELECT rcpt, kind FROM quarantine")
    assert q == [("a@example.org", "spam")], q


def test_negative_points_take_points_back(d, downstream):
    set_rules(d, [
        {"name": "pills", "when": subject_has("viagra"), "action": points(20)},
        {"name": "our pharmacy", "when": subject_has("pharmacy newsletter"), "action": points(-18)},
    ])
    r = send(d, "viagra - pharmacy newsletter")
    assert r.code == 250, r
    downstream.wait_for(1)
    assert d.query("SELECT count(*) FROM quarantine") == [(0,)]


def test_rules_see_the_score_before_rule_points(d, downstream):
    # Were the points of the first rule visible to the second, it would accept the message
    # (an administrator's accept leaves the score nothing to decide) and it would be
    # delivered.  The second rule sees the score before points, does not match, and the
    # points refuse the message.
    set_rules(d, [
        {"name": "pills", "when": subject_has("viagra"), "action": points(20)},
        {"name": "accept what scores high", "when": score("gt", 10), "action": {"type": "accept"}},
    ])
    r = send(d, "viagra")
    assert r.code == 550 and "5.7.1" in r.text, r


def test_score_part_conditions_over_smtp(d, downstream):
    # Without sender authentication, DNSBL or a trained filter the message's score has no
    # parts: BAYES counts as 0, so the first rule adds 16 points and the message is refused.
    set_rules(d, [
        {"name": "no filter opinion", "when": {"all": [part("BAYES", "is", 0), score("lt", 1),
                                                         subject_has("probe")]},
         "action": points(16)},
        {"name": "never", "when": part("BAYES", "greater_than", 1), "action": points(-100)},
    ])
    r = send(d, "probe")
    assert r.code == 550 and "5.7.1" in r.text, r
