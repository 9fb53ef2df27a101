"""Every API resource against the real moatd: health, metrics, users, account, tokens,
message log search and pagination, statistics, audit."""

import json
import time

from api_client import (ADMIN_PASSWORD, Api, admin_api, api_moatd, insert_log_rows,  # noqa: F401
                        log_row)

HOUR = 3600 * 1000


def test_healthz_is_public(admin_api):
    d, _ = admin_api
    r = Api(d.http_port).get("/healthz").expect(200)
    assert r.json["status"] == "ok" and r.json["schema"] >= 4


def test_users_crud_and_audit(admin_api):
    d, api = admin_api
    u = api.create_user("erin", password="erin-pass-1")
    assert u["role"] == "user" and u["password_set"] and u["addresses"] == []
    assert api.get(f"/api/v1/users/{u['id']}").expect(200).json["name"] == "erin"
    r = api.patch(f"/api/v1/users/{u['id']}", {"role": "admin", "disabled": False}).expect(200)
    assert r.json["role"] == "admin"
    api.patch(f"/api/v1/users/{u['id']}", {"password": "erin-pass-2"}).expect(200)
    Api(d.http_port).login("erin", "erin-pass-2")
    api.delete(f"/api/v1/users/{u['id']}").expect(204)
    api.get(f"/api/v1/users/{u['id']}").expect(404)
    api.delete(f"/api/v1/users/{u['id']}").expect(404)
    # Audit: who, what, before and after, no secrets.
    items = api.get("/api/v1/audit?object_type=user").expect(200).json["items"]
    actions = [i["action"] for i in items]
    assert actions[:4] == ["user.delete", "user.update_password", "user.update", "user.create"]
    upd = items[2]
    assert upd["actor"] == "admin" and upd["via"] == "session"
    assert upd["before"]["role"] == "user" and upd["after"]["role"] == "admin"
    assert items[0]["after"] is None and items[0]["before"]["name"] == "erin"
    text = json.dumps(items)
    assert "erin-pass" not in text and "argon2" not in text
    assert d.query("SELECT count(*) FROM api_audit WHERE before LIKE '%argon2%' "
                   "OR after LIKE '%argon2%'")[0][0] == 0


def test_user_create_bumps_policy_generation(admin_api):
    d, api = admin_api
    g0 = d.query("SELECT generation FROM policy_meta")[0][0]
    api.create_user("frank")
    assert d.query("SELECT generation FROM policy_meta")[0][0] > g0


def test_users_list_filter_sort_paginate(admin_api):
    d, api = admin_api
    for n in ("zed", "amy", "mia", "bea"):
        api.create_user(n, role="admin" if n == "mia" else "user")
    names = [u["name"] for u in api.get("/api/v1/users?sort=name").json["items"]]
    assert names == sorted(names) and len(names) == 5
    names = [u["name"] for u in api.get("/api/v1/users?sort=-name").json["items"]]
    assert names == sorted(names, reverse=True)
    admins = [u["name"] for u in api.get("/api/v1/users?role=admin").json["items"]]
    assert sorted(admins) == ["admin", "mia"]
    assert [u["name"] for u in api.get("/api/v1/users?q=E").json["items"]] == ["zed", "bea"]
    seen = []
    url = "/api/v1/users?limit=2&sort=name"
    while True:
        page = api.get(url).expect(200).json
        assert len(page["items"]) <= 2
        seen += [u["name"] for u in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/users?limit=2&sort=name&cursor={page['next_cursor']}"
    assert seen == sorted(seen) and len(seen) == 5
    off = api.get("/api/v1/users?limit=2&offset=2&sort=name").json["items"]
    assert [u["name"] for u in off] == seen[2:4]


def seed_log(d, now):
    rows = []
    for i in range(120):
        kw = {}
        if i % 4 == 1:
            kw = dict(result="refused", code="550 5.7.1", reason="listed on zen.example",
                      check_name="dnsbl")
        elif i % 4 == 2:
            kw = dict(result="deferred", code="451 4.7.1", reason="greylisted", check_name="grey")
        if i == 7:
            kw.update(client_addr="203.0.113.9", qid="ABCDEF0123456789", sender="")
        rows.append(log_row(i, now - i * 60 * 1000, **kw))
    rows.append(log_row(999, now - 5 * HOUR, recipients="not json", result="aborted"))
    insert_log_rows(d.db_path, rows)


def test_messages_search(admin_api):
    d, api = admin_api
    now = int(time.time() * 1000)
    seed_log(d, now)
    r = api.get("/api/v1/messages?limit=10").expect(200).json
    ts = [m["ts"] for m in r["items"]]
    assert len(ts) == 10 and ts == sorted(ts, reverse=True) and r["next_cursor"]
    # Keyset pagination walks everything exactly once.
    seen, url = [], "/api/v1/messages?limit=50"
    while url:
        page = api.get(url).expect(200).json
        seen += [m["id"] for m in page["items"]]
        url = page["next_cursor"] and f"/api/v1/messages?limit=50&cursor={page['next_cursor']}"
    assert len(seen) == len(set(seen)) == 121
    asc = api.get("/api/v1/messages?sort=ts&limit=3").json["items"]
    assert asc[0]["result"] == "aborted" and asc[0]["recipients"] == []
    # Filters.
    def ids(q):
        return api.get("/api/v1/messages?limit=500&" + q).expect(200).json["items"]
    assert len(ids("result=refused")) == 30
    assert all(m["check_name"] == "dnsbl" for m in ids("result=refused"))
    assert len(ids("reason=ZEN")) == 30
    assert len(ids("check=grey")) == 30
    one = ids("client=203.0.113.9")
    assert len(one) == 1 and one[0]["qid"] == "ABCDEF0123456789" and one[0]["sender"] == ""
    assert len(ids("qid=ABCDEF0123456789")) == 1
    assert len(ids("sender=%3C%3E")) == 1
    assert len(ids("sender=sender3@example.net")) == 12
    assert len(ids("sender=SENDER3@example.net")) == 12
    assert len(ids("recipient=rcpt2@EXAMPLE.org")) == len([i for i in range(120) if i % 7 == 2])
    assert len(ids(f"from={now - 10 * 60 * 1000}&to={now + 1}")) == 11
    assert ids("result=refused&reason=nomatch") == []
    m = api.get(f"/api/v1/messages/{one[0]['id']}").expect(200).json
    assert m == one[0]
    api.get("/api/v1/messages/999999").expect(404)


def test_stats_messages(admin_api):
    d, api = admin_api
    now = int(time.time() * 1000)
    seed_log(d, now)
    frm = now - now % HOUR - 6 * HOUR
    r = api.get(f"/api/v1/stats/messages?from={frm}&to={now + 1}&bucket=hour").expect(200).json
    assert r["bucket"] == "hour" and r["bucket_ms"] == HOUR
    assert len(r["buckets"]) == 7 or len(r["buckets"]) == 8
    total = sum(sum(b["by_result"].values()) for b in r["buckets"])
    assert total == 121
    assert sum(b["by_result"].get("refused", 0) for b in r["buckets"]) == 30
    assert sum(b["by_check"].get("dnsbl", 0) for b in r["buckets"]) == 30
    assert sum(b["by_check"].get("none", 0) for b in r["buckets"]) == 61
    starts = [b["start"] for b in r["buckets"]]
    assert starts == sorted(starts) and all(s % HOUR == 0 for s in starts)
    day = api.get("/api/v1/stats/messages?bucket=day").expect(200).json
    assert day["bucket_ms"] == 24 * HOUR
    iso = api.get("/api/v1/stats/messages?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00.000Z")
    assert len(iso.expect(200).json["buckets"]) == 24


def test_metrics(admin_api):
    d, api = admin_api
    seed_log(d, int(time.time() * 1000))
    r = api.get("/metrics").expect(200)
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    assert 'moat_message_log_entries{result="refused"} 30' in text
    assert 'moat_message_log_entries{result="aborted"} 1' in text
    assert "# TYPE moat_queue_recipients gauge" in text
    assert 'moat_build_info{version="' in text
    assert 'moat_http_requests_total{code="200"}' in text
    # With an admin token (how Prometheus scrapes).
    tok = api.create_token("prom", scope="admin")["token"]
    assert Api(d.http_port, token=tok).get("/metrics").status == 200


def test_metrics_queue_counts(admin_api):
    d, api = admin_api
    import sqlite3
    con = sqlite3.connect(str(d.db_path), timeout=10)
    con.execute("INSERT INTO queue_message (qid, sender, client_addr, client_name, helo, size,"
                " received_at) VALUES ('Q1', 's@x', '1.2.3.4', 'h', 'h', 10, 0)")
    con.executemany("INSERT INTO queue_rcpt (qid, rcpt, state) VALUES ('Q1', ?, ?)",
                    [("a@x", "held"), ("b@x", "held"), ("c@x", "deferred")])
    con.commit()
    con.close()
    text = api.get("/metrics").expect(200).body.decode()
    assert 'moat_queue_recipients{state="held"} 2' in text
    assert 'moat_queue_recipients{state="deferred"} 1' in text


def test_audit_pagination_and_filters(admin_api):
    d, api = admin_api
    for i in range(5):
        api.create_token(f"t{i}")
    page = api.get("/api/v1/audit?limit=2&action=token.create").expect(200).json
    assert [i["object_type"] for i in page["items"]] == ["token", "token"]
    seen = [i["id"] for i in page["items"]]
    while page["next_cursor"]:
        page = api.get(f"/api/v1/audit?limit=2&action=token.create&cursor={page['next_cursor']}"
                       ).json
        seen += [i["id"] for i in page["items"]]
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    assert api.get("/api/v1/audit?actor=nobody").json["items"] == []
    logins = api.get("/api/v1/audit?action=session.login").json["items"]
    assert logins and logins[0]["client_addr"] == "127.0.0.1"
