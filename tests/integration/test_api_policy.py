"""Policy, directory and queue resources through the API (backed by store_policy.c and store_queue.c),
including end to end: a deny entry added through the API refuses the next SMTP connection."""

import sqlite3
import time

from api_client import ADMIN_PASSWORD, Api, admin_api, api_moatd  # noqa: F401
from conftest import wait_for


def test_conn_deny_via_api_refuses_next_smtp_connection(admin_api):
    d, api = admin_api
    with d.raw() as c:  # allowed before
        c.ehlo()
    g0 = d.query("SELECT generation FROM policy_meta")[0][0]
    e = api.post("/api/v1/policy/entries", {"list": "conn_deny", "value": "127.0.0.1",
                                             "comment": "api test"}).expect(201).json
    assert e["list"] == "conn_deny" and e["value"] == "127.0.0.1"
    assert d.query("SELECT generation FROM policy_meta")[0][0] > g0
    assert wait_for(lambda: f"policy loaded generation={g0 + 1}" in d.log_text(), timeout=5)
    with d.raw() as c:  # delay_reject (the default): refused at RCPT, not before the banner
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", 250)
        r = c.cmd("RCPT TO:<r@example.org>")
        assert r.code == 554, r
    api.delete(f"/api/v1/policy/entries/{e['id']}").expect(204)
    assert wait_for(lambda: f"policy loaded generation={g0 + 2}" in d.log_text(), timeout=5)
    with d.raw() as c:
        c.ehlo()
    acts = [a["action"] for a in api.get("/api/v1/audit?object_type=policy_entry").json["items"]]
    assert acts == ["policy_entry.delete", "policy_entry.create"]


def test_policy_entries_validation_and_listing(admin_api):
    d, api = admin_api
    api.post("/api/v1/policy/entries", {"list": "nolist", "value": "x"}).expect(
        422, "invalid_value", "list")
    api.post("/api/v1/policy/entries", {"list": "conn_deny", "value": "300.1.1.1/99"}).expect(
        422, "invalid_value", "value")
    api.post("/api/v1/policy/entries", {"list": "sender_deny", "value": "a b c"}).expect(
        422, "invalid_value", "value")
    api.post("/api/v1/policy/entries", {"list": "conn_deny", "value": "192.0.2.0/24",
                                        "comment": "bad\x01"}).expect(422, "invalid_value", "comment")
    api.post("/api/v1/policy/entries", {"list": "conn_deny", "value": "192.0.2.0/24"}).expect(201)
    api.post("/api/v1/policy/entries", {"list": "conn_deny", "value": "192.0.2.0/24"}).expect(
        409, "duplicate", "value")
    api.post("/api/v1/policy/entries", {"list": "sender_deny", "value": "Spam@Example.COM"}
             ).expect(201)
    api.post("/api/v1/policy/entries", {"list": "rcpt_deny", "value": "*.bad.example"}).expect(201)
    items = api.get("/api/v1/policy/entries?list=sender_deny").expect(200).json["items"]
    assert [i["value"] for i in items] == ["spam@example.com"]
    assert len(api.get("/api/v1/policy/entries").json["items"]) == 5  # + 2 default relay_net
    p1 = api.get("/api/v1/policy/entries?limit=2").json
    p2 = api.get(f"/api/v1/policy/entries?limit=2&cursor={p1['next_cursor']}").json
    assert not {i["id"] for i in p1["items"]} & {i["id"] for i in p2["items"]}
    assert api.get("/api/v1/policy/entries?q=EXAMPLE").json["items"]
    api.get("/api/v1/policy/entries?list=bogus").expect(422, "invalid_parameter", "list")
    api.get("/api/v1/policy/entries/99999").expect(404)
    api.delete("/api/v1/policy/entries/99999").expect(404)


def test_policy_settings(admin_api):
    d, api = admin_api
    s = api.get("/api/v1/policy/settings").expect(200).json
    keys = {i["key"]: i for i in s["items"]}
    assert keys["conn_deny_text"]["source"] == "default"
    r = api.put("/api/v1/policy/settings/conn_deny_text",
                {"value": "Go away {ip}"}).expect(200).json
    assert r["value"] == "Go away {ip}" and r["source"] == "set"
    api.put("/api/v1/policy/settings/conn_precedence", {"value": "sideways"}).expect(
        422, "invalid_value", "value")
    api.put("/api/v1/policy/settings/nope", {"value": "1"}).expect(404)
    api.put("/api/v1/policy/settings/conn_precedence", {"value": 1}).expect(
        422, "invalid_type", "value")
    api.delete("/api/v1/policy/settings/conn_deny_text").expect(204)
    keys = {i["key"]: i for i in api.get("/api/v1/policy/settings").json["items"]}
    assert keys["conn_deny_text"]["source"] == "default"
    a = api.get("/api/v1/audit?object_type=policy_setting").json["items"]
    assert a[0]["action"] == "policy_setting.reset" and a[1]["after"]["value"] == "Go away {ip}"


def test_dnsbl_sites_with_stats(admin_api):
    d, api = admin_api
    s = api.post("/api/v1/policy/dnsbl", {"zone": "ZEN.Example.org", "message": "listed {ip}",
                                          "weight": 2}).expect(201).json
    assert s["zone"] == "zen.example.org" and s["stats"]["hits"] == 0
    api.post("/api/v1/policy/dnsbl", {"zone": "zen.example.org"}).expect(409, "duplicate", "zone")
    api.post("/api/v1/policy/dnsbl", {"zone": "bad zone"}).expect(422, "invalid_value", "zone")
    api.post("/api/v1/policy/dnsbl", {"zone": "x.example", "codes": "1.2.3"}).expect(
        422, "invalid_value", "codes")
    api.post("/api/v1/policy/dnsbl", {"zone": "x.example", "action": "nuke"}).expect(
        422, "invalid_value", "action")
    api.post("/api/v1/policy/dnsbl", {"zone": "x.example", "weight": 1000}).expect(
        422, "invalid_value", "weight")
    con = sqlite3.connect(str(d.db_path), timeout=10)
    day = int(time.time() * 1000) // 86400000
    con.execute("INSERT INTO dnsbl_stat (zone, day, queries, hits, tempfails, last_hit)"
                " VALUES ('zen.example.org', ?, 10, 4, 1, 123)", (day,))
    con.commit()
    con.close()
    lst = api.get("/api/v1/policy/dnsbl").expect(200).json["items"]
    assert lst[0]["stats"]["hits"] == 4 and lst[0]["stats"]["queries"] == 10
    u = api.patch("/api/v1/policy/dnsbl/zen.example.org", {"enabled": False, "action": "tag"}
                  ).expect(200).json
    assert u["enabled"] is False and u["action"] == "tag" and u["message"] == "listed {ip}"
    assert u["stats"]["hits"] == 4
    api.patch("/api/v1/policy/dnsbl/zen.example.org", {"zone": "other"}).expect(
        422, "unknown_field", "zone")
    api.patch("/api/v1/policy/dnsbl/none.example", {"enabled": True}).expect(404)
    api.delete("/api/v1/policy/dnsbl/zen.example.org").expect(204)
    api.delete("/api/v1/policy/dnsbl/zen.example.org").expect(404)
    assert api.get("/api/v1/policy/dnsbl").json["items"] == []


def test_directory_read(admin_api):
    d, api = admin_api
    con = sqlite3.connect(str(d.db_path), timeout=10)
    con.execute("INSERT INTO dir_user (name, created) VALUES ('gina', 0)")
    uid = con.execute("SELECT id FROM dir_user WHERE name='gina'").fetchone()[0]
    con.execute("INSERT INTO dir_address (address, user_id, kind) VALUES"
                " ('gina@example.org', ?, 'primary'), ('g@example.org', ?, 'alias')", (uid, uid))
    con.execute("INSERT INTO dir_group (address, name, created) VALUES ('all@example.org', 'All', 0)")
    gid = con.execute("SELECT id FROM dir_group").fetchone()[0]
    con.execute("INSERT INTO dir_group_member VALUES (?, 'gina@example.org'), (?, 'x@example.org')",
                (gid, gid))
    con.commit()
    con.close()
    items = api.get("/api/v1/directory").expect(200).json["items"]
    by = {i["address"]: i for i in items}
    assert by["gina@example.org"]["kind"] == "primary" and by["g@example.org"]["kind"] == "alias"
    assert sorted(by["all@example.org"]["members"]) == ["gina@example.org", "x@example.org"]
    assert [i["address"] for i in api.get("/api/v1/directory?kind=alias").json["items"]] == [
        "g@example.org"]
    acc = api.get(f"/api/v1/users/{uid}").expect(200).json
    assert {a["address"] for a in acc["addresses"]} == {"gina@example.org", "g@example.org"}


def seed_queue(d):
    con = sqlite3.connect(str(d.db_path), timeout=10)
    now = int(time.time() * 1000)
    for qid, sender, client in (("00000000000000A1", "a@src.example", "192.0.2.1"),
                                ("00000000000000B2", "b@src.example", "192.0.2.2")):
        con.execute("INSERT INTO queue_message (qid, sender, client_addr, client_name, helo,"
                    " size, received_at) VALUES (?, ?, ?, 'h', 'h', 100, ?)",
                    (qid, sender, client, now))
    con.executemany("INSERT INTO queue_rcpt (qid, rcpt, state, reason, last_error, next_attempt)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [("00000000000000A1", "x@dead.example", "held", "no MX", None, now + 3600000),
                     ("00000000000000A1", "y@ok.example", "deferred", None, "451 later", now + 3600000),
                     ("00000000000000B2", "z@dead.example", "held", "no MX", None, now + 3600000)])
    con.commit()
    con.close()
    qdir = d.data_dir / "spool" / "queue"
    qdir.mkdir(parents=True, exist_ok=True)
    for qid in ("00000000000000A1", "00000000000000B2"):
        (qdir / qid).write_bytes(b"Received: from h\r\n by moat.test\r\nSubject: hello\r\n"
                                 b"From: a@src.example\r\n\r\nbody\r\n")


def test_queue_resources(admin_api):
    d, api = admin_api
    seed_queue(d)
    items = api.get("/api/v1/queue").expect(200).json["items"]
    assert len(items) == 3
    assert [i["rcpt"] for i in api.get("/api/v1/queue?state=held").json["items"]] == [
        "x@dead.example", "z@dead.example"]
    assert len(api.get("/api/v1/queue?rcpt_domain=dead.example").json["items"]) == 2
    assert len(api.get("/api/v1/queue?sender=a@src.example").json["items"]) == 2
    assert len(api.get("/api/v1/queue?client=192.0.2.2").json["items"]) == 1
    p1 = api.get("/api/v1/queue?limit=2").json
    assert len(p1["items"]) == 2 and p1["next_cursor"] == "2"
    assert len(api.get("/api/v1/queue?limit=2&cursor=2").json["items"]) == 1
    m = api.get("/api/v1/queue/00000000000000A1").expect(200).json
    assert m["spool_file"] is True and len(m["recipients"]) == 2
    assert {"name": "Received", "value": "from h by moat.test"} in m["headers"]
    assert {"name": "Subject", "value": "hello"} in m["headers"]
    api.get("/api/v1/queue/FFFFFFFFFFFFFFFF").expect(404)
    api.get("/api/v1/queue/..%2f..%2fetc").expect(404)
    # Bulk actions by filter.
    api.post("/api/v1/queue/release", {}).expect(422, "missing_field", "all")
    api.post("/api/v1/queue/release", {"state": "bogus"}).expect(422, "invalid_value", "state")
    api.post("/api/v1/queue/release", {"qid": "../x"}).expect(422, "invalid_value", "qid")
    r = api.post("/api/v1/queue/release", {"rcpt_domain": "dead.example", "qid": "00000000000000A1"}
                 ).expect(200).json
    assert r["recipients"] == 1
    assert d.query("SELECT state FROM queue_rcpt WHERE rcpt='x@dead.example'")[0][0] == "queued"
    r = api.post("/api/v1/queue/hold", {"qid": "00000000000000A1", "hold_reason": "check"}
                 ).expect(200).json
    assert r["recipients"] == 2
    r = api.post("/api/v1/queue/retry", {"all": True}).expect(200).json
    assert r["recipients"] == 0  # all held now
    r = api.post("/api/v1/queue/delete", {"client": "192.0.2.2"}).expect(200).json
    assert r == {"recipients": 1, "messages_removed": 1}
    assert not (d.data_dir / "spool" / "queue" / "00000000000000B2").exists()
    assert (d.data_dir / "spool" / "queue" / "00000000000000A1").exists()
    a = api.get("/api/v1/audit?object_type=queue").json["items"]
    assert [x["action"] for x in a] == ["queue.delete", "queue.retry", "queue.hold",
                                        "queue.release"]
    assert a[0]["before"] == {"client": "192.0.2.2"}


def test_policy_and_queue_refused_to_users(admin_api):
    d, api = admin_api
    api.create_user("hank", password="hank-pass-1")
    h = Api(d.http_port)
    h.login("hank", "hank-pass-1")
    for m, p, b in [("GET", "/api/v1/policy/entries", None),
                    ("POST", "/api/v1/policy/entries", {"list": "conn_deny", "value": "1.2.3.4"}),
                    ("DELETE", "/api/v1/policy/entries/1", None),
                    ("GET", "/api/v1/policy/settings", None),
                    ("PUT", "/api/v1/policy/settings/conn_deny_text", {"value": "x"}),
                    ("GET", "/api/v1/policy/dnsbl", None),
                    ("POST", "/api/v1/policy/dnsbl", {"zone": "a.example"}),
                    ("GET", "/api/v1/directory", None), ("GET", "/api/v1/queue", None),
                    ("POST", "/api/v1/queue/delete", {"all": True})]:
        h.request(m, p, body=b).expect(403, "forbidden")
    assert d.query("SELECT count(*) FROM policy_entry WHERE value='1.2.3.4'")[0][0] == 0


def test_directory_groups_and_user_addresses(admin_api):
    d, api = admin_api
    u = api.post("/api/v1/users", {"name": "ivan", "password": "ivan-pass-1",
                                   "addresses": ["Ivan@Example.org", "iv@example.org"]}
                 ).expect(201).json
    assert [a["address"] for a in u["addresses"]] == ["iv@example.org", "ivan@example.org"]
    assert {a["kind"] for a in u["addresses"]} == {"primary", "alias"}
    assert u["role"] == "user" and u["password_set"] is True
    Api(d.http_port).login("ivan", "ivan-pass-1")
    api.post("/api/v1/users", {"name": "ivan2", "addresses": ["ivan@example.org"]}).expect(
        409, "duplicate", "addresses")
    api.post("/api/v1/users", {"name": "ivan", "addresses": ["new@example.org"]}).expect(
        409, "duplicate", "name")
    api.post("/api/v1/users", {"name": "ivan3", "addresses": ["not-an-address"]}).expect(
        422, "invalid_value", "addresses")
    assert d.query("SELECT count(*) FROM dir_user WHERE name LIKE 'ivan_'")[0][0] == 0
    g = api.post("/api/v1/directory/groups", {"address": "Team@Example.org", "name": "Team",
                                              "members": ["ivan@example.org", "x@other.example"]}
                 ).expect(201).json
    assert g["address"] == "team@example.org" and g["kind"] == "group"
    assert sorted(g["members"]) == ["ivan@example.org", "x@other.example"]
    api.post("/api/v1/directory/groups", {"address": "team@example.org"}).expect(
        409, "duplicate", "address")
    api.post("/api/v1/directory/groups", {"address": "t2@example.org", "members": ["bad"]}
             ).expect(422, "invalid_value", "members")
    api.post("/api/v1/directory/groups", {"address": "t3@example.org", "members": "x@y.z"}
             ).expect(422, "invalid_type", "members")
    kinds = {i["address"]: i["kind"] for i in api.get("/api/v1/directory").json["items"]}
    assert kinds["team@example.org"] == "group" and kinds["iv@example.org"] == "alias"
    api.delete("/api/v1/directory/groups/team@example.org").expect(204)
    api.delete("/api/v1/directory/groups/team@example.org").expect(404)
    api.delete("/api/v1/directory/groups/garbage").expect(404)
    acts = [a["action"] for a in api.get("/api/v1/audit?object_type=dir_group").json["items"]]
    assert acts == ["dir_group.delete", "dir_group.create"]
