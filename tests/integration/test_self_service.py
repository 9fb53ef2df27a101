"""End users' personal sender lists and group managers, through the real binary.

The lists are edited over the API (/api/v1/account/senders for the caller,
/api/v1/users/{id}/senders for administrators) and applied by the policy from the next
message once moatd has loaded the new generation (its `policy loaded generation=N` line):
a block refuses only that recipient at RCPT, an allow lifts a spam-kind quarantine for that
recipient only.  Mail goes through real SMTP to a real aiosmtpd downstream."""


import pytest

from conftest import message, qid_of, stuff
from peers_delivery import Downstream, delivery_conf, wait_for
from peers_policy import applied, set_rules
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


def make_user(admin, port, name, addresses):
    """A user with directory addresses (the first primary, the rest aliases), logged in."""
    u = admin.post("/api/v1/users", {"name": name, "password": name + "-pass-1",
                                     "addresses": addresses}).expect(201).json
    api = Api(port)
    api.login(name, name + "-pass-1")
    return u, api


@pytest.fixture
def site(api_moatd, downstream):
    d = api_moatd(**delivery_conf(downstream.addr, user_sender_list_max="5"))
    admin = Api(d.http_port)
    admin.login("admin", ADMIN_PASSWORD)
    a, alice = make_user(admin, d.http_port, "alice", ["a@example.org", "a2@example.org"])
    b, bob = make_user(admin, d.http_port, "bob", ["b@example.org"])
    return dict(d=d, ds=downstream, admin=admin, a=a, alice=alice, b=b, bob=bob)



def subject_has(word):
    return {"field": "header", "op": "contains", "value": word, "header": "Subject"}


def session(d, sender, rcpts):
    """MAIL and one RCPT each: returns (client, [reply per recipient])."""
    c = d.raw()
    c.ehlo()
    c.expect_cmd(f"MAIL FROM:<{sender}>", "250 2.1.0")
    return c, [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]


def finish(c, body):
    c.expect_cmd("DATA", 354)
    c.send(stuff(body))
    r = c.readreply()
    c.close()
    return r


# ---- the API -------------------------------------------------------------------------

def test_own_list_add_show_delete_and_validation(site):
    alice, d = site["alice"], site["d"]
    e = alice.post("/api/v1/account/senders",
                   {"kind": "block", "value": "Spam@Example.NET"}).expect(201).json
    assert e["kind"] == "block" and e["value"] == "spam@example.net" and e["id"] > 0, e
    dom = alice.post("/api/v1/account/senders",
                     {"kind": "allow", "value": "@Partner.Example"}).expect(201).json
    assert dom["value"] == "@partner.example", dom
    items = alice.get("/api/v1/account/senders").expect(200).json["items"]
    assert [(i["kind"], i["value"]) for i in items] == [
        ("block", "spam@example.net"), ("allow", "@partner.example")]
    assert [i["value"] for i in alice.get("/api/v1/account/senders?kind=allow")
            .expect(200).json["items"]] == ["@partner.example"]
    # Bad values name the field; nothing is stored.
    for bad in ["*@example.net", "example.net", "no-at-all", "@", "a@b@c", "<>",
                "x@exa mple.net", "@*.example.net", "a" * 330 + "@example.net"]:
        alice.post("/api/v1/account/senders", {"kind": "block", "value": bad}).expect(
            422, "invalid_value", "value")
    alice.post("/api/v1/account/senders", {"kind": "deny", "value": "x@example.net"}).expect(
        422, "invalid_value", "kind")
    alice.post("/api/v1/account/senders", {"value": "x@example.net"}).expect(422)
    alice.post("/api/v1/account/senders", {"kind": "allow",
                                           "value": "spam@example.net"}).expect(
        409, "duplicate", "value")
    assert len(alice.get("/api/v1/account/senders").json["items"]) == 2
    alice.delete(f"/api/v1/account/senders/{e['id']}").expect(204)
    alice.delete(f"/api/v1/account/senders/{e['id']}").expect(404, "not_found")
    assert [i["value"] for i in alice.get("/api/v1/account/senders").json["items"]] == [
        "@partner.example"]
    # Each change is audited.
    acts = [r[0] for r in d.query("SELECT action FROM api_audit WHERE action LIKE"
                                  " 'user_sender.%' ORDER BY id")]
    assert acts == ["user_sender.create", "user_sender.create", "user_sender.delete"], acts


def test_list_limit_per_user(site):
    alice, bob = site["alice"], site["bob"]
    for i in range(5):
        alice.post("/api/v1/account/senders",
                   {"kind": "block", "value": f"s{i}@example.net"}).expect(201)
    r = alice.post("/api/v1/account/senders", {"kind": "block", "value": "s9@example.net"})
    r.expect(422, "limit_reached", "value")
    assert "user_sender_list_max" in r.error["message"]
    # The limit is per user.
    bob.post("/api/v1/account/senders", {"kind": "block", "value": "s9@example.net"}).expect(201)


def test_users_reach_only_their_own_entries(site):
    alice, bob, admin = site["alice"], site["bob"], site["admin"]
    be = bob.post("/api/v1/account/senders",
                  {"kind": "block", "value": "x@example.net"}).expect(201).json
    # Alice neither sees nor deletes Bob's entry, by session or by token.
    tok = Api(site["d"].http_port, token=alice.create_token("t")["token"])
    for client in (alice, tok):
        assert client.get("/api/v1/account/senders").expect(200).json["items"] == []
        client.delete(f"/api/v1/account/senders/{be['id']}").expect(404, "not_found")
        client.get(f"/api/v1/users/{site['b']['id']}/senders").expect(403, "forbidden")
        client.post(f"/api/v1/users/{site['b']['id']}/senders",
                    {"kind": "allow", "value": "y@example.net"}).expect(403, "forbidden")
        client.delete(f"/api/v1/users/{site['b']['id']}/senders/{be['id']}").expect(
            403, "forbidden")
    assert [i["id"] for i in bob.get("/api/v1/account/senders").json["items"]] == [be["id"]]
    # The administrator reads and edits anyone's.
    bid = site["b"]["id"]
    items = admin.get(f"/api/v1/users/{bid}/senders").expect(200).json["items"]
    assert [i["value"] for i in items] == ["x@example.net"]
    added = admin.post(f"/api/v1/users/{bid}/senders",
                       {"kind": "allow", "value": "@friends.example"}).expect(201).json
    admin.post(f"/api/v1/users/{bid}/senders", {"kind": "allow", "value": "bad"}).expect(
        422, "invalid_value", "value")
    assert [i["value"] for i in bob.get("/api/v1/account/senders").json["items"]] == [
        "x@example.net", "@friends.example"]
    # An entry is reached through its owner only.
    admin.delete(f"/api/v1/users/{site['a']['id']}/senders/{added['id']}").expect(404)
    admin.delete(f"/api/v1/users/{bid}/senders/{added['id']}").expect(204)
    admin.get("/api/v1/users/999999/senders").expect(404, "not_found")
    admin.post("/api/v1/users/999999/senders",
               {"kind": "allow", "value": "a@example.net"}).expect(404, "not_found")


def test_group_managers(site):
    admin, alice, d = site["admin"], site["alice"], site["d"]
    admin.post("/api/v1/directory/groups", {"address": "g@example.org", "name": "G",
                                            "members": ["b@example.org"]}).expect(201)
    path = "/api/v1/directory/groups/g@example.org/managers"
    assert admin.get(path).expect(200).json["items"] == []
    m = admin.post(path, {"user": "alice"}).expect(201).json
    assert m == {"id": site["a"]["id"], "name": "alice"}, m
    admin.post(path, {"user": "alice"}).expect(409, "duplicate", "user")
    admin.post(path, {"user": "nobody"}).expect(422, "invalid_value", "user")
    admin.post(path, {}).expect(422)
    r = admin.post("/api/v1/directory/groups/none@example.org/managers", {"user": "alice"})
    r.expect(404, "not_found")
    assert "none@example.org" in r.error["message"]
    admin.get("/api/v1/directory/groups/none@example.org/managers").expect(404, "not_found")
    assert [x["name"] for x in admin.get(path).json["items"]] == ["alice"]
    # Shown with the group in the directory.
    groups = admin.get("/api/v1/directory?kind=group").expect(200).json["items"]
    assert [(g["address"], g["managers"]) for g in groups] == [("g@example.org", ["alice"])]
    # Administrators only.
    alice.get(path).expect(403, "forbidden")
    alice.post(path, {"user": "bob"}).expect(403, "forbidden")
    alice.delete(path + "/alice").expect(403, "forbidden")
    admin.delete(path + "/bob").expect(404, "not_found")
    admin.delete(path + "/alice").expect(204)
    admin.delete(path + "/alice").expect(404, "not_found")
    assert admin.get(path).json["items"] == []
    acts = [r[0] for r in d.query("SELECT action FROM api_audit WHERE action LIKE"
                                  " 'dir_group.manager%' ORDER BY id")]
    assert acts == ["dir_group.manager_add", "dir_group.manager_remove"], acts


# ---- applied to mail -----------------------------------------------------------------

def test_block_refuses_only_that_recipient_and_a_change_applies_next(site):
    d, ds, alice = site["d"], site["ds"], site["alice"]
    e = alice.post("/api/v1/account/senders",
                   {"kind": "block", "value": "pest@example.net"}).expect(201).json
    applied(d)
    c, replies = session(d, "Pest@Example.NET", ["a@example.org", "b@example.org",
                                                 "a2@example.org"])
    assert replies[0].code == 550 and "5.7.1 Sender blocked by recipient" in replies[0].text
    assert replies[1].code == 250, replies[1]
    # The alias is alice's too.
    assert replies[2].code == 550 and "Sender blocked by recipient" in replies[2].text
    r = finish(c, message(subject="hello"))
    assert r.code == 250, r
    ds.wait_for(1)
    assert ds.rcpts() == ["b@example.org"]
    rows = d.log_rows("check_name = 'user_block'", want=2)
    assert len(rows) == 2 and rows[0]["result"] == "refused", rows
    assert rows[0]["entry"] == f"user_block entry {e['id']} pest@example.net", rows[0]
    assert wait_for(lambda: d.query("SELECT sum(count) FROM policy_stat"
                                    " WHERE check_name = 'user_block'") == [(2,)])
    # Another sender, and a domain entry.
    c, replies = session(d, "friend@example.net", ["a@example.org"])
    assert replies[0].code == 250
    c.close()
    alice.post("/api/v1/account/senders", {"kind": "block", "value": "@bulk.example"}).expect(201)
    alice.delete(f"/api/v1/account/senders/{e['id']}").expect(204)
    applied(d)
    c, replies = session(d, "news@bulk.example", ["a@example.org", "b@example.org"])
    assert [r.code for r in replies] == [550, 250], replies
    c.close()
    c, replies = session(d, "pest@example.net", ["a@example.org"])
    assert replies[0].code == 250, replies[0]
    c.close()


def test_allow_lifts_spam_quarantine_for_that_recipient_only(site):
    d, ds, alice, bob = site["d"], site["ds"], site["alice"], site["bob"]
    ids = set_rules(d, [{"name": "offers", "when": subject_has("offer"),
                         "action": {"type": "quarantine", "kind": "spam"}}])
    alice.post("/api/v1/account/senders", {"kind": "allow", "value": "@shop.example"}).expect(201)
    # Bob allows another sender: not this one.
    bob.post("/api/v1/account/senders", {"kind": "allow", "value": "x@shop.example"}).expect(201)
    applied(d)
    c, replies = session(d, "deals@shop.example", ["a@example.org", "b@example.org"])
    assert [r.code for r in replies] == [250, 250]
    r = finish(c, message(subject="A special offer"))
    assert r.code == 250, r
    qid = qid_of(r)
    ds.wait_for(1)
    assert ds.rcpts() == ["a@example.org"]
    q = d.query("SELECT rcpt, kind, reason FROM quarantine WHERE qid = ?", (qid,))
    assert q == [("b@example.org", "spam", f"rule {ids[0]} offers")], q
    assert wait_for(lambda: "policy user_allow rcpt=<a@example.org>" in d.log_text())
    row = d.log_rows("qid = ?", (qid,))[0]
    assert "user_allow=1" in row["reason"], row
    assert wait_for(lambda: d.query("SELECT sum(count) FROM policy_stat"
                                    " WHERE check_name = 'user_allow'") == [(1,)])


def test_allow_does_not_lift_policy_quarantine_nor_server_deny(site):
    d, ds, alice, admin = site["d"], site["ds"], site["alice"], site["admin"]
    ids = set_rules(d, [{"name": "contracts", "when": subject_has("contract"),
                         "action": {"type": "quarantine"}}])
    alice.post("/api/v1/account/senders", {"kind": "allow", "value": "@shop.example"}).expect(201)
    applied(d)
    c, replies = session(d, "deals@shop.example", ["a@example.org"])
    r = finish(c, message(subject="the contract"))
    assert r.code == 250, r
    qid = qid_of(r)
    q = d.query("SELECT rcpt, kind, reason FROM quarantine WHERE qid = ?", (qid,))
    assert q == [("a@example.org", "policy", f"rule {ids[0]} contracts")], q
    # The administrator's deny list wins over the user's allow.
    admin.post("/api/v1/policy/entries", {"list": "sender_deny",
                                          "value": "@shop.example"}).expect(201)
    applied(d)
    c = d.raw()
    c.ehlo()
    r = c.cmd("MAIL FROM:<deals@shop.example>")
    assert r.code == 550, r
    c.close()
    assert ds.deliveries() == []


def test_group_managers_lists_do_not_apply_to_the_group(site):
    d, ds, admin, alice = site["d"], site["ds"], site["admin"], site["alice"]
    admin.put("/api/v1/policy/settings/group_mail", {"value": "anyone"}).expect(200)
    admin.post("/api/v1/directory/groups", {"address": "g@example.org",
                                            "members": ["b@example.org"]}).expect(201)
    admin.post("/api/v1/directory/groups/g@example.org/managers",
               {"user": "alice"}).expect(201)
    alice.post("/api/v1/account/senders", {"kind": "block", "value": "pest@example.net"}).expect(201)
    applied(d)
    c, replies = session(d, "pest@example.net", ["g@example.org", "a@example.org"])
    assert [r.code for r in replies] == [250, 550], replies
    r = finish(c, message(subject="to the group"))
    assert r.code == 250, r
    ds.wait_for(1)
    assert ds.rcpts() == ["g@example.org"]


@pytest.fixture
def rbl(tmp_path):
    from peers_policy import Rbldnsd
    r = Rbldnsd(tmp_path / "rbl", {"bl.test": [("127.0.0.2", "127.0.0.2")]}).start()
    yield r
    r.stop()


def test_allow_lifts_a_delayed_dnsbl_refusal_for_that_recipient(api_moatd, downstream, rbl):
    """delay_reject (the default) gives a DNSBL refusal at RCPT: a recipient whose owner
    allows the sender is accepted, the others of the transaction are refused."""
    from peers_policy import raw_from
    d = api_moatd(**delivery_conf(downstream.addr, dns_servers=rbl.servers, dns_timeout="1s",
                                  dns_tries="1"))
    admin = Api(d.http_port)
    admin.login("admin", ADMIN_PASSWORD)
    _, alice = make_user(admin, d.http_port, "alice", ["a@example.org"])
    make_user(admin, d.http_port, "bob", ["b@example.org"])
    admin.post("/api/v1/policy/dnsbl", {"zone": "bl.test"}).expect(201)
    alice.post("/api/v1/account/senders", {"kind": "allow", "value": "@shop.example"}).expect(201)
    applied(d)
    c = raw_from(d, "127.0.0.2", banner=True)
    c.ehlo()
    c.expect_cmd("MAIL FROM:<deals@shop.example>", "250 2.1.0")
    ra, rb = c.cmd("RCPT TO:<a@example.org>"), c.cmd("RCPT TO:<b@example.org>")
    assert ra.code == 250, ra
    assert rb.code == 554 and "5.7.1" in rb.text, rb
    r = finish(c, message(subject="listed client"))
    assert r.code == 250, r
    downstream.wait_for(1)
    assert downstream.rcpts() == ["a@example.org"]
    assert wait_for(lambda: "policy user_allow rcpt=<a@example.org>" in d.log_text())
    assert 'lifted="dnsbl_site ' in d.log_text()
    # Another sender from the same client: refused for her too.
    c = raw_from(d, "127.0.0.2", banner=True)
    c.ehlo()
    c.expect_cmd("MAIL FROM:<other@example.net>", "250 2.1.0")
    r = c.cmd("RCPT TO:<a@example.org>")
    assert r.code == 554, r
    c.close()
    assert wait_for(lambda: d.query("SELECT sum(count) FROM policy_stat"
                                    " WHERE check_name = 'user_allow'") == [(1,)])


def users_cli(d, *args):
    import subprocess
    from conftest import MOATD_BIN
    return subprocess.run([MOATD_BIN, "users", "--data-dir", str(d.data_dir)] + list(args),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=15, text=True)


def test_cli_edits_the_same_list(site):
    d, alice = site["d"], site["alice"]
    r = users_cli(d, "senders", "alice", "add", "block", "Pest@Example.net")
    assert r.returncode == 0, r.stderr
    eid = int(r.stdout.strip())
    r = users_cli(d, "senders", "alice")
    assert r.returncode == 0 and r.stdout == f"{eid}\tblock\tpest@example.net\n", r
    assert [i["id"] for i in alice.get("/api/v1/account/senders").json["items"]] == [eid]
    # Checked as the API checks.
    r = users_cli(d, "senders", "alice", "add", "block", "*@example.net")
    assert r.returncode == 1 and "patterns are not accepted" in r.stderr, r
    r = users_cli(d, "senders", "alice", "add", "block", "pest@example.net")
    assert r.returncode == 1 and "already on the list" in r.stderr, r
    assert users_cli(d, "senders", "nobody").returncode == 1
    assert users_cli(d, "senders", "alice", "add", "maybe", "x@example.net").returncode == 2
    applied(d)
    c, replies = session(d, "pest@example.net", ["a@example.org"])
    assert replies[0].code == 550, replies[0]
    c.close()
    r = users_cli(d, "senders", "alice", "del", "pest@example.net")
    assert r.returncode == 0, r.stderr
    assert users_cli(d, "senders", "alice", "del", str(eid)).returncode == 1
    assert users_cli(d, "senders", "alice").stdout == ""
    rows = d.query("SELECT actor, via, action FROM api_audit WHERE object_type = 'user_sender'"
                   " ORDER BY id")
    assert rows == [("cli", "system", "user_sender.create"),
                    ("cli", "system", "user_sender.delete")], rows
