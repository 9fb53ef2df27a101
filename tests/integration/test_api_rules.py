"""Server mail rules through the API (/api/v1/rules): CRUD with errors naming the place in
the rule, order, export/import round trip, imports that change nothing on error, the dry run
(on a message with three recipients, on an unsaved set, over the last queued messages), the
policy generation, audit rows and roles."""

import json

from api_client import ADMIN_PASSWORD, Api, admin_api, api_moatd  # noqa: F401
from conftest import message, wait_for
from peers_delivery import send

CRLF = "\r\n"

# A promo newsletter with an attachment (the docs/rules.md example, per recipient).
NEWSLETTER = CRLF.join([
    "From: Promo <news@shop.example>",
    "To: carol@example.org, old-dave@example.org, erin@example.org",
    "Subject: =?UTF-8?Q?Big_sale_=E2=80=94_this_week?=",
    "List-Id: Shop promo <promo.shop.example>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="b1"',
    "",
    "--b1",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "Visit https://deals.shop.example/now for the sale.",
    "--b1",
    "Content-Type: application/pdf",
    'Content-Disposition: attachment; filename="catalogue.pdf"',
    "Content-Transfer-Encoding: base64",
    "",
    "JVBERi0xLjQK",
    "--b1--",
    "",
])

STAFF = {"name": "staff get everything",
         "when": {"field": "recipient", "op": "is", "value": "carol@example.org"},
         "action": {"type": "accept"}}
OLD = {"name": "old addresses",
       "when": {"field": "recipient", "op": "starts_with", "value": "old-"},
       "action": {"type": "redirect", "address": "helpdesk@example.org"}}
PROMO = {"name": "newsletters",
         "when": {"field": "header", "header": "List-Id", "op": "contains", "value": "promo"},
         "action": {"type": "quarantine"}}


def generation(d):
    return d.query("SELECT generation FROM policy_meta")[0][0]


def rule_audit(d):
    return [r[0] for r in d.query("SELECT action FROM api_audit WHERE object_type = 'rule'"
                                  " ORDER BY id")]


def test_rules_crud_order_and_audit(admin_api):
    d, api = admin_api
    assert api.get("/api/v1/rules").expect(200).json == {"items": [], "next_cursor": None}
    g0 = generation(d)
    a = api.post("/api/v1/rules", PROMO).expect(201).json
    assert generation(d) == g0 + 1
    assert a["name"] == "newsletters" and a["enabled"] is True and a["position"] == 0
    assert a["except"] is None and a["comment"] == "" and a["hits"] == 0
    assert a["last_hit"] is None and a["created_at"] > 0 and a["updated_at"] >= a["created_at"]
    assert a["when"]["header"] == "List-Id" and a["action"] == {"type": "quarantine"}
    b = api.post("/api/v1/rules", OLD).expect(201).json
    c = api.post("/api/v1/rules", dict(STAFF, position=0)).expect(201).json  # inserted first
    ids = [r["id"] for r in api.get("/api/v1/rules").json["items"]]
    assert ids == [c["id"], a["id"], b["id"]]
    assert [r["position"] for r in api.get("/api/v1/rules").json["items"]] == [0, 1, 2]
    assert api.get(f"/api/v1/rules/{a['id']}").expect(200).json == dict(a, position=1)

    # PUT replaces the definition; PATCH switches and renames.
    put = dict(PROMO, comment="quarantine promo lists", action={"type": "hold"})
    r = api.put(f"/api/v1/rules/{a['id']}", put).expect(200).json
    assert r["action"] == {"type": "hold"} and r["comment"] == "quarantine promo lists"
    assert r["id"] == a["id"] and r["position"] == 1
    g1 = generation(d)
    r = api.patch(f"/api/v1/rules/{a['id']}", {"enabled": False}).expect(200).json
    assert r["enabled"] is False and r["action"] == {"type": "hold"}
    assert generation(d) == g1 + 1
    assert [x["id"] for x in api.get("/api/v1/rules?enabled=false").json["items"]] == [a["id"]]
    assert len(api.get("/api/v1/rules?enabled=true").json["items"]) == 2
    api.patch(f"/api/v1/rules/{a['id']}", {"name": "promo lists", "enabled": True}).expect(200)
    api.patch(f"/api/v1/rules/{a['id']}", {"action": {"type": "accept"}}).expect(
        422, "unknown_field", "action")
    api.patch(f"/api/v1/rules/{a['id']}", {"name": ""}).expect(422, "invalid_rule",
                                                                  "rule.name")

    # Order: a permutation, or 422 on "ids" and nothing changes.
    new = [b["id"], a["id"], c["id"]]
    items = api.put("/api/v1/rules/order", {"ids": new}).expect(200).json["items"]
    assert [x["id"] for x in items] == new and [x["position"] for x in items] == [0, 1, 2]
    for bad in ([b["id"], a["id"]], [b["id"], a["id"], a["id"]], [b["id"], a["id"], 999],
                [b["id"], a["id"], c["id"], 999]):
        api.put("/api/v1/rules/order", {"ids": bad}).expect(422, "invalid_value", "ids")
    api.put("/api/v1/rules/order", {"ids": "x"}).expect(422, "invalid_value", "ids")
    assert [x["id"] for x in api.get("/api/v1/rules").json["items"]] == new

    # 404s.
    api.get("/api/v1/rules/9999").expect(404, "not_found")
    api.put("/api/v1/rules/9999", PROMO).expect(404, "not_found")
    api.patch("/api/v1/rules/9999", {"enabled": False}).expect(404, "not_found")
    api.delete("/api/v1/rules/9999").expect(404, "not_found")

    g2 = generation(d)
    api.delete(f"/api/v1/rules/{c['id']}").expect(204)
    assert generation(d) == g2 + 1
    api.get(f"/api/v1/rules/{c['id']}").expect(404)
    assert [x["position"] for x in api.get("/api/v1/rules").json["items"]] == [0, 1]
    assert wait_for(lambda: f"policy loaded generation={generation(d)}" in d.log_text(),
                    timeout=5)

    assert rule_audit(d) == ["rule.create"] * 3 + ["rule.update"] * 3 + ["rule.order",
                                                                         "rule.delete"]
    row = d.query("SELECT actor, via, object_id, before, after FROM api_audit"
                  " WHERE action = 'rule.delete'")[0]
    assert row[0] == "admin" and row[1] == "session" and row[2] == str(c["id"])
    assert json.loads(row[3])["name"] == STAFF["name"] and row[4] is None
    via_api = [x["action"] for x in api.get("/api/v1/audit?object_type=rule").json["items"]]
    assert via_api[0] == "rule.delete" and len(via_api) == 8


def test_rule_errors_name_the_path(admin_api):
    d, api = admin_api
    g0 = generation(d)
    bad_regex = {"name": "r", "when": {"all": [
        {"field": "sender", "op": "contains", "value": "x"},
        {"field": "header", "header": "Subject", "op": "matches", "value": "(abc"}]},
        "action": {"type": "discard"}}
    e = api.post("/api/v1/rules", bad_regex).expect(422, "invalid_rule",
                                                    "rule.when.all[1].value").error
    assert "invalid regular expression" in e["message"]
    assert e["message"].startswith("rule.when.all[1].value: ")
    api.post("/api/v1/rules", dict(PROMO, expect={"field": "sender", "op": "is",
                                                  "value": "x"})).expect(
        422, "unknown_field", "rule.expect")
    api.post("/api/v1/rules", {"name": "r", "when": {"field": "size", "op": "contains",
                                                     "value": "1"},
                               "action": {"type": "accept"}}).expect(
        422, "invalid_rule", "rule.when.op")
    api.post("/api/v1/rules", {"name": "r", "when": PROMO["when"],
                               "action": {"type": "refuse", "code": 650}}).expect(
        422, "invalid_rule", "rule.action.code")
    api.post("/api/v1/rules", dict(PROMO, position=-1)).expect(422, "invalid_value", "position")
    # A Vectorscan limit: refused when the rule is compiled alone, naming it "rule".
    e = api.post("/api/v1/rules", {"name": "huge", "when": {
        "field": "body", "op": "matches", "value": "a.{5000}b"},
        "action": {"type": "hold"}}).expect(422).error
    assert e["field"].startswith("rule"), e
    assert api.post("/api/v1/rules", raw=b"[1,2]").status in (400, 422)
    assert api.get("/api/v1/rules").json["items"] == []
    assert generation(d) == g0 and rule_audit(d) == []


def test_export_import_round_trip_and_atomic_import(admin_api):
    d, api = admin_api
    for r in (STAFF, dict(OLD, enabled=False, comment="kept off"), PROMO):
        api.post("/api/v1/rules", r).expect(201)
    exp = api.get("/api/v1/rules/export").expect(200).json
    assert [x["name"] for x in exp] == [STAFF["name"], OLD["name"], PROMO["name"]]
    for x in exp:
        assert not set(x) & {"id", "position", "hits", "last_hit", "created_at", "updated_at"}
    assert exp[1]["enabled"] is False and exp[1]["comment"] == "kept off"

    out = api.post("/api/v1/rules/import", {"rules": exp}).expect(200).json
    assert out["imported"] == 3 and len(out["items"]) == 3
    assert api.get("/api/v1/rules/export").json == exp
    out = api.post("/api/v1/rules/import", {"rules": exp[:1], "mode": "append"}).expect(200).json
    assert out["imported"] == 1 and len(out["items"]) == 4
    api.post("/api/v1/rules/import", {"rules": exp}).expect(200)
    assert api.get("/api/v1/rules/export").json == exp

    # A bad set changes nothing: no row, no generation, no audit row.
    before = api.get("/api/v1/rules").json
    g0, n0 = generation(d), len(rule_audit(d))
    bad = exp + [dict(PROMO, when={"field": "helo", "op": "matches", "value": "[z-a]"})]
    api.post("/api/v1/rules/import", {"rules": bad}).expect(422, "invalid_rule",
                                                            "rules[3].when.value")
    api.post("/api/v1/rules/import", {"rules": [dict(PROMO, colour="red")]}).expect(
        422, "unknown_field", "rules[0].colour")
    api.post("/api/v1/rules/import", {"rules": exp, "mode": "merge"}).expect(
        422, "invalid_value", "mode")
    api.post("/api/v1/rules/import", {"rules": {"a": 1}}).expect(422, "invalid_rule", "rules")
    api.post("/api/v1/rules/import", {"rules": exp, "extra": 1}).expect(
        422, "unknown_field", "extra")
    assert api.get("/api/v1/rules").json == before
    assert generation(d) == g0 and len(rule_audit(d)) == n0
    assert rule_audit(d)[-1] == "rule.import"


def test_dry_run_per_recipient_and_unsaved_set(admin_api):
    d, api = admin_api
    saved = [api.post("/api/v1/rules", r).expect(201).json for r in (STAFF, OLD, PROMO)]
    g0 = generation(d)
    rcpts = ["carol@example.org", "old-dave@example.org", "erin@example.org"]
    res = api.post("/api/v1/rules/test", {"message": NEWSLETTER, "sender": "news@shop.example",
                                          "recipients": rcpts}).expect(200).json["results"]
    assert len(res) == 1
    r = res[0]
    assert r["qid"] is None and r["subject"] == "Big sale \u2014 this week"
    assert r["mime_flags"] == []
    by = {x["recipient"]: x for x in r["recipients"]}
    assert by["carol@example.org"]["action"] == "accept"
    assert by["carol@example.org"]["rule"] == {"id": saved[0]["id"], "index": 0,
                                               "name": STAFF["name"]}
    assert by["old-dave@example.org"]["action"] == "redirect"
    assert by["old-dave@example.org"]["address"] == "helpdesk@example.org"
    assert by["old-dave@example.org"]["rule"]["id"] == saved[1]["id"]
    assert by["erin@example.org"]["action"] == "quarantine"
    assert by["erin@example.org"]["rule"]["index"] == 2
    assert [m["id"] for m in r["matched"]] == [s["id"] for s in saved]
    # Nothing counted, nothing changed.
    assert all(x["hits"] == 0 for x in api.get("/api/v1/rules").json["items"])
    assert generation(d) == g0

    # An unsaved set: tag and bcc accumulate, refuse decides; ids are null.
    unsaved = [
        {"name": "tag pdf", "when": {"field": "attachment_type", "op": "is",
                                     "value": "application/pdf"},
         "action": {"type": "tag", "subject_prefix": "[PDF] ", "header": "X-Pdf: yes"}},
        {"name": "copy", "when": {"field": "url_host", "op": "ends_with",
                                  "value": "shop.example"},
         "action": {"type": "bcc", "address": "audit@example.org"}},
        {"name": "no erin", "when": {"field": "recipient", "op": "is",
                                     "value": "erin@example.org"},
         "action": {"type": "refuse", "code": 550, "enhanced": "5.7.1", "text": "Not here"}},
    ]
    r = api.post("/api/v1/rules/test", {"message": NEWSLETTER, "recipients": rcpts,
                                        "rules": unsaved}).expect(200).json["results"][0]
    by = {x["recipient"]: x for x in r["recipients"]}
    assert by["carol@example.org"]["action"] == "deliver" and by["carol@example.org"]["rule"] is None
    assert by["carol@example.org"]["subject_prefixes"] == ["[PDF] "]
    assert by["carol@example.org"]["headers"] == ["X-Pdf: yes"]
    assert by["carol@example.org"]["bcc"] == ["audit@example.org"]
    e = by["erin@example.org"]
    assert (e["action"], e["code"], e["enhanced"], e["text"]) == ("refuse", 550, "5.7.1",
                                                                 "Not here")
    assert e["rule"] == {"id": None, "index": 2, "name": "no erin"}
    assert [m["index"] for m in r["matched"]] == [0, 1, 2]

    # Defaults: one recipient; an in_list condition answered from the policy's lists.
    api.post("/api/v1/policy/entries", {"list": "sender_deny", "value": "*.shop.example"}
             ).expect(201)
    listed = [{"name": "listed sender", "when": {"field": "sender", "op": "in_list",
                                                 "value": "sender_deny"},
               "action": {"type": "discard"}}]
    r = api.post("/api/v1/rules/test", {"message": NEWSLETTER, "sender": "a@mail.shop.example",
                                        "rules": listed}).expect(200).json["results"][0]
    assert [x["action"] for x in r["recipients"]] == ["discard"]
    r = api.post("/api/v1/rules/test", {"message": NEWSLETTER, "sender": "a@other.example",
                                        "rules": listed}).expect(200).json["results"][0]
    assert [x["action"] for x in r["recipients"]] == ["deliver"]

    # Bad input.
    api.post("/api/v1/rules/test", {"recipients": rcpts}).expect(422, "invalid_body", "message")
    api.post("/api/v1/rules/test", {"message": "x", "last": 1}).expect(422, field="message")
    api.post("/api/v1/rules/test", {"last": 101}).expect(422, "invalid_value", "last")
    api.post("/api/v1/rules/test", {"message": "x", "recipients": []}).expect(
        422, "invalid_value", "recipients")
    api.post("/api/v1/rules/test", {"message": "x", "bogus": 1}).expect(
        422, "unknown_field", "bogus")
    api.post("/api/v1/rules/test", {"message": "x", "rules": [dict(PROMO, when={
        "field": "body", "op": "matches", "value": "("})]}).expect(
        422, "invalid_rule", "rules[0].when.value")


def test_dry_run_over_last_queued_messages(admin_api):
    d, api = admin_api  # delivery off: what is sent stays queued
    q1 = send(d, "alice@example.net", ["a@one.test", "b@two.test"], subject="first one")
    q2 = send(d, "bob@example.net", ["c@two.test"], subject="second one")
    api.post("/api/v1/rules", {"name": "two.test", "when": {
        "field": "recipient", "op": "ends_with", "value": "@two.test"},
        "action": {"type": "hold"}}).expect(201)
    api.post("/api/v1/rules", {"name": "from bob", "when": {
        "field": "sender", "op": "is", "value": "bob@example.net"},
        "action": {"type": "tag", "subject_prefix": "[BOB] "}}).expect(201)
    res = api.post("/api/v1/rules/test", {"last": 5}).expect(200).json["results"]
    assert [r["qid"] for r in res] == [q2, q1]
    assert [r["subject"] for r in res] == ["second one", "first one"]
    acts = {x["recipient"]: x["action"] for x in res[1]["recipients"]}
    assert acts == {"a@one.test": "deliver", "b@two.test": "hold"}
    assert [x["action"] for x in res[0]["recipients"]] == ["hold"]
    assert res[0]["recipients"][0]["subject_prefixes"] == []  # hold decided first
    assert [m["name"] for m in res[0]["matched"]] == ["two.test"]
    res = api.post("/api/v1/rules/test", {"last": 1}).expect(200).json["results"]
    assert [r["qid"] for r in res] == [q2]
    assert all(x["hits"] == 0 for x in api.get("/api/v1/rules").json["items"])
    # The dry run acted on nothing.
    assert {r[0] for r in d.query("SELECT state FROM queue_rcpt")} == {"queued"}


def test_rules_are_for_administrators(admin_api):
    d, admin = admin_api
    rule = admin.post("/api/v1/rules", PROMO).expect(201).json
    admin.create_user("ursula", password="ursula-pass-1")
    u = Api(d.http_port)
    u.login("ursula", "ursula-pass-1")
    tok = Api(d.http_port, token=u.create_token("u-t")["token"])
    for who in (u, tok):
        who.get("/api/v1/rules").expect(403, "forbidden")
        who.post("/api/v1/rules", PROMO).expect(403, "forbidden")
        who.get(f"/api/v1/rules/{rule['id']}").expect(403, "forbidden")
        who.put(f"/api/v1/rules/{rule['id']}", PROMO).expect(403, "forbidden")
        who.patch(f"/api/v1/rules/{rule['id']}", {"enabled": False}).expect(403, "forbidden")
        who.delete(f"/api/v1/rules/{rule['id']}").expect(403, "forbidden")
        who.put("/api/v1/rules/order", {"ids": [rule["id"]]}).expect(403, "forbidden")
        who.get("/api/v1/rules/export").expect(403, "forbidden")
        who.post("/api/v1/rules/import", {"rules": []}).expect(403, "forbidden")
        who.post("/api/v1/rules/test", {"message": "x"}).expect(403, "forbidden")
    assert len(admin.get("/api/v1/rules").json["items"]) == 1
    assert rule_audit(d) == ["rule.create"]
    # A message built with the test helper goes through the dry run as bytes decoded.
    r = admin.post("/api/v1/rules/test", {"message": message(subject="hi").decode()}).expect(
        200).json["results"][0]
    assert r["subject"] == "hi" and r["recipients"][0]["recipient"] == "user@example.org"
