"""Per-user mailbox rules through the API (docs/mailbox-rules.md): CRUD with errors naming the
place in the rule, order, bulk, duplicate, export/import round trip, 10,000 rules in one import,
the limits (422), the dry run, audit rows and the role matrix (a user never sees another user's
set; a group's managers edit the group's set; an administrator acts for a user)."""

import json

from api_client import ADMIN_PASSWORD, Api, admin_api, api_moatd  # noqa: F401

CRLF = "\r\n"
MINE = "/api/v1/account/rules"

SHIPS = {"name": "ship reports",
         "when": {"field": "header", "header": "Subject", "op": "contains",
                  "value": "noon report"},
         "actions": [{"type": "move", "folder": "Fleet/Reports"}, {"type": "stop"}]}
BOSS = {"name": "boss",
        "when": {"field": "sender", "op": "is", "value": "boss@example.org"},
        "actions": [{"type": "importance", "value": "high"},
                    {"type": "copy", "folder": "Boss"},
                    {"type": "tag_subject", "prefix": "[boss] "},
                    {"type": "add_header", "name": "X-Sorted", "value": "boss"},
                    {"type": "keep"}]}


def user(admin, name, address):
    r = admin.post("/api/v1/users", {"name": name, "password": "password-xxxx",
                                     "addresses": [address]}).expect(201)
    api = Api(admin.port)
    api.login(name, "password-xxxx")
    return r.json["id"], api


def audit(d):
    return [r[0] for r in d.query("SELECT action FROM api_audit WHERE object_type ="
                                  " 'mailbox_rule' ORDER BY id")]


def test_crud_order_bulk_duplicate_and_audit(admin_api):
    d, admin = admin_api
    _, ann = user(admin, "ann", "ann@example.org")
    assert ann.get(MINE).expect(200).json == {"items": [], "next_cursor": None}
    a = ann.post(MINE, SHIPS).expect(201).json
    b = ann.post(MINE, BOSS).expect(201).json
    assert a["position"] == 0 and b["position"] == 1 and a["hits"] == 0
    assert b["actions"] == BOSS["actions"]
    gen = d.query("SELECT generation FROM mailbox_ruleset")[0][0]
    # a rule placed first moves the others down
    c = ann.post(MINE, dict(SHIPS, name="first", position=0)).expect(201).json
    assert [r["id"] for r in ann.get(MINE).expect(200).json["items"]] == [c["id"], a["id"], b["id"]]
    assert d.query("SELECT generation FROM mailbox_ruleset")[0][0] > gen
    assert d.query("SELECT generation FROM policy_meta")[0][0] is not None
    # show, patch, replace
    assert ann.get(f"{MINE}/{a['id']}").expect(200).json["name"] == "ship reports"
    assert ann.patch(f"{MINE}/{a['id']}", {"enabled": False}).expect(200).json["enabled"] is False
    r = ann.put(f"{MINE}/{a['id']}", dict(SHIPS, name="renamed")).expect(200).json
    assert r["name"] == "renamed" and r["enabled"] is True
    # order: a permutation only
    ann.put(f"{MINE}/order", {"ids": [b["id"], a["id"]]}).expect(422, field="ids")
    ann.put(f"{MINE}/order", {"ids": [b["id"], b["id"], a["id"]]}).expect(422, field="ids")
    got = ann.put(f"{MINE}/order", {"ids": [b["id"], a["id"], c["id"]]}).expect(200).json
    assert [x["id"] for x in got["items"]] == [b["id"], a["id"], c["id"]]
    # duplicate lands right after its original
    dup = ann.post(f"{MINE}/{b['id']}/duplicate").expect(201).json
    assert dup["name"] == "boss (copy)" and dup["position"] == 1
    # search and filter
    ann.post(f"{MINE}/bulk", {"ids": [a["id"], c["id"]], "op": "disable"}).expect(200)
    assert [x["id"] for x in ann.get(MINE + "?enabled=false").expect(200).json["items"]] == \
        [a["id"], c["id"]]
    assert [x["id"] for x in ann.get(MINE + "?q=Fleet/Reports").expect(200).json["items"]] == \
        [a["id"], c["id"]]
    page = ann.get(MINE + "?limit=2").expect(200).json
    assert len(page["items"]) == 2 and page["next_cursor"] is not None
    rest = ann.get(MINE + "?limit=2&cursor=" + page["next_cursor"]).expect(200).json
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    ann.post(f"{MINE}/bulk", {"ids": [dup["id"], c["id"]], "op": "delete"}).expect(200)
    assert len(ann.get(MINE).expect(200).json["items"]) == 2
    ann.delete(f"{MINE}/{a['id']}").expect(204)
    ann.get(f"{MINE}/{a['id']}").expect(404)
    assert audit(d) == ["mailbox_rule.create"] * 3 + ["mailbox_rule.update"] * 2 + [
        "mailbox_rule.order", "mailbox_rule.create", "mailbox_rule.bulk", "mailbox_rule.bulk",
        "mailbox_rule.delete"]


def test_errors_name_the_field_and_limits(api_moatd):
    d = api_moatd(mailbox_rules_max="3", mailbox_rule_value_max="64")
    admin = Api(d.http_port)
    admin.login("admin", ADMIN_PASSWORD)
    _, ann = user(admin, "ann", "ann@example.org")
    bad = dict(SHIPS, actions=[{"type": "move", "folder": "A/../B"}])
    ann.post(MINE, bad).expect(422, field="rule.actions[0].folder")
    bad = dict(SHIPS, actions=[{"type": "keep"}, {"type": "forward", "address": "x@elsewhere.net"}])
    ann.post(MINE, bad).expect(422, field="rule.actions[1].address")
    ann.post(MINE, dict(SHIPS, actions=[{"type": "forward", "address": "ann@example.org"}])).expect(201)
    ann.post(MINE, dict(SHIPS, actions=[])).expect(422, field="rule.actions")
    ann.post(MINE, dict(SHIPS, action={"type": "accept"})).expect(422, field="rule.action")
    ann.post(MINE, dict(SHIPS, actions=[{"type": "accept"}])).expect(422, field="rule.actions[0].type")
    ann.post(MINE, dict(SHIPS, when={"field": "importance", "op": "is", "value": "urgent"})).expect(
        422, field="rule.when.value")
    ann.post(MINE, dict(SHIPS, when={"field": "to_cc", "op": "contains", "value": "x" * 65})).expect(
        422, field="rule.when.value")
    ann.post(MINE, dict(SHIPS, when={"field": "importance", "op": "is", "value": "high"})).expect(201)
    ann.post(MINE, SHIPS).expect(201)
    ann.post(MINE, SHIPS).expect(422, field="rule")
    ann.post(f"{MINE}/import", {"rules": [SHIPS] * 4}).expect(422, field="rules")
    # the administrator may allow forwarding elsewhere
    admin.put("/api/v1/policy/settings/mailbox_forward_external", {"value": "yes"}).expect(200)
    ann.put(f"{MINE}/{ann.get(MINE).json['items'][0]['id']}",
            dict(SHIPS, actions=[{"type": "forward_copy", "address": "x@elsewhere.net"}])).expect(200)
    # refusal sets has_refuse in the same change
    assert d.query("SELECT has_refuse FROM mailbox_ruleset")[0][0] == 0
    first = ann.get(MINE).json["items"][0]["id"]
    ann.put(f"{MINE}/{first}", dict(SHIPS, actions=[{"type": "refuse", "text": "no thanks"}])).expect(200)
    assert d.query("SELECT has_refuse FROM mailbox_ruleset")[0][0] == 1
    ann.patch(f"{MINE}/{first}", {"enabled": False}).expect(200)
    assert d.query("SELECT has_refuse FROM mailbox_ruleset")[0][0] == 0


def test_export_import_round_trip_and_ten_thousand(admin_api):
    d, admin = admin_api
    _, ann = user(admin, "ann", "ann@example.org")
    ann.post(MINE, SHIPS).expect(201)
    ann.post(MINE, BOSS).expect(201)
    exported = ann.get(f"{MINE}/export").expect(200).json
    assert [r["name"] for r in exported] == ["ship reports", "boss"]
    assert exported[1]["actions"] == BOSS["actions"]
    assert ann.post(f"{MINE}/import", {"rules": exported, "mode": "append"}).expect(200).json == \
        {"imported": 2, "total": 4}
    ann.post(f"{MINE}/import", {"rules": exported}).expect(200)
    assert ann.get(f"{MINE}/export").expect(200).json == exported
    # an error anywhere changes nothing
    ann.post(f"{MINE}/import", {"rules": exported + [dict(SHIPS, actions=[{"type": "move"}])]}).expect(
        422, field="rules[2].actions[0].folder")
    assert ann.get(f"{MINE}/export").expect(200).json == exported
    # 10,000 rules (about 1.5 MB, past http_max_body) in one request
    many = [{"name": f"ship {i}",
             "when": {"field": "header", "header": "Subject", "op": "contains",
                      "value": f"voyage-{i:05d} report"},
             "actions": [{"type": "move", "folder": f"Fleet/Ship {i}"}]} for i in range(10000)]
    body = json.dumps({"rules": many, "mode": "replace"})
    assert len(body) > 1024 * 1024
    got = ann.post(f"{MINE}/import", {"rules": many, "mode": "replace"}).expect(200).json
    assert got == {"imported": 10000, "total": 10000}
    page = ann.get(MINE + "?q=voyage-09999").expect(200).json["items"]
    assert [r["name"] for r in page] == ["ship 9999"]
    # the dry run says which rule matched and where the message goes
    msg = CRLF.join(["From: master@ship.example", "To: ann@example.org",
                     "Subject: voyage-09999 report", "", "all well", ""])
    out = ann.post(f"{MINE}/test", {"message": msg}).expect(200).json
    assert out["address"] == "ann@example.org"
    matched = [r for r in out["rules"] if r["matched"]]
    assert [r["name"] for r in matched] == ["ship 9999"]


def test_role_matrix(admin_api):
    d, admin = admin_api
    ann_id, ann = user(admin, "ann", "ann@example.org")
    bob_id, bob = user(admin, "bob", "bob@example.org")
    a = ann.post(MINE, SHIPS).expect(201).json
    # bob sees nothing of ann's set, by id or by base
    bob.get(f"{MINE}/{a['id']}").expect(404)
    bob.put(f"{MINE}/{a['id']}", SHIPS).expect(404)
    bob.delete(f"{MINE}/{a['id']}").expect(404)
    bob.post(f"{MINE}/{a['id']}/duplicate").expect(404)
    bob.post(f"{MINE}/bulk", {"ids": [a["id"]], "op": "delete"}).expect(404)
    bob.get(f"/api/v1/users/{ann_id}/rules").expect(404)
    bob.post(f"/api/v1/users/{ann_id}/rules", SHIPS).expect(404)
    assert bob.get(MINE).expect(200).json["items"] == []
    assert len(ann.get(MINE).json["items"]) == 1
    # the administrator acts for ann
    assert [r["id"] for r in admin.get(f"/api/v1/users/{ann_id}/rules").expect(200).json["items"]] == [a["id"]]
    admin.post(f"/api/v1/users/{ann_id}/rules", BOSS).expect(201)
    assert len(ann.get(MINE).json["items"]) == 2
    admin.get(f"/api/v1/users/{bob_id}/rules/{a['id']}").expect(404)
    admin.get("/api/v1/users/99999/rules").expect(404)
    # a group's managers edit the group's set; other users cannot see it
    admin.post("/api/v1/directory/groups", {"address": "crew@example.org"}).expect(201)
    admin.post("/api/v1/directory/groups/crew@example.org/managers", {"user": "bob"}).expect(201)
    g = "/api/v1/directory/groups/crew@example.org/rules"
    r = bob.post(g, SHIPS).expect(201).json
    ann.get(g).expect(404)
    ann.get(f"{g}/{r['id']}").expect(404)
    ann.get(f"{MINE}/{r['id']}").expect(404)
    assert [x["id"] for x in admin.get(g).expect(200).json["items"]] == [r["id"]]
    bob.get("/api/v1/directory/groups/nobody@example.org/rules").expect(404)
    assert d.query("SELECT count(*) FROM mailbox_ruleset")[0][0] == 2


def test_dry_run_takes_the_envelope_sender_from_return_path(admin_api):
    """A stored message records its envelope sender as Return-Path: <addr>: the dry run
    matches sender rules against the address, without the angle brackets."""
    d, admin = admin_api
    _, ann = user(admin, "ann", "ann@example.org")
    ann.post(MINE, {"name": "from the harbour",
                    "when": {"field": "sender", "op": "is", "value": "pilot@harbour.example"},
                    "actions": [{"type": "move", "folder": "Harbour"}]}).expect(201)
    msg = CRLF.join(["Return-Path: <Pilot@harbour.example>", "From: x@y.example",
                     "To: ann@example.org", "Subject: berth", "", "at 6", ""])
    out = ann.post(f"{MINE}/test", {"message": msg}).expect(200).json
    assert [r["name"] for r in out["rules"] if r["matched"]] == ["from the harbour"], out
