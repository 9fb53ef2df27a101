"""The second batch of API resources: editing policy entries, directory addresses and group
members, compromised accounts, aggregates for the dashboard and the queue view, and the
message-log recipient index.  Every change is audited; users and user-scoped tokens get 403."""

import json
import smtplib
import sqlite3
import time

import test_api_policy
from api_client import (ADMIN_PASSWORD, Api, admin_api, api_moatd,  # noqa: F401
                        insert_log_rows, log_row)
from conftest import wait_for
from submission_util import SUBMISSION_CONF, add_user, smtp_tls


def user_and_token(d, admin, name="hank"):
    """(Api logged in as a plain user, Api with an admin's user-scoped token)."""
    admin.create_user(name, password=name + "-pass-1")
    u = Api(d.http_port)
    u.login(name, name + "-pass-1")
    tok = admin.create_token(name + "-tok", scope="user")
    return u, Api(d.http_port, token=tok["token"])


# ---- 1. PATCH /api/v1/policy/entries/{id} ----

def test_policy_entry_patch(admin_api):
    d, api = admin_api
    e = api.post("/api/v1/policy/entries", {"list": "sender_deny", "value": "a@example.com",
                                             "comment": "one"}).expect(201).json
    api.post("/api/v1/policy/entries", {"list": "sender_deny", "value": "b@example.com"}
             ).expect(201)
    g0 = d.query("SELECT generation FROM policy_meta")[0][0]
    got = api.patch(f"/api/v1/policy/entries/{e['id']}", {"value": "C@Example.COM"}
                    ).expect(200).json
    assert got == dict(e, value="c@example.com")
    assert d.query("SELECT generation FROM policy_meta")[0][0] > g0
    got = api.patch(f"/api/v1/policy/entries/{e['id']}", {"comment": "two"}).expect(200).json
    assert got["comment"] == "two" and got["value"] == "c@example.com"
    listed = {i["id"]: i for i in api.get("/api/v1/policy/entries?list=sender_deny").json["items"]}
    assert listed[e["id"]] == got
    # Bad input.
    api.patch(f"/api/v1/policy/entries/{e['id']}", {}).expect(422, field="value")
    api.patch(f"/api/v1/policy/entries/{e['id']}", {"value": "a b c"}).expect(
        422, "invalid_value", "value")
    api.patch(f"/api/v1/policy/entries/{e['id']}", {"comment": "bad\x01"}).expect(
        422, "invalid_value", "comment")
    api.patch(f"/api/v1/policy/entries/{e['id']}", {"value": 3}).expect(
        422, "invalid_type", "value")
    api.patch(f"/api/v1/policy/entries/{e['id']}", {"list": "conn_deny"}).expect(
        422, "unknown_field", "list")
    api.patch(f"/api/v1/policy/entries/{e['id']}", {"value": "b@example.com"}).expect(
        409, "duplicate", "value")
    api.patch("/api/v1/policy/entries/99999", {"comment": "x"}).expect(404, "not_found")
    api.patch("/api/v1/policy/entries/abc", {"comment": "x"}).expect(404, "not_found")
    # Audited with before and after, in one transaction with the change.
    a = api.get("/api/v1/audit?action=policy_entry.update").json["items"]
    assert len(a) == 2
    assert a[1]["before"]["value"] == "a@example.com" and a[1]["after"]["value"] == "c@example.com"
    # Users and user-scoped tokens are refused, nothing changes.
    u, t = user_and_token(d, api)
    for c in (u, t):
        c.patch(f"/api/v1/policy/entries/{e['id']}", {"comment": "hacked"}).expect(403, "forbidden")
    assert api.get(f"/api/v1/policy/entries/{e['id']}").json["comment"] == "two"


# ---- 2. directory editing: user addresses, group members ----

def test_user_addresses_edit(admin_api):
    d, api = admin_api
    u = api.post("/api/v1/users", {"name": "ivan", "addresses": ["ivan@example.org"]}
                 ).expect(201).json
    api.post("/api/v1/directory/groups", {"address": "team@example.org"}).expect(201)
    g0 = d.query("SELECT generation FROM policy_meta")[0][0]
    got = api.post(f"/api/v1/users/{u['id']}/addresses",
                   {"address": "Iv@Example.ORG", "kind": "alias"}).expect(201).json
    assert got == {"address": "iv@example.org", "kind": "alias"}
    assert d.query("SELECT generation FROM policy_meta")[0][0] > g0
    addrs = api.get(f"/api/v1/users/{u['id']}").json["addresses"]
    assert {(a["address"], a["kind"]) for a in addrs} == {("iv@example.org", "alias"),
                                                          ("ivan@example.org", "primary")}
    # Taken by anyone: this user, another user, a group.
    other = api.post("/api/v1/users", {"name": "olga"}).expect(201).json
    for addr in ("iv@example.org", "IVAN@example.org", "team@example.org"):
        api.post(f"/api/v1/users/{other['id']}/addresses", {"address": addr, "kind": "alias"}
                 ).expect(409, "duplicate", "address")
    api.post(f"/api/v1/users/{other['id']}/addresses", {"address": "nope", "kind": "alias"}
             ).expect(422, "invalid_value", "address")
    api.post(f"/api/v1/users/{other['id']}/addresses", {"address": "o@example.org",
                                                        "kind": "group"}
             ).expect(422, "invalid_value", "kind")
    api.post(f"/api/v1/users/{other['id']}/addresses", {"address": "o@example.org"}
             ).expect(422, "missing_field", "kind")
    api.post("/api/v1/users/999999/addresses", {"address": "o@example.org", "kind": "alias"}
             ).expect(404, "not_found")
    # Delete: only the user's own address.
    api.delete(f"/api/v1/users/{other['id']}/addresses/iv@example.org").expect(404, "not_found")
    api.delete(f"/api/v1/users/{u['id']}/addresses/garbage").expect(404, "not_found")
    api.delete("/api/v1/users/999999/addresses/iv@example.org").expect(404, "not_found")
    api.delete(f"/api/v1/users/{u['id']}/addresses/IV@example.org").expect(204)
    api.delete(f"/api/v1/users/{u['id']}/addresses/iv@example.org").expect(404)
    assert d.query("SELECT count(*) FROM dir_address WHERE address='iv@example.org'")[0][0] == 0
    acts = [a["action"] for a in api.get("/api/v1/audit?object_type=dir_address").json["items"]]
    assert acts == ["dir_address.delete", "dir_address.create"]
    # Refused to users and user-scoped tokens.
    hu, ht = user_and_token(d, api)
    for c in (hu, ht):
        c.post(f"/api/v1/users/{u['id']}/addresses", {"address": "x@example.org",
                                                      "kind": "alias"}).expect(403, "forbidden")
        c.delete(f"/api/v1/users/{u['id']}/addresses/ivan@example.org").expect(403, "forbidden")
    assert d.query("SELECT count(*) FROM dir_address WHERE address='ivan@example.org'")[0][0] == 1


def test_group_members_edit(admin_api):
    d, api = admin_api
    api.post("/api/v1/directory/groups", {"address": "team@example.org",
                                          "members": ["a@example.org"]}).expect(201)
    got = api.post("/api/v1/directory/groups/team@example.org/members",
                   {"member": "B@Example.org"}).expect(201).json
    assert got == {"member": "b@example.org"}
    items = {i["address"]: i for i in api.get("/api/v1/directory?kind=group").json["items"]}
    assert sorted(items["team@example.org"]["members"]) == ["a@example.org", "b@example.org"]
    api.post("/api/v1/directory/groups/team@example.org/members", {"member": "b@example.org"}
             ).expect(409, "duplicate", "member")
    api.post("/api/v1/directory/groups/team@example.org/members", {"member": "bad"}
             ).expect(422, "invalid_value", "member")
    api.post("/api/v1/directory/groups/team@example.org/members", {}
             ).expect(422, "missing_field", "member")
    api.post("/api/v1/directory/groups/none@example.org/members", {"member": "c@example.org"}
             ).expect(404, "not_found")
    api.delete("/api/v1/directory/groups/team@example.org/members/zz@example.org").expect(404)
    api.delete("/api/v1/directory/groups/none@example.org/members/a@example.org").expect(404)
    api.delete("/api/v1/directory/groups/team@example.org/members/A@example.org").expect(204)
    items = {i["address"]: i for i in api.get("/api/v1/directory?kind=group").json["items"]}
    assert items["team@example.org"]["members"] == ["b@example.org"]
    acts = [a["action"] for a in api.get("/api/v1/audit?object_type=dir_group").json["items"]]
    assert acts[:2] == ["dir_group.member_remove", "dir_group.member_add"]
    hu, ht = user_and_token(d, api)
    for c in (hu, ht):
        c.post("/api/v1/directory/groups/team@example.org/members", {"member": "x@example.org"}
               ).expect(403, "forbidden")
        c.delete("/api/v1/directory/groups/team@example.org/members/b@example.org").expect(
            403, "forbidden")


# ---- 3. compromised accounts ----

def suspend_eve(d):
    """eve suspends herself (account_suspend_score 10): two senders she does not own."""
    add_user(d, "eve", ["eve@example.com"], "eve-password-1")
    s = smtp_tls(d.smtp_port)
    s.login("eve", "eve-password-1")
    assert s.mail("x@elsewhere.example")[0] == 553
    assert s.mail("y@elsewhere.example")[0] == 550
    s.quit()
    assert wait_for(lambda: d.query("SELECT 1 FROM account_state WHERE suspended > 0"),
                    timeout=5)


def eve_can_send(d):
    s = smtp_tls(d.smtp_port)
    try:
        s.login("eve", "eve-password-1")
    except smtplib.SMTPAuthenticationError as e:  # suspended: refused at AUTH
        assert e.smtp_code == 535 and b"account suspended" in e.smtp_error
        s.quit()
        return False
    code = s.mail("eve@example.com")[0]
    s.quit()
    return code == 250


def test_accounts_list_alerts_and_lift_while_running(api_moatd):
    d = api_moatd(account_suspend_score="10", **SUBMISSION_CONF)
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    suspend_eve(d)
    with sqlite3.connect(d.db_path) as db:  # a quiet account, for paging
        db.execute("INSERT INTO account_state (user, messages, recipients, refused, score,"
                   " updated) VALUES ('adam', 3, 4, 0, 1, 1000)")
    items = api.get("/api/v1/accounts").expect(200).json["items"]
    acc = {i["user"]: i for i in items}
    assert [i["user"] for i in items] == ["adam", "eve"]
    eve = acc["eve"]
    assert eve["suspended"] is True and isinstance(eve["suspended_at"], int)
    assert eve["reason"] and eve["score"] >= 5
    assert set(eve["window"]) >= {"messages", "recipients", "refused"}
    assert acc["adam"] == {"user": "adam", "suspended": False, "suspended_at": None,
                           "reason": None, "score": 1, "signals": [], "trusted_until": None,
                           "volume_day": 0, "last_client": None,
                           "window": {"messages": 3, "recipients": 4, "refused": 0,
                                      "updated": 1000},
                           "auth_failures": {"recent": 0, "last_at": None, "last_addr": None}}
    p1 = api.get("/api/v1/accounts?limit=1").expect(200).json
    assert [i["user"] for i in p1["items"]] == ["adam"] and p1["next_cursor"] == "1"
    p2 = api.get(f"/api/v1/accounts?limit=1&cursor={p1['next_cursor']}").json
    assert [i["user"] for i in p2["items"]] == ["eve"] and p2["next_cursor"] is None
    api.get("/api/v1/accounts?limit=0").expect(422, "invalid_parameter", "limit")
    api.get("/api/v1/accounts?bogus=1").expect(422, "unknown_parameter", "bogus")
    al = api.get("/api/v1/accounts/alerts").expect(200).json
    assert [(a["user"], type(a["id"]), type(a["ts"])) for a in al["items"]] == [
        ("eve", int, int)]
    assert al["items"][0]["score"] >= 5 and al["items"][0]["detail"]
    assert al["next_cursor"] is None
    api.get("/api/v1/accounts/alerts?cursor=x").expect(422, "invalid_parameter", "cursor")
    assert not eve_can_send(d)

    # Refused to users and user-scoped tokens.
    hu, ht = user_and_token(d, api)
    for c in (hu, ht):
        c.get("/api/v1/accounts").expect(403, "forbidden")
        c.get("/api/v1/accounts/alerts").expect(403, "forbidden")
        c.post("/api/v1/accounts/eve/lift").expect(403, "forbidden")

    # Lift while moatd runs: the mail side sees it as it sees `moatd accounts lift`.
    got = api.post("/api/v1/accounts/eve/lift").expect(200).json
    assert got == {"user": "eve", "suspended": False, "released": 0, "deleted": 0}
    assert wait_for(lambda: eve_can_send(d), timeout=6, interval=0.5)
    api.post("/api/v1/accounts/eve/lift").expect(404, "not_suspended")
    api.post("/api/v1/accounts/nobody/lift").expect(404, "not_found")
    al = api.get("/api/v1/accounts/alerts?limit=1").json
    assert al["items"][0]["user"] == "eve" and al["items"][0]["kind"] == "lifted"
    assert al["items"][0]["actor"] == "admin" and al["items"][0]["action"] == "keep"
    older = api.get(f"/api/v1/accounts/alerts?limit=1&cursor={al['next_cursor']}").json
    assert older["items"][0]["id"] < al["items"][0]["id"] and older["next_cursor"] is None
    a = api.get("/api/v1/audit?action=account.lift").json["items"]
    assert len(a) == 1 and a[0]["object_id"] == "eve"
    assert a[0]["before"]["suspended"] is True and a[0]["after"]["suspended"] is False


# ---- 4. aggregates: top keys of the message log, queue summary ----

def test_stats_top(admin_api):
    d, api = admin_api
    now = int(time.time() * 1000)
    rows = []
    for i in range(12):
        kw = {"client_addr": "192.0.2.%d" % (1 if i < 7 else 2 if i < 10 else 3),
              "sender": "s%d@example.com" % (i % 2)}
        if i % 3 == 0:
            kw.update(result="refused", check_name="dnsbl" if i < 6 else "rcpt_unknown",
                      reason="listed")
        kw["recipients"] = json.dumps(["a@One.example", "b@one.example"] if i < 8
                                      else ["c@two.example"])
        rows.append(log_row(i, now - i * 60000, **kw))
    insert_log_rows(d.db_path, rows)
    top = api.get("/api/v1/stats/top?by=client").expect(200).json
    assert top == {"items": [{"key": "192.0.2.1", "count": 7}, {"key": "192.0.2.2", "count": 3},
                             {"key": "192.0.2.3", "count": 2}], "next_cursor": None}
    got = api.get("/api/v1/stats/top?by=client&limit=1").json["items"]
    assert got == [{"key": "192.0.2.1", "count": 7}]
    got = api.get("/api/v1/stats/top?by=check&result=refused").json["items"]
    assert got == [{"key": "dnsbl", "count": 2}, {"key": "rcpt_unknown", "count": 2}]
    got = api.get("/api/v1/stats/top?by=recipient_domain").json["items"]
    assert got == [{"key": "one.example", "count": 8}, {"key": "two.example", "count": 4}]
    got = api.get("/api/v1/stats/top?by=sender&result=accepted").json["items"]
    assert sorted((i["key"], i["count"]) for i in got) == [("s0@example.com", 4),
                                                            ("s1@example.com", 4)]
    # [from, to): the newest 3 rows only
    got = api.get(f"/api/v1/stats/top?by=client&from={now - 150000}&to={now + 1}").json["items"]
    assert got == [{"key": "192.0.2.1", "count": 3}]
    assert api.get("/api/v1/stats/top?by=client&result=aborted").json["items"] == []
    api.get("/api/v1/stats/top").expect(422, "invalid_parameter", "by")
    api.get("/api/v1/stats/top?by=helo").expect(422, "invalid_parameter", "by")
    api.get("/api/v1/stats/top?by=client&result=x").expect(422, "invalid_parameter", "result")
    api.get("/api/v1/stats/top?by=client&limit=0").expect(422, "invalid_parameter", "limit")
    api.get("/api/v1/stats/top?by=client&limit=101").expect(422, "invalid_parameter", "limit")
    api.get("/api/v1/stats/top?by=client&from=yesterday").expect(422, "invalid_parameter", "from")
    api.get(f"/api/v1/stats/top?by=client&from={now}&to={now - 1}").expect(
        422, "invalid_parameter", "to")
    api.get("/api/v1/stats/top?by=client&q=1").expect(422, "unknown_parameter", "q")
    hu, ht = user_and_token(d, api)
    for c in (hu, ht):
        c.get("/api/v1/stats/top?by=client").expect(403, "forbidden")
        c.get("/api/v1/queue/summary?group=state").expect(403, "forbidden")


def test_queue_summary(admin_api):
    d, api = admin_api
    test_api_policy.seed_queue(d)
    got = api.get("/api/v1/queue/summary?group=state").expect(200).json
    assert got == {"items": [{"key": "held", "messages": 2, "recipients": 2},
                             {"key": "deferred", "messages": 1, "recipients": 1}],
                   "next_cursor": None}
    got = api.get("/api/v1/queue/summary?group=domain").json["items"]
    assert got == [{"key": "dead.example", "messages": 2, "recipients": 2},
                   {"key": "ok.example", "messages": 1, "recipients": 1}]
    got = api.get("/api/v1/queue/summary?group=reason").json["items"]
    assert got == [{"key": "no MX", "messages": 2, "recipients": 2},
                   {"key": "451 later", "messages": 1, "recipients": 1}]
    got = api.get("/api/v1/queue/summary?group=sender&state=held").json["items"]
    assert got == [{"key": "a@src.example", "messages": 1, "recipients": 1},
                   {"key": "b@src.example", "messages": 1, "recipients": 1}]
    got = api.get("/api/v1/queue/summary?group=client&rcpt_domain=ok.example").json["items"]
    assert got == [{"key": "192.0.2.1", "messages": 1, "recipients": 1}]
    got = api.get("/api/v1/queue/summary?group=state&sender=B@src.example").json["items"]
    assert got == [{"key": "held", "messages": 1, "recipients": 1}]
    got = api.get("/api/v1/queue/summary?group=state&limit=1").json["items"]
    assert len(got) == 1
    api.get("/api/v1/queue/summary").expect(422, "invalid_parameter", "group")
    api.get("/api/v1/queue/summary?group=size").expect(422, "invalid_parameter", "group")
    api.get("/api/v1/queue/summary?group=state&state=x").expect(422, "invalid_parameter", "state")
    api.get("/api/v1/queue/summary?group=state&received_before=x").expect(
        422, "invalid_parameter", "received_before")
    api.get("/api/v1/queue/summary?group=state&cursor=1").expect(
        422, "unknown_parameter", "cursor")
    # The single-message route is not shadowed.
    api.get("/api/v1/queue/00000000000000A1").expect(200)


# ---- 5. message-log recipient index (schema/007) ----

def test_recipient_search_uses_index_table(admin_api):
    d, api = admin_api
    # Written with the log entry by the daemon itself (store_log_insert).
    s = d.smtp()
    s.sendmail("from@example.net", ["Rita@Example.ORG", "sam@example.org"],
               b"Subject: t\r\n\r\nhi\r\n")
    s.quit()
    row = d.log_rows("sender = 'from@example.net'")[0]
    assert sorted(r for (r,) in d.query("SELECT rcpt FROM message_log_rcpt WHERE log_id = ?",
                                        (row["id"],))) == ["rita@example.org", "sam@example.org"]
    got = api.get("/api/v1/messages?recipient=RITA@example.org").expect(200).json["items"]
    assert [i["id"] for i in got] == [row["id"]]
    # Rows inserted by anyone else (here: straight into the table) are indexed too.
    now = int(time.time() * 1000)
    insert_log_rows(d.db_path, [log_row(i, now - i * 1000, recipients=json.dumps(
        ["rcpt%d@example.org" % (i % 3), "x@y.example"])) for i in range(30)]
        + [log_row(99, now, recipients="not json")])
    want = [i for i in range(30) if i % 3 == 1]
    got = api.get("/api/v1/messages?recipient=rcpt1@example.org&limit=4").json
    assert len(got["items"]) == 4 and got["next_cursor"]
    rest = api.get("/api/v1/messages?recipient=rcpt1@example.org&limit=50&cursor="
                   + got["next_cursor"]).json["items"]
    assert len(got["items"]) + len(rest) == len(want)
    asc = api.get("/api/v1/messages?recipient=rcpt1@example.org&sort=ts&limit=50").json["items"]
    assert [i["ts"] for i in asc] == sorted(i["ts"] for i in asc)
    n = api.get("/api/v1/messages?recipient=x@y.example&result=accepted&limit=50").json["items"]
    assert len(n) == 30
    assert api.get("/api/v1/messages?recipient=nobody@example.org").json["items"] == []
    # Deleting a log row removes its recipients (ON DELETE CASCADE).
    with sqlite3.connect(d.db_path) as db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("DELETE FROM message_log WHERE id = ?", (row["id"],))
    assert d.query("SELECT count(*) FROM message_log_rcpt WHERE log_id = ?",
                   (row["id"],))[0][0] == 0
    # The plan is an index lookup, not a scan of message_log.
    plan = " ".join(str(r) for r in d.query(
        "EXPLAIN QUERY PLAN SELECT id FROM message_log WHERE id IN (SELECT log_id FROM"
        " message_log_rcpt WHERE rcpt = lower('rcpt1@example.org')) ORDER BY +ts DESC"))
    assert "message_log_rcpt_rcpt" in plan and "SCAN message_log " not in plan + " "


def test_migration_backfills_recipients(api_moatd):
    d = api_moatd()
    assert d.stop() == 0
    with sqlite3.connect(d.db_path) as db:  # as a database at schema 6 would be
        db.execute("DROP INDEX queue_rcpt_final")
        db.execute("DROP INDEX message_log_auth")
        for col in ("auth_user", "tls", "entry"):
            db.execute(f"ALTER TABLE message_log DROP COLUMN {col}")
        db.execute("DROP TRIGGER message_log_rcpt_ins")
        db.execute("DROP TABLE message_log_rcpt")
        # Later migrations that add columns or plain tables, undone as well.
        db.execute("DROP INDEX message_log_message_id")
        for col in ("timeline", "message_id"):
            db.execute(f"ALTER TABLE message_log DROP COLUMN {col}")
        db.execute("DROP INDEX message_log_score")
        for col in ("score", "score_parts"):
            db.execute(f"ALTER TABLE message_log DROP COLUMN {col}")
        for col in ("digest_interval", "digest_last_at"):
            db.execute(f"ALTER TABLE dir_user DROP COLUMN {col}")
        db.execute("DROP TABLE digest_link_used")
        db.execute("DROP TABLE digest_template")
        db.execute("PRAGMA user_version = 6")
    insert_log_rows(d.db_path, [log_row(i, 1000 + i, recipients=json.dumps(["Old%d@Example.org" % i]))
                                for i in range(5)])
    d = api_moatd(data_dir=d.data_dir)
    assert d.query("SELECT count(*) FROM message_log_rcpt")[0][0] == 5
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    got = api.get("/api/v1/messages?recipient=old3@example.org").expect(200).json["items"]
    assert [i["recipients"] for i in got] == [["Old3@Example.org"]]


# ---- 6. message-log facts in their own columns (schema/008) ----

def test_message_log_account_tls_and_fired_entry(api_moatd):
    d = api_moatd(**SUBMISSION_CONF)
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    add_user(d, "tess", ["tess@example.com"], "tess-password-1")
    s = smtp_tls(d.smtp_port)
    s.login("tess", "tess-password-1")
    s.sendmail("tess@example.com", ["friend@example.org"], b"Subject: t\r\n\r\nhi\r\n")
    version = s.sock.version()
    s.quit()
    plain = d.smtp()
    plain.sendmail("other@example.net", ["x@example.org"], b"Subject: p\r\n\r\nhi\r\n")
    plain.quit()
    entry = api.post("/api/v1/policy/entries", {"list": "sender_deny",
                                                 "value": "spam@example.net"}).expect(201).json
    assert wait_for(lambda: send_refused(d), timeout=10)
    d.log_rows("check_name = 'sender_deny'")

    got = api.get("/api/v1/messages?auth_user=tess").expect(200).json["items"]
    assert len(got) == 1 and got[0]["sender"] == "tess@example.com", got
    m = got[0]
    assert m["auth_user"] == "tess" and m["tls"].startswith(f"version={version} cipher=")
    assert m["entry"] is None and "auth=" not in m["reason"]
    other = api.get("/api/v1/messages?sender=other@example.net").expect(200).json["items"]
    assert other[0]["auth_user"] is None and other[0]["tls"] is None
    refused = api.get("/api/v1/messages?check=sender_deny").expect(200).json["items"]
    assert refused[0]["entry"] == f"sender_deny entry {entry['id']} spam@example.net", refused
    assert api.get("/api/v1/messages?auth_user=nobody").json["items"] == []
    api.get("/api/v1/messages?auth_user=" + "a" * 321).expect(422)
    # The account search is an index lookup.
    plan = " ".join(str(r) for r in d.query(
        "EXPLAIN QUERY PLAN SELECT id FROM message_log WHERE auth_user = 'tess'"
        " ORDER BY ts DESC"))
    assert "message_log_auth" in plan, plan


def send_refused(d):
    """Tries spam@example.net until the sender_deny entry is in force; True once refused."""
    s = d.smtp()
    try:
        s.ehlo()
        code, _ = s.mail("spam@example.net")
        return code == 550
    finally:
        s.quit()


# ---- 7. likely address harvesting (/api/v1/stats/harvest) ----

def test_harvesting_view_and_deny(admin_api):
    from peers_policy import applied, policy, raw_from
    d, api = admin_api
    policy(d, "add", "local_domain", "example.org")
    policy(d, "user", "add", "real", "real@example.org")
    policy(d, "set", "harvest_threshold", "5")
    policy(d, "set", "harvest_tarpit", "0")
    applied(d)
    with raw_from(d, "127.0.0.7", banner=True) as c:   # a dictionary attack
        c.ehlo()
        c.expect_cmd("MAIL FROM:<x@spam.example>", 250)
        for i in range(5):
            c.expect_cmd(f"RCPT TO:<user{i}@example.org>", "550 5.1.1")
        c.expect_cmd("RCPT TO:<user0@example.org>", "450 4.7.1")   # past the threshold
        c.expect_cmd("RCPT TO:<real@example.org>", "450 4.7.1")    # even a real one now
    with raw_from(d, "127.0.0.8", banner=True) as c:   # one typo
        c.ehlo()
        c.expect_cmd("MAIL FROM:<y@example.net>", 250)
        c.expect_cmd("RCPT TO:<raal@example.org>", "550 5.1.1")
    d.log_rows("client_addr = '127.0.0.8'")
    d.log_rows("check_name = 'harvest'", want=2)

    got = api.get("/api/v1/stats/harvest").expect(200).json["items"]
    assert [g["client_addr"] for g in got] == ["127.0.0.7", "127.0.0.8"], got
    top = got[0]
    assert (top["unknown_recipients"], top["distinct_recipients"], top["deferred"]) == (5, 5, 2)
    assert top["first_ts"] <= top["last_ts"] and top["denied"] is False
    assert (got[1]["unknown_recipients"], got[1]["deferred"]) == (1, 0)
    # The time range applies.
    assert api.get(f"/api/v1/stats/harvest?to={top['first_ts']}").json["items"] == []
    # Deny the harvester from the view; it is marked, and refused (at RCPT: delay_reject).
    api.post("/api/v1/policy/entries", {"list": "conn_deny", "value": "127.0.0.7",
                                        "comment": "harvesting"}).expect(201)
    assert api.get("/api/v1/stats/harvest?limit=1").json["items"][0]["denied"] is True
    applied(d)
    with raw_from(d, "127.0.0.7", banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<x@spam.example>", 250)
        assert c.cmd("RCPT TO:<real@example.org>").code == 554
    # Users do not see it.
    u, _ = user_and_token(d, api, "ivy")
    u.get("/api/v1/stats/harvest").expect(403)
