"""The quarantine store through the real binary: real SMTP into quarantine by a server rule,
the API (list, count, show, raw, html, release, delete) and `moatd quarantine`, a real
aiosmtpd downstream for released mail, the rows, files and events in the daemon's own SQLite
file and spool, and the background purge of expired items."""

import json
import sqlite3
import subprocess

import pytest

from conftest import MOATD_BIN, message, qid_of
from peers_delivery import Downstream, delivery_conf, wait_for
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)
from peers_policy import set_rules
from test_content_rules import subject_is, rcpt_is, deliver

DAY_MS = 86400000


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


@pytest.fixture
def d(api_moatd, downstream):
    return api_moatd(**delivery_conf(downstream.addr, quarantine_purge_interval="1s"))


def admin(d):
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    return api


def quarantine_rule(d, word, kind=None):
    action = {"type": "quarantine"}
    if kind is not None:
        action["kind"] = kind
    return set_rules(d, [{"name": f"q {word}", "when": subject_is(word), "action": action}])


def items(d, qid):
    return d.query("SELECT id, rcpt, kind, subject, message_id, created_at, expires_at"
                   " FROM quarantine WHERE qid = ? ORDER BY rcpt", (qid,))


def qfile(d, qid):
    return d.data_dir / "spool" / "quarantine" / qid


def test_rows_are_complete_and_release_delivers_byte_for_byte(d, downstream):
    ids = quarantine_rule(d, "offer", kind="spam")
    body = message(subject="A special offer")
    r = deliver(d, ["A@example.org", "b@example.org"], body)
    assert r.code == 250, r
    qid = qid_of(r)
    rows = items(d, qid)
    assert [(x[1], x[2], x[3]) for x in rows] == [
        ("a@example.org", "spam", "A special offer"), ("b@example.org", "spam", "A special offer")]
    assert all(x[4].startswith("<") and x[4].endswith("@example.net>") for x in rows), rows
    assert all(x[6] - x[5] == 14 * DAY_MS for x in rows), rows
    ev = d.query("SELECT rcpt, event, detail, actor FROM message_event WHERE qid = ? ORDER BY rcpt",
                 (qid,))
    assert [(e[0], e[1], json.loads(e[2]), e[3]) for e in ev] == [
        (r_, "quarantine.add", {"reason": f"rule {ids[0]} q offer", "kind": "spam"}, "system")
        for r_ in ("a@example.org", "b@example.org")], ev
    stored = qfile(d, qid).read_bytes()
    assert stored.endswith(body)

    api = admin(d)
    a_id = rows[0][0]
    got = api.get(f"/api/v1/quarantine/{a_id}")
    got.expect(200)
    assert got.json["kind"] == "spam" and got.json["subject"] == "A special offer"
    assert got.json["created_at"].endswith("Z") and got.json["expires_at"].endswith("Z")
    assert [o["recipient"] for o in got.json["recipients"]] == ["b@example.org"]

    res = api.post("/api/v1/quarantine/release", {"ids": [a_id]})
    res.expect(200)
    assert res.json == {"recipients": 1, "messages": 1, "sender_listed": 0}
    downstream.wait_for(1)
    m = downstream.messages[0]
    assert m["rcpt_tos"] == ["a@example.org"]
    assert m["content"].replace(b"\r\n", b"\n").endswith(stored.replace(b"\r\n", b"\n"))
    # b is still quarantined, so the file stays; a's item is gone.
    assert [x[1] for x in items(d, qid)] == ["b@example.org"]
    assert qfile(d, qid).exists()
    ev = d.query("SELECT rcpt, actor FROM message_event WHERE qid = ? AND event ="
                 " 'quarantine.release'", (qid,))
    assert ev == [("a@example.org", "admin:admin")], ev
    assert d.query("SELECT count(*) FROM api_audit WHERE action = 'quarantine.release'") == [(1,)]
    # Releasing the last item removes the quarantine file once delivered.
    api.post("/api/v1/quarantine/release", {"ids": [rows[1][0]]}).expect(200)
    downstream.wait_for(2)
    assert downstream.messages[1]["rcpt_tos"] == ["b@example.org"]
    assert items(d, qid) == [] and not qfile(d, qid).exists()
    # A released id is gone: 404, and nothing is delivered twice.
    api.post("/api/v1/quarantine/release", {"ids": [a_id]}).expect(404, field="ids")


def test_delete_removes_rows_and_file_and_sender_lists(d):
    quarantine_rule(d, "junk")
    q1 = qid_of(deliver(d, ["a@example.org"], message(subject="junk 1"), sender="bad@spam.test"))
    q2 = qid_of(deliver(d, ["a@example.org"], message(subject="junk 2"), sender="ok@good.test"))
    api = admin(d)
    i1 = items(d, q1)[0][0]
    i2 = items(d, q2)[0][0]
    r = api.post("/api/v1/quarantine/delete", {"ids": [i1], "sender_list": "block"})
    r.expect(200)
    assert r.json == {"recipients": 1, "messages": 1, "sender_listed": 1}
    assert items(d, q1) == [] and not qfile(d, q1).exists()
    assert d.query("SELECT value FROM policy_entry WHERE list = 'sender_deny'") == \
        [("bad@spam.test",)]
    api.post("/api/v1/quarantine/delete", {"ids": [i2], "sender_list": "allow"}).expect(
        422, field="sender_list")
    r = api.post("/api/v1/quarantine/release", {"ids": [i2], "sender_list": "allow"})
    r.expect(200)
    assert r.json["sender_listed"] == 1
    assert d.query("SELECT value FROM policy_entry WHERE list = 'sender_allow'") == \
        [("ok@good.test",)]
    assert [e[0] for e in d.query("SELECT detail FROM message_event WHERE event ="
                                  " 'quarantine.delete'")] == ['{"sender_list":"block"}']


def test_bulk_by_filter_counts_first(d):
    quarantine_rule(d, "bulk")
    for i in range(7):
        deliver(d, ["a@example.org"], message(subject=f"bulk {i}"))
    deliver(d, ["a@example.org"], message(subject="other bulk"))
    api = admin(d)
    assert api.get("/api/v1/quarantine/count?subject=bulk%20").json == {"count": 7}
    assert api.get("/api/v1/quarantine/count").json == {"count": 8}
    api.post("/api/v1/quarantine/delete", {"filter": {}}).expect(422, field="all")
    api.post("/api/v1/quarantine/delete", {"filter": {"bogus": "x"}}).expect(
        422, field="filter.bogus")
    r = api.post("/api/v1/quarantine/delete", {"filter": {"subject": "bulk "}})
    r.expect(200)
    assert r.json == {"recipients": 7, "messages": 7, "sender_listed": 0}
    left = d.query("SELECT subject FROM quarantine")
    assert left == [("other bulk",)]
    assert len(list((d.data_dir / "spool" / "quarantine").iterdir())) == 1
    assert d.query("SELECT count(*) FROM message_event WHERE event = 'quarantine.delete'") == [(7,)]
    assert d.query("SELECT count(*) FROM api_audit WHERE action = 'quarantine.delete'") == [(1,)]


def test_list_filters_sorts_and_pages(d):
    quarantine_rule(d, "page")
    for i in range(5):
        deliver(d, ["a@example.org"], message(subject=f"page {i}"), sender=f"s{i}@x{i}.test")
    api = admin(d)
    got = api.get("/api/v1/quarantine?limit=2&sort=subject&order=asc")
    got.expect(200)
    assert [x["subject"] for x in got.json["items"]] == ["page 0", "page 1"]
    nxt = got.json["next_cursor"]
    got = api.get(f"/api/v1/quarantine?limit=2&sort=subject&order=asc&cursor={nxt}")
    assert [x["subject"] for x in got.json["items"]] == ["page 2", "page 3"]
    assert [x["sender"] for x in api.get("/api/v1/quarantine?sender=S3@X3.TEST").json["items"]] \
        == ["s3@x3.test"]
    assert len(api.get("/api/v1/quarantine?sender=s*").json["items"]) == 5
    assert len(api.get("/api/v1/quarantine?q=x4.test").json["items"]) == 1
    assert api.get("/api/v1/quarantine?since=2000-01-01T00:00:00%2B02:00").json["items"]
    assert api.get("/api/v1/quarantine?until=2000-01-01T00:00:00Z").json["items"] == []
    api.get("/api/v1/quarantine?sort=bogus").expect(422, field="sort")
    api.get("/api/v1/quarantine?cursor=zzz").expect(422, field="cursor")
    api.get("/api/v1/quarantine?kind=nope").expect(422, field="kind")


XSS_HTML = (
    "<html><body><p onclick=\"alert(1)\">Hello <b>friend</b></p>"
    "<script>alert('x')</script><img src=\"http://tracker.test/p.gif\" onerror=\"alert(2)\">"
    "<a href=\"javascript:alert(3)\">click</a><a href=\"jav&#x61;script:alert(4)\">x</a>"
    "<iframe src=\"http://evil.test/\"></iframe><form action=\"http://evil.test\">"
    "<input name=q></form><div style=\"background:url(http://evil.test/a)\">styled</div>"
    "<a href=\"#top\">top</a></body></html>")


def xss_message():
    return (b"From: \"<script>alert(5)</script>\" <sender@example.net>\r\n"
            b"To: a@example.org\r\n"
            b"Subject: xss <img src=x onerror=alert(6)> test\r\n"
            b"Message-ID: <xss@example.net>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
            b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain <script>text</script>\r\n"
            b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            + XSS_HTML.encode() + b"\r\n--b1--\r\n")


def test_preview_is_inert_and_html_is_sanitised(d):
    quarantine_rule(d, "xss")
    raw = xss_message()
    qid = qid_of(deliver(d, ["a@example.org"], raw))
    api = admin(d)
    iid = items(d, qid)[0][0]
    show = api.get(f"/api/v1/quarantine/{iid}")
    show.expect(200)
    j = show.json
    assert j["subject"] == "xss <img src=x onerror=alert(6)> test"  # data, in a JSON string
    assert show.headers["content-type"].startswith("application/json")
    assert {"name": "From", "value": "\"<script>alert(5)</script>\" <sender@example.net>"} in \
        j["headers"]
    assert j["text"].strip() == "plain <script>text</script>"
    assert j["has_html"] is True and "Hello friend" in j["html_text"]
    assert "alert('x')" not in j["html_text"]

    h = api.get(f"/api/v1/quarantine/{iid}/html")
    h.expect(200)
    assert h.headers["content-security-policy"] == \
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert h.headers["x-frame-options"] == "SAMEORIGIN"
    assert h.headers["content-type"].startswith("text/html")
    page = h.body.decode() if isinstance(h.body, bytes) else h.body
    low = page.lower()
    for bad in ("<script", "onclick", "onerror", "javascript", "http://", "<iframe", "<form",
                "<input", "url("):
        assert bad not in low, (bad, page)
    assert "<b>friend</b>" in page and "click" in page and 'href="#top"' in page
    # Everything else keeps DENY.
    assert api.get(f"/api/v1/quarantine/{iid}").headers["x-frame-options"] == "DENY"

    r = api.get(f"/api/v1/quarantine/{iid}/raw")
    r.expect(200)
    assert r.headers["content-type"] == "message/rfc822"
    assert r.headers["content-disposition"] == f'attachment; filename="{qid}.eml"'
    body = r.body if isinstance(r.body, bytes) else r.body.encode()
    assert body == qfile(d, qid).read_bytes() and body.endswith(raw)


def test_end_user_scope(d, downstream):
    quarantine_rule(d, "scope")
    qa = qid_of(deliver(d, ["a@example.org"], message(subject="scope a")))
    qb = qid_of(deliver(d, ["b@example.org"], message(subject="scope b")))
    api = admin(d)
    bob = api.create_user("bob", password="bob-password-1")
    api.post(f"/api/v1/users/{bob['id']}/addresses", {"address": "b@example.org",
                                                     "kind": "alias"}).expect(201)
    user = Api(d.http_port)
    user.login("bob", "bob-password-1")
    mine = user.get("/api/v1/quarantine").json["items"]
    assert [x["qid"] for x in mine] == [qb]
    assert user.get("/api/v1/quarantine/count").json == {"count": 1}
    a_id = items(d, qa)[0][0]
    b_id = items(d, qb)[0][0]
    for path in (f"/api/v1/quarantine/{a_id}", f"/api/v1/quarantine/{a_id}/raw",
                 f"/api/v1/quarantine/{a_id}/html"):
        user.get(path).expect(404)
    user.post("/api/v1/quarantine/delete", {"ids": [a_id]}).expect(404)
    r = user.post("/api/v1/quarantine/delete", {"filter": {"recipient": "a@example.org"}})
    r.expect(200)
    assert r.json["recipients"] == 0
    assert items(d, qa) != []
    # A kind an end user may not release: 403 naming kind; the item stays.
    con = sqlite3.connect(str(d.db_path), timeout=10)
    con.execute("UPDATE quarantine SET kind = 'virus' WHERE id = ?", (b_id,))
    con.commit()
    con.close()
    user.post("/api/v1/quarantine/release", {"ids": [b_id]}).expect(403, field="kind")
    con = sqlite3.connect(str(d.db_path), timeout=10)
    con.execute("UPDATE quarantine SET kind = 'spam' WHERE id = ?", (b_id,))
    con.commit()
    con.close()
    r = user.post("/api/v1/quarantine/release", {"ids": [b_id], "sender_list": "allow"})
    r.expect(200)
    assert r.json == {"recipients": 1, "messages": 1, "sender_listed": 1}
    downstream.wait_for(1)
    assert downstream.messages[0]["rcpt_tos"] == ["b@example.org"]
    assert d.query("SELECT u.name, l.kind, l.value FROM user_sender_list l JOIN dir_user u"
                   " ON u.id = l.user_id") == [("bob", "allow", "s@example.net")]
    assert d.query("SELECT count(*) FROM policy_entry WHERE list = 'sender_allow'") == [(0,)]


def test_purge_removes_expired_items(d):
    quarantine_rule(d, "old")
    qid = qid_of(deliver(d, ["a@example.org"], message(subject="old news")))
    keep = qid_of(deliver(d, ["a@example.org"], message(subject="old but fresh")))
    con = sqlite3.connect(str(d.db_path), timeout=10)
    con.execute("UPDATE quarantine SET expires_at = 1000 WHERE qid = ?", (qid,))
    con.commit()
    con.close()
    assert wait_for(lambda: "quarantine purge expired=1" in d.log_text(), timeout=10)
    assert items(d, qid) == [] and not qfile(d, qid).exists()
    assert items(d, keep) != [] and qfile(d, keep).exists()
    assert d.query("SELECT actor FROM message_event WHERE qid = ? AND event ="
                   " 'quarantine.expire'", (qid,)) == [("system",)]


def test_rule_kind_is_validated(d):
    api = admin(d)
    r = api.post("/api/v1/rules", {"name": "k", "when": subject_is("x"),
                                   "action": {"type": "quarantine", "kind": "virus"}})
    r.expect(422)
    assert "kind" in r.error["field"], r.error
    r = api.post("/api/v1/rules", {"name": "k", "when": subject_is("x"),
                                   "action": {"type": "quarantine", "kind": "spam"}})
    r.expect(201)
    assert r.json["action"] == {"type": "quarantine", "kind": "spam"}


def test_cli_lists_and_releases_with_audit(d, downstream):
    quarantine_rule(d, "cli")
    qid = qid_of(deliver(d, ["a@example.org"], message(subject="cli one")))
    iid = items(d, qid)[0][0]

    def cli(*args):
        return subprocess.run([MOATD_BIN, "quarantine", "--data-dir", str(d.data_dir)]
                              + list(args),
                              capture_output=True, text=True, timeout=20)
    out = cli("list", "--json")
    assert out.returncode == 0, out.stderr
    assert [x["id"] for x in json.loads(out.stdout)] == [iid]
    assert cli("release").returncode == 2
    out = cli("release", "--id", str(iid))
    assert out.returncode == 0, out.stderr
    downstream.wait_for(1)
    assert d.query("SELECT actor, via FROM api_audit WHERE action = 'quarantine.release'") == \
        [("cli", "cli")]
    assert d.query("SELECT actor FROM message_event WHERE event = 'quarantine.release'") == \
        [("cli",)]


def test_start_up_reconciles_files_and_rows(moatd_factory, d, downstream):
    quarantine_rule(d, "rec")
    q1 = qid_of(deliver(d, ["a@example.org"], message(subject="rec 1")))
    q2 = qid_of(deliver(d, ["a@example.org"], message(subject="rec 2")))
    assert d.stop() == 0
    qfile(d, q1).unlink()                           # an item without its file
    orphan = qfile(d, "0123456789abcdef")            # a file without an item
    orphan.write_bytes(b"Subject: x\r\n\r\nx\r\n")
    d = moatd_factory(data_dir=d.data_dir, **delivery_conf(downstream.addr))
    assert wait_for(lambda: "quarantine reconciled kept=1 orphans_removed=1 lost=1"
                    in d.log_text(), timeout=5)
    assert not orphan.exists()
    assert items(d, q1) == [] and items(d, q2) != []


def test_release_never_uses_a_queue_file_it_does_not_own(d, downstream):
    """One recipient of a message is delivered at once, another quarantined.  Between the
    queue runner's commit that deletes the finished message and its unlink of queue/<qid>,
    the file is still there; a release at that moment must not take it as the released
    copy, or the runner's unlink removes the released recipient's message.  Here the file
    the runner has not removed yet is stood in for by a different one under queue/<qid>,
    then removed after the release as the runner would: the released recipient still gets
    the quarantined bytes, from a copy under a new queue id."""
    set_rules(d, [{"name": "q b", "when": rcpt_is("b@example.org"),
                   "action": {"type": "quarantine"}}])
    body = message(subject="half held")
    qid = qid_of(deliver(d, ["a@example.org", "b@example.org"], body))
    downstream.wait_for(1)
    assert downstream.messages[0]["rcpt_tos"] == ["a@example.org"]
    queued = d.data_dir / "spool" / "queue" / qid
    assert wait_for(lambda: d.query("SELECT count(*) FROM queue_message WHERE qid = ?",
                                    (qid,)) == [(0,)] and not queued.exists(), timeout=10)
    stored = qfile(d, qid).read_bytes()
    queued.write_bytes(b"Subject: not the quarantined message\r\n\r\nstale\r\n")
    iid = items(d, qid)[0][0]
    admin(d).post("/api/v1/quarantine/release", {"ids": [iid]}).expect(200)
    queued.unlink()                  # the runner's unlink of the finished message
    downstream.wait_for(2)
    m = downstream.messages[1]
    assert m["rcpt_tos"] == ["b@example.org"]
    assert m["content"].replace(b"\r\n", b"\n").endswith(stored.replace(b"\r\n", b"\n"))
    ev = d.query("SELECT detail FROM message_event WHERE qid = ? AND event ="
                 " 'quarantine.release'", (qid,))
    copy = json.loads(ev[0][0])["queue_qid"]
    assert copy != qid and len(copy) == 16, ev
    assert wait_for(lambda: not (d.data_dir / "spool" / "queue" / copy).exists(), timeout=10)
    assert not qfile(d, qid).exists() and items(d, qid) == []


def test_release_and_allow_respects_the_personal_list_bound(api_moatd, downstream):
    """A full personal list (user_sender_list_max) takes no entry from "release and allow";
    the item is still released."""
    d = api_moatd(**delivery_conf(downstream.addr, user_sender_list_max="1"))
    quarantine_rule(d, "bound")
    q1 = qid_of(deliver(d, ["b@example.org"], message(subject="bound one"), sender="one@example.net"))
    q2 = qid_of(deliver(d, ["b@example.org"], message(subject="bound two"), sender="two@example.net"))
    api = admin(d)
    bob = api.create_user("bob", password="bob-password-1")
    api.post(f"/api/v1/users/{bob['id']}/addresses", {"address": "b@example.org",
                                                     "kind": "alias"}).expect(201)
    user = Api(d.http_port)
    user.login("bob", "bob-password-1")
    for qid, listed in ((q1, 1), (q2, 0)):
        r = user.post("/api/v1/quarantine/release", {"ids": [items(d, qid)[0][0]],
                                                     "sender_list": "allow"}).expect(200)
        assert r.json == {"recipients": 1, "messages": 1, "sender_listed": listed}
    downstream.wait_for(2)
    assert d.query("SELECT value FROM user_sender_list") == [("one@example.net",)]
