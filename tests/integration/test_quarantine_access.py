"""Who reaches which quarantine item: the role x object x verb matrix, through the real binary.

Principals: the administrator, user A (owns a@example.org), user B (owns b@example.org) and
user M (manages the group g@example.org), each through a console session and through an
API token.  Objects: the quarantine items of a@, b@ and g@, made by real SMTP through a
server rule whose action is quarantine.  Verbs: list (unfiltered and with filters naming
another's address), count, show, raw, html, release, delete, release + allow and
delete + block, by id and by filter.  Nobody reaches another's items: 404 by id (never 403:
an item's existence is not disclosed), nothing in lists and counts, nothing changed by a
filter; the administrator reaches every item."""


import pytest

from conftest import qid_of
from peers_delivery import Downstream, delivery_conf
from peers_policy import set_rules
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)

ADDR = {"A": "a@example.org", "B": "b@example.org", "M": "g@example.org"}
SENDER = "offers@shop.example"


def html_message(subject):
    return (f"From: <{SENDER}>\r\nTo: <list@example.org>\r\nSubject: {subject}\r\n"
            "Message-ID: <matrix-1@shop.example>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCheap things.\r\n"
            "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            "<p>Cheap <b>things</b>.</p>\r\n--b1--\r\n").encode()


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


@pytest.fixture
def world(api_moatd, downstream):
    d = api_moatd(**delivery_conf(downstream.addr))
    admin = Api(d.http_port)
    admin.login("admin", ADMIN_PASSWORD)
    admin.put("/api/v1/policy/settings/group_mail", {"value": "anyone"}).expect(200)
    people = {}
    for who, name, addrs in (("A", "usera", ["a@example.org"]),
                             ("B", "userb", ["b@example.org"]),
                             ("M", "userm", ["m@example.org"])):
        u = admin.post("/api/v1/users", {"name": name, "password": name + "-pass-1",
                                         "addresses": addrs}).expect(201).json
        s = Api(d.http_port)
        s.login(name, name + "-pass-1")
        t = Api(d.http_port, token=s.create_token(name + "-t")["token"])
        people[who] = dict(id=u["id"], name=name, session=s, token=t)
    admin.post("/api/v1/directory/groups", {"address": "g@example.org",
                                            "members": ["m@example.org"]}).expect(201)
    admin.post("/api/v1/directory/groups/g@example.org/managers",
               {"user": "userm"}).expect(201)
    people["admin"] = dict(id=None, name="admin", session=admin,
                           token=Api(d.http_port,
                                     token=admin.create_token("adm-t", scope="admin")["token"]))
    # One message to all three: one item each, of kind spam (end users may release it).
    set_rules(d, [{"name": "offers",
                   "when": {"field": "header", "op": "contains", "value": "offer",
                            "header": "Subject"},
                   "action": {"type": "quarantine", "kind": "spam"}}])
    c = d.raw()
    c.ehlo()
    r = c.transaction(SENDER, list(ADDR.values()), html_message("An offer"))
    c.close()
    assert r.code == 250, r
    qid = qid_of(r)
    items = {rcpt: i for i, rcpt in d.query("SELECT id, rcpt FROM quarantine WHERE qid = ?",
                                            (qid,))}
    assert sorted(items) == sorted(ADDR.values()), items
    return dict(d=d, people=people, items=items, qid=qid, ds=downstream)


def unchanged(w):
    """Every item still there; nothing released, deleted or sender-listed."""
    d = w["d"]
    assert sorted(r[0] for r in d.query("SELECT rcpt FROM quarantine")) == sorted(ADDR.values())
    assert d.query("SELECT count(*) FROM user_sender_list") == [(0,)]
    assert d.query("SELECT count(*) FROM policy_entry WHERE list IN"
                   " ('sender_allow', 'sender_deny')") == [(0,)]
    assert d.query("SELECT count(*) FROM message_event WHERE event IN"
                   " ('quarantine.release', 'quarantine.delete')") == [(0,)]
    assert w["ds"].deliveries() == []


def listed(client, query=""):
    r = client.get("/api/v1/quarantine" + query).expect(200)
    return sorted(i["recipient"] for i in r.json["items"])


def counted(client, query=""):
    return client.get("/api/v1/quarantine/count" + query).expect(200).json["count"]


@pytest.mark.parametrize("who", ["A", "B", "M"])
@pytest.mark.parametrize("via", ["session", "token"])
def test_nobody_reaches_anothers_items(world, who, via):
    w = world
    client = w["people"][who][via]
    mine = ADDR[who]
    others = [a for a in ADDR.values() if a != mine]
    # Lists and counts show only the caller's own item, whatever the filter names.
    assert listed(client) == [mine]
    assert counted(client) == 1
    for other in others:
        for q in (f"?recipient={other}", f"?q={other}", f"?recipient={other}&kind=spam",
                  f"?sender={SENDER}&recipient={other}"):
            assert listed(client, q) == [], (who, via, q)
            assert counted(client, q) == 0, (who, via, q)
    assert listed(client, f"?sender={SENDER}") == [mine]
    assert listed(client, "?q=example.org") == [mine]
    for other in others:
        oid = w["items"][other]
        # By id: 404, never 403.
        for path in (f"/api/v1/quarantine/{oid}", f"/api/v1/quarantine/{oid}/raw",
                     f"/api/v1/quarantine/{oid}/html"):
            client.get(path).expect(404)
        for verb, extra in (("release", {}), ("delete", {}),
                            ("release", {"sender_list": "allow"}),
                            ("delete", {"sender_list": "block"})):
            body = dict({"ids": [oid]}, **extra)
            client.post(f"/api/v1/quarantine/{verb}", body).expect(404)
            # Mixed with one's own id: still 404, and nothing done to either.
            body = dict({"ids": [w["items"][mine], oid]}, **extra)
            client.post(f"/api/v1/quarantine/{verb}", body).expect(404)
            # By filter: nothing matches another's address.
            for flt in ({"recipient": other}, {"q": other},
                        {"recipient": other, "sender": SENDER}):
                body = dict({"filter": flt}, **extra)
                r = client.post(f"/api/v1/quarantine/{verb}", body).expect(200).json
                assert (r["recipients"], r["messages"], r["sender_listed"]) == (0, 0, 0), (
                    who, via, verb, flt, r)
    # The caller's own item shows none of the message's other recipients.
    item = client.get(f"/api/v1/quarantine/{w['items'][mine]}").expect(200).json
    assert item["recipient"] == mine
    assert [x["recipient"] for x in item["recipients"] if x["recipient"] != mine] == [], (
        item["recipients"])
    unchanged(w)


@pytest.mark.parametrize("via", ["session", "token"])
def test_administrator_reaches_every_item(world, via):
    w = world
    client = w["people"]["admin"][via]
    assert listed(client) == sorted(ADDR.values())
    assert counted(client) == 3
    for addr, iid in w["items"].items():
        assert listed(client, f"?recipient={addr}") == [addr]
        assert client.get(f"/api/v1/quarantine/{iid}").expect(200).json["recipient"] == addr
        raw = client.get(f"/api/v1/quarantine/{iid}/raw").expect(200)
        assert b"Subject: An offer" in raw.body
        client.get(f"/api/v1/quarantine/{iid}/html").expect(200)
    item = client.get(f"/api/v1/quarantine/{w['items']['a@example.org']}").json
    # The other items of the same message: every one, for the administrator.
    assert sorted(x["recipient"] for x in item["recipients"]) == ["b@example.org",
                                                                  "g@example.org"]
    unchanged(w)


def test_owners_act_on_their_own_items(world):
    w = world
    d, p, items = w["d"], w["people"], w["items"]
    a, b, m = p["A"]["session"], p["B"]["token"], p["M"]["session"]
    # A: show, raw, html, then release + allow: the allow lands on A's personal list.
    a.get(f"/api/v1/quarantine/{items['a@example.org']}/raw").expect(200)
    a.get(f"/api/v1/quarantine/{items['a@example.org']}/html").expect(200)
    r = a.post("/api/v1/quarantine/release", {"ids": [items["a@example.org"]],
                                              "sender_list": "allow"}).expect(200).json
    assert (r["recipients"], r["sender_listed"]) == (1, 1), r
    assert d.query("SELECT user_id, kind FROM user_sender_list") == [(p["A"]["id"], "allow")]
    w["ds"].wait_for(1)
    assert w["ds"].rcpts() == ["a@example.org"]
    # B by filter, everything in scope: only B's item goes.
    r = b.post("/api/v1/quarantine/delete", {"filter": {}, "all": True}).expect(200).json
    assert r["recipients"] == 1, r
    # M, the group's manager: delete + block by filter on the group's address.
    r = m.post("/api/v1/quarantine/delete", {"filter": {"recipient": "g@example.org"},
                                             "sender_list": "block"}).expect(200).json
    assert (r["recipients"], r["sender_listed"]) == (1, 1), r
    assert d.query("SELECT count(*) FROM quarantine") == [(0,)]
    assert sorted(d.query("SELECT user_id, kind FROM user_sender_list")) == sorted(
        [(p["A"]["id"], "allow"), (p["M"]["id"], "block")])
    # Nothing reached the administrator's lists.
    assert d.query("SELECT count(*) FROM policy_entry WHERE list IN"
                   " ('sender_allow', 'sender_deny')") == [(0,)]
