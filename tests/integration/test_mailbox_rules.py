"""Mailbox rules at the end of DATA, through the real binary: after the server rules, each
recipient's owner's rule set runs on the same message, and each action is observed where it
lands — a real aiosmtpd downstream (folder header, subject tag, added header, importance,
copies, forwards), the user's own quarantine, or the SMTP answer (a refusal, with the
452 4.5.3 split so that other recipients are not refused with it).

Rule sets are written into the daemon's SQLite file as the API does (schema 017: one
mailbox_ruleset per owner, its rules in position order); the daemon compiles a set the
first time a message needs it and notices every later save by the set's generation."""

import json
import re
import smtplib
import sqlite3
import time

import pytest

from conftest import message, stuff
from peers_delivery import Downstream, delivery_conf, header_value, wait_for
from api_client import api_moatd  # noqa: F401 (fixture)


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


@pytest.fixture
def d(api_moatd, downstream):
    return api_moatd(**delivery_conf(downstream.addr))


def user_with_rules(d, name, addrs, rules, has_refuse=0, group=False):
    """A directory user (or group) with addresses and a mailbox rule set; waits until the
    daemon's snapshot knows the set.  Returns (set id, [rule ids])."""
    con = sqlite3.connect(str(d.db_path), timeout=10)
    try:
        if group:
            cur = con.execute("INSERT INTO dir_group (address, name, created) VALUES (?, ?, 0)",
                              (addrs[0], name))
            sid = con.execute("INSERT INTO mailbox_ruleset (group_id, has_refuse) VALUES (?, ?)",
                              (cur.lastrowid, has_refuse)).lastrowid
        else:
            uid = con.execute("INSERT INTO dir_user (name, created) VALUES (?, 0)",
                              (name,)).lastrowid
            for i, a in enumerate(addrs):
                con.execute("INSERT INTO dir_address (address, user_id, kind) VALUES (?, ?, ?)",
                            (a, uid, "primary" if i == 0 else "alias"))
            sid = con.execute("INSERT INTO mailbox_ruleset (user_id, has_refuse) VALUES (?, ?)",
                              (uid, has_refuse)).lastrowid
        ids = insert_rules(con, sid, rules)
        con.commit()
    finally:
        con.close()
    mailbox_applied(d)
    return sid, ids


def insert_rules(con, sid, rules):
    now = int(time.time() * 1000)
    con.execute("DELETE FROM mailbox_rule WHERE ruleset_id = ?", (sid,))
    ids = []
    for i, r in enumerate(rules):
        r = dict({"enabled": True, "except": None, "comment": ""}, **r)
        cur = con.execute("INSERT INTO mailbox_rule (ruleset_id, position, name, enabled,"
                          " definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (sid, i, r["name"], 1, json.dumps(r), now, now))
        ids.append(cur.lastrowid)
    return ids


def save_rules(d, sid, rules):
    """A later save of the set's rules (bumps only the set's generation)."""
    con = sqlite3.connect(str(d.db_path), timeout=10)
    try:
        ids = insert_rules(con, sid, rules)
        con.commit()
    finally:
        con.close()
    return ids


def subject_has(word):
    return {"field": "header", "header": "Subject", "op": "contains", "value": word}


def deliver(d, rcpts, body, sender="s@example.net"):
    c = d.raw()
    try:
        c.ehlo()
        c.expect_cmd(f"MAIL FROM:<{sender}>", "250 2.1.0")
        for r in rcpts:
            c.expect_cmd(f"RCPT TO:<{r}>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        c.send(stuff(body))
        return c.readreply()
    finally:
        c.close()


def delivered_to(ds, rcpt):
    with ds.lock:
        return [m["content"] for m in ds.messages if rcpt in m["rcpt_tos"]]


def test_move_tag_importance_header_reach_the_downstream(d, downstream):
    sid, ids = user_with_rules(d, "alice", ["alice@example.org"], [
        {"name": "reports", "when": subject_has("report"),
         "actions": [{"type": "tag_subject", "prefix": "[R] "},
                     {"type": "importance", "value": "high"},
                     {"type": "add_header", "name": "X-Sorted", "value": "reports"},
                     {"type": "move", "folder": "Reports/Daily"}]}])
    r = deliver(d, ["alice@example.org", "carol@example.org"], message(subject="daily report"))
    assert r.code == 250, r
    downstream.wait_for(2)
    (a,) = delivered_to(downstream, "alice@example.org")
    assert header_value(a, b"X-Moat-Folder") == "Reports/Daily", a[:600]
    assert header_value(a, b"Subject") == "[R] daily report", a[:600]
    assert header_value(a, b"X-Sorted") == "reports"
    assert header_value(a, b"Importance") == "high"
    # The other recipient has no rules: untouched.
    (c,) = delivered_to(downstream, "carol@example.org")
    assert header_value(c, b"X-Moat-Folder") is None and header_value(c, b"Subject") == \
        "daily report"
    assert d.query("SELECT hits FROM mailbox_rule WHERE id = ?", (ids[0],)) == [(1,)]
    # Cold set compiled on the first message that needed it, once.
    assert len(re.findall(rf"mailbox compiled set={sid} ", d.log_text())) == 1


def test_copy_to_folder_and_forward_copy_to_another_user(d, downstream):
    user_with_rules(d, "bob", ["bob@example.org"], [])
    user_with_rules(d, "alice", ["alice@example.org", "al@example.org"], [
        {"name": "keep copies", "when": subject_has("invoice"),
         "actions": [{"type": "copy", "folder": "Archive"},
                     {"type": "forward_copy", "address": "bob@example.org"},
                     {"type": "keep"}]}])
    r = deliver(d, ["al@example.org"], message(subject="invoice 7"))
    assert r.code == 250, r
    downstream.wait_for(3)
    folders = sorted(str(header_value(m, b"X-Moat-Folder"))
                     for m in delivered_to(downstream, "al@example.org"))
    assert folders == ["Archive", "None"], folders
    (b,) = delivered_to(downstream, "bob@example.org")
    assert header_value(b, b"X-Moat-Forwarded") == "al@example.org"


def test_forward_replaces_and_a_forward_loop_is_stopped(d, downstream):
    user_with_rules(d, "bob", ["bob@example.org"], [])
    user_with_rules(d, "alice", ["alice@example.org"], [
        {"name": "to bob", "when": subject_has("fwd"),
         "actions": [{"type": "forward", "address": "bob@example.org"}]}])
    r = deliver(d, ["alice@example.org"], message(subject="fwd me"))
    assert r.code == 250, r
    downstream.wait_for(1)
    assert downstream.rcpts() == ["bob@example.org"]
    # A message that already went through alice's forward stays with alice.
    looped = message(subject="fwd again", extra_headers=("X-Moat-Forwarded: alice@example.org",))
    r = deliver(d, ["alice@example.org"], looped)
    assert r.code == 250, r
    downstream.wait_for(2)
    assert downstream.rcpts() == ["alice@example.org", "bob@example.org"]
    assert "FORWARD LOOP" in d.log_text()


def test_quarantine_is_the_users_own_and_discard_drops(d, downstream):
    sid, ids = user_with_rules(d, "alice", ["alice@example.org"], [
        {"name": "newsletters", "when": subject_has("news"), "actions": [{"type": "quarantine"}]},
        {"name": "junk", "when": subject_has("junk"), "actions": [{"type": "discard"}]}])
    r = deliver(d, ["alice@example.org"], message(subject="weekly news"))
    assert r.code == 250, r
    rows = wait_for(lambda: d.query("SELECT rcpt, kind, reason FROM quarantine"), timeout=10)
    assert rows == [("alice@example.org", "spam", f"mailbox rule {ids[0]} newsletters")], rows
    r = deliver(d, ["alice@example.org"], message(subject="junk mail"))
    assert r.code == 250, r
    assert wait_for(lambda: "outcome=discarded" in d.log_text(), timeout=10)
    assert d.query("SELECT count(*) FROM queue_message") == [(0,)]
    assert downstream.rcpts() == []


def test_server_quarantine_is_not_undone_by_a_users_rule(d, downstream):
    user_with_rules(d, "alice", ["alice@example.org"], [
        {"name": "keep all", "when": subject_has("offer"), "actions": [{"type": "keep"}]}])
    con = sqlite3.connect(str(d.db_path), timeout=10)
    rule = {"name": "offers", "enabled": True, "except": None, "comment": "",
            "when": subject_has("offer"), "action": {"type": "quarantine"}}
    con.execute("INSERT INTO rule (position, name, enabled, definition, created_at, updated_at)"
                " VALUES (0, 'offers', 1, ?, 0, 0)", (json.dumps(rule),))
    con.commit()
    con.close()
    want = d.query("SELECT generation FROM policy_meta")[0][0]
    assert wait_for(lambda: max(int(g) for g in re.findall(
        r"policy loaded generation=(\d+)", d.log_text())) >= want, timeout=10)
    r = deliver(d, ["alice@example.org"], message(subject="an offer"))
    assert r.code == 250, r
    rows = wait_for(lambda: d.query("SELECT kind, reason FROM quarantine"), timeout=10)
    assert rows[0][1].startswith("rule "), rows
    assert "mailbox rcpt=<alice@example.org>" not in d.log_text()


def test_a_save_applies_to_the_next_message(d, downstream):
    sid, _ = user_with_rules(d, "alice", ["alice@example.org"], [
        {"name": "a", "when": subject_has("hello"),
         "actions": [{"type": "move", "folder": "One"}]}])
    deliver(d, ["alice@example.org"], message(subject="hello 1"))
    downstream.wait_for(1)
    save_rules(d, sid, [{"name": "b", "when": subject_has("hello"),
                         "actions": [{"type": "move", "folder": "Two"}]}])
    deliver(d, ["alice@example.org"], message(subject="hello 2"))
    downstream.wait_for(2)
    folders = [header_value(m, b"X-Moat-Folder") for m in delivered_to(downstream,
                                                                       "alice@example.org")]
    assert sorted(folders) == ["One", "Two"], folders


def test_refusal_452_split_with_smtplib(d, downstream):
    """alice refuses, bob does not: one transaction cannot answer both after DATA, so the
    second recipient gets 452 4.5.3, the client sends it again, and each ends with its own
    outcome (alice refused 550 by her rule, bob delivered)."""
    user_with_rules(d, "alice", ["alice@example.org"], [
        {"name": "no ads", "when": subject_has("ad"),
         "actions": [{"type": "refuse", "text": "alice takes no ads"}]}], has_refuse=1)
    body = message(subject="an ad")
    outcomes = {}
    pending = ["alice@example.org", "bob@example.org"]
    for _ in range(3):
        if not pending:
            break
        again, took = [], []
        with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=10) as s:
            s.ehlo()
            s.mail("s@example.net")
            for r in pending:
                code, text = s.rcpt(r)
                if code == 452:
                    assert b"4.5.3" in text, text
                    again.append(r)
                else:
                    assert code == 250, (code, text)
                    took.append(r)
            code, text = s.data(body)
            for r in took:
                outcomes[r] = (code, text)
        pending = again
    codes = {r: c for r, (c, _) in outcomes.items()}
    assert codes == {"alice@example.org": 550, "bob@example.org": 250}, outcomes
    assert b"5.7.1 alice takes no ads" in outcomes["alice@example.org"][1]
    downstream.wait_for(1)
    assert downstream.rcpts() == ["bob@example.org"]
    assert "452 4.5.3" in d.log_text() or d.query(
        "SELECT count(*) FROM message_log WHERE reply LIKE '452 4.5.3%'")[0][0] >= 1


def api_user(admin, name, address):
    from api_client import Api
    r = admin.post("/api/v1/users", {"name": name, "password": "password-xxxx",
                                     "addresses": [address]}).expect(201)
    api = Api(admin.port)
    api.login(name, "password-xxxx")
    return r.json["id"], api


def mailbox_applied(d, timeout=10):
    """Waits until moatd's snapshot knows the mailbox sets now in the database (their
    number and which of them can refuse: what a snapshot follows; a save of a set's rules
    only bumps the set's own generation, which the content workers read themselves)."""
    n, refuse = d.query("SELECT count(*), CAST(total(has_refuse * id) AS INTEGER)"
                        " FROM mailbox_ruleset")[0]
    want = f"mailbox_sets={n} mailbox_refuse={refuse}"
    assert wait_for(lambda: want in d.log_text(), timeout=timeout), f"snapshot with {want}"


def put_rules(d, api, base, rules, new_set=False):
    """Replace the set at base with rules through the API; for a new set, wait until the
    daemon's snapshot knows it."""
    api.post(f"{base}/import", {"rules": rules, "mode": "replace"}).expect(200)
    if new_set:
        mailbox_applied(d)


HOLD_ALL = {"name": "hold", "when": subject_has("#"), "actions": [{"type": "quarantine"}]}


def test_apply_to_quarantined_mail_releases_to_folder_deletes_and_keeps(d, downstream):
    """The owner's current set runs over the owner's quarantined items: a rule that delivers
    releases the item (to its folder, with its tag), discard deletes it, anything else keeps
    it; another user's items and sets are out of reach."""
    from api_client import ADMIN_PASSWORD, Api
    admin = Api(d.http_port)
    admin.login("admin", ADMIN_PASSWORD)
    alice_id, alice = api_user(admin, "alice", "alice@example.org")
    bob_id, bob = api_user(admin, "bob", "bob@example.org")
    mine = "/api/v1/account/rules"
    put_rules(d, alice, mine, [HOLD_ALL], new_set=True)
    put_rules(d, bob, mine, [HOLD_ALL], new_set=True)
    for subj in ("#news 1", "#junk 2", "#offer 3"):
        assert deliver(d, ["alice@example.org"], message(subject=subj)).code == 250
    assert deliver(d, ["bob@example.org"], message(subject="#news 4")).code == 250
    assert wait_for(lambda: d.query("SELECT count(*) FROM quarantine")[0][0] == 4, timeout=10)
    assert downstream.rcpts() == []
    put_rules(d, alice, mine, [
        {"name": "news", "when": subject_has("news"),
         "actions": [{"type": "tag_subject", "prefix": "[n] "},
                     {"type": "move", "folder": "News"}]},
        {"name": "junk", "when": subject_has("junk"), "actions": [{"type": "discard"}]},
        {"name": "offers", "when": subject_has("offer"), "actions": [{"type": "quarantine"}]}])
    # Nobody else's set: bob cannot reach alice's, by id or otherwise.
    bob.post(f"/api/v1/users/{alice_id}/rules/apply-quarantine").expect(404)
    got = alice.post(f"{mine}/apply-quarantine").expect(200).json
    assert got == {"released": 1, "deleted": 1, "kept": 1, "examined": 3, "more": False}, got
    downstream.wait_for(1)
    (m,) = delivered_to(downstream, "alice@example.org")
    assert header_value(m, b"X-Moat-Folder") == "News", m[:600]
    assert header_value(m, b"Subject") == "[n] #news 1", m[:600]
    left = d.query("SELECT rcpt, subject FROM quarantine ORDER BY id")
    assert left == [("alice@example.org", "#offer 3"), ("bob@example.org", "#news 4")], left
    ev = d.query("SELECT event, actor FROM message_event WHERE event IN"
                 " ('quarantine.release', 'quarantine.delete') ORDER BY id")
    assert sorted(ev) == [("quarantine.delete", "user:alice"),
                          ("quarantine.release", "user:alice")], ev
    assert d.query("SELECT actor, after FROM api_audit WHERE action ="
                   " 'mailbox_rule.apply_quarantine'") == [
        ("alice", '{"examined":3,"released":1,"deleted":1,"kept":1}')]
    # An administrator acting for bob runs bob's set (which still quarantines): kept.
    got = admin.post(f"/api/v1/users/{bob_id}/rules/apply-quarantine").expect(200).json
    assert got == {"released": 0, "deleted": 0, "kept": 1, "examined": 1, "more": False}, got
    # Run again: what stayed stays, and nothing is delivered twice.
    got = alice.post(f"{mine}/apply-quarantine").expect(200).json
    assert got == {"released": 0, "deleted": 0, "kept": 1, "examined": 1, "more": False}, got
    assert len(delivered_to(downstream, "alice@example.org")) == 1


def test_apply_to_quarantined_mail_of_a_group(d, downstream):
    """A group's set runs over the items of the group's address, by the group's manager."""
    from api_client import ADMIN_PASSWORD, Api
    admin = Api(d.http_port)
    admin.login("admin", ADMIN_PASSWORD)
    carl_id, carl = api_user(admin, "carl", "carl@example.org")
    admin.post("/api/v1/directory/groups", {"address": "crew@example.org"}).expect(201)
    admin.post("/api/v1/directory/groups/crew@example.org/managers",
               {"user": "carl"}).expect(201)
    base = "/api/v1/directory/groups/crew@example.org/rules"
    put_rules(d, carl, base, [HOLD_ALL], new_set=True)
    assert deliver(d, ["crew@example.org"], message(subject="#noon report")).code == 250
    assert wait_for(lambda: d.query("SELECT count(*) FROM quarantine")[0][0] == 1, timeout=10)
    put_rules(d, carl, base, [{"name": "reports", "when": subject_has("report"),
                               "actions": [{"type": "move", "folder": "Fleet"}]}])
    got = carl.post(f"{base}/apply-quarantine").expect(200).json
    assert got == {"released": 1, "deleted": 0, "kept": 0, "examined": 1, "more": False}, got
    downstream.wait_for(1)
    (m,) = delivered_to(downstream, "crew@example.org")
    assert header_value(m, b"X-Moat-Folder") == "Fleet", m[:600]
    assert d.query("SELECT actor FROM message_event WHERE event = 'quarantine.release'") == \
        [("user:carl",)]


def test_a_cold_set_needed_by_two_workers_at_once_is_compiled_once(api_moatd, downstream):
    """Two content workers that need the same cold set at the same moment: the first
    compiles it, the second waits for that result instead of compiling it again."""
    import threading
    d = api_moatd(**delivery_conf(downstream.addr, content_workers="2"))
    # Large enough that its compile takes long compared with two messages' DATA.
    rules = [{"name": f"r{i}", "when": {"field": "body", "op": "matches",
                                        "value": f"(ship|vessel)[ -]?{i:05d}[a-z]{{2,9}}x"},
              "actions": [{"type": "move", "folder": f"Ships/{i}"}]} for i in range(1000)]
    sid, _ = user_with_rules(d, "alice", ["alice@example.org"], rules)
    answers = []
    start = threading.Barrier(2)

    def send(n):
        # A slow compile (a sanitizer build) must not time the client out.
        with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=300) as s:
            s.ehlo()
            start.wait()
            s.sendmail("s@example.net", ["alice@example.org"], message(subject=f"hello {n}"))
            answers.append(250)
    ts = [threading.Thread(target=send, args=(n,)) for n in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert answers == [250, 250], answers
    downstream.wait_for(2)
    log = d.log_text()
    assert len(re.findall(rf"mailbox compiled set={sid} ", log)) == 1, log[-3000:]
    assert len(re.findall(rf"mailbox compile shared set={sid} ", log)) == 1, log[-3000:]


def test_ten_thousand_rules_through_the_api_and_the_last_still_fires(d, downstream):
    """10,000 rules through the API (9,997 imported in one request, three created one by one
    on top, reaching the default mailbox_rules_max): a message that matches only the very
    last rule is delivered at the downstream with that rule's folder and tag, and only that
    rule counts a hit."""
    from api_client import ADMIN_PASSWORD, Api
    admin = Api(d.http_port)
    admin.login("admin", ADMIN_PASSWORD)
    _, alice = api_user(admin, "alice", "alice@example.org")
    mine = "/api/v1/account/rules"
    many = [{"name": f"ship {i}", "when": subject_has(f"voyage-{i:05d} report"),
             "actions": [{"type": "move", "folder": f"Fleet/Ship {i}"}]} for i in range(9997)]
    put_rules(d, alice, mine, many, new_set=True)
    # The first rule fires; later saves only bump the set's generation, read for every message.
    assert deliver(d, ["alice@example.org"], message(subject="voyage-00000 report")).code == 250
    downstream.wait_for(1)
    first = delivered_to(downstream, "alice@example.org")[0]
    assert header_value(first, b"X-Moat-Folder") == "Fleet/Ship 0"
    downstream.messages.clear()
    last = None
    for i in range(3):
        last = alice.post(mine, {"name": f"extra {i}", "when": subject_has(f"cargo-{i} manifest"),
                                 "actions": [{"type": "tag_subject", "prefix": f"[extra {i}] "},
                                             {"type": "move", "folder": f"Cargo/{i}"}]}
                          ).expect(201).json
    assert last["position"] == 9999
    assert d.query("SELECT count(*) FROM mailbox_rule")[0][0] == 10000
    alice.post(mine, dict(many[0], name="one too many")).expect(422, field="rule")
    assert deliver(d, ["alice@example.org"], message(subject="cargo-2 manifest")).code == 250
    downstream.wait_for(1)
    content = delivered_to(downstream, "alice@example.org")[0]
    assert header_value(content, b"X-Moat-Folder") == "Cargo/2"
    assert header_value(content, b"Subject") == "[extra 2] cargo-2 manifest"
    assert wait_for(lambda: d.query("SELECT hits FROM mailbox_rule WHERE id = ?",
                                    (last["id"],))[0][0] == 1, timeout=10)
    assert d.query("SELECT count(*) FROM mailbox_rule WHERE hits > 0")[0][0] == 2


def log_id_for(d, rcpt, subject_word=None):
    rows = d.query("SELECT m.id FROM message_log m JOIN message_log_rcpt r ON r.log_id = m.id"
                   " WHERE r.rcpt = ? AND m.result = 'accepted' ORDER BY m.id", (rcpt,))
    return [r[0] for r in rows]


def test_dry_run_over_one_of_my_recent_messages(d, downstream):
    """POST {base}/test with message_log_id: the message comes from the spool (here the
    quarantine); another owner's message is 404, a delivered one (no copy kept) 422, both
    naming message_log_id."""
    from api_client import ADMIN_PASSWORD, Api
    admin = Api(d.http_port)
    admin.login("admin", ADMIN_PASSWORD)
    alice_id, alice = api_user(admin, "alice", "alice@example.org")
    _, bob = api_user(admin, "bob", "bob@example.org")
    mine = "/api/v1/account/rules"
    put_rules(d, alice, mine, [HOLD_ALL], new_set=True)
    assert deliver(d, ["alice@example.org"], message(subject="#held report")).code == 250
    assert wait_for(lambda: d.query("SELECT count(*) FROM quarantine")[0][0] == 1, timeout=10)
    q = "SELECT m.id FROM message_log m JOIN quarantine q ON q.qid = m.qid"
    assert wait_for(lambda: d.query(q), timeout=10), d.query("SELECT qid FROM message_log")
    held = d.query(q)[0][0]
    assert deliver(d, ["bob@example.org"], message(subject="for bob")).code == 250
    assert wait_for(lambda: "bob@example.org" in downstream.rcpts(), timeout=10)
    assert wait_for(lambda: log_id_for(d, "bob@example.org"), timeout=10)
    bobs = log_id_for(d, "bob@example.org")[0]
    # the set changed since: the dry run answers what the rules would do now
    put_rules(d, alice, mine, [
        {"name": "not this", "when": subject_has("nothing"), "actions": [{"type": "discard"}]},
        {"name": "reports", "when": subject_has("report"),
         "actions": [{"type": "move", "folder": "Reports"}]}])
    out = alice.post(f"{mine}/test", {"message_log_id": held}).expect(200).json
    assert out["address"] == "alice@example.org" and out["message_log_id"] == held
    assert [(r["name"], r["matched"]) for r in out["rules"]] == [("not this", False),
                                                                 ("reports", True)]
    assert out["outcome"]["action"] == "move" and out["outcome"]["folder"] == "Reports"
    # an administrator acting for alice sees the same; bob's message is not hers
    assert admin.post(f"/api/v1/users/{alice_id}/rules/test",
                      {"message_log_id": held}).expect(200).json["outcome"] == out["outcome"]
    alice.post(f"{mine}/test", {"message_log_id": bobs}).expect(404, field="message_log_id")
    alice.post(f"{mine}/test", {"message_log_id": 10 ** 9}).expect(404, field="message_log_id")
    # bob's was delivered: its file is gone, and the answer says so
    r = bob.post(f"{mine}/test", {"message_log_id": bobs}).expect(422, field="message_log_id")
    assert "no longer kept" in r.error["message"]
    alice.post(f"{mine}/test", {"message_log_id": "x"}).expect(422, field="message_log_id")
    alice.post(f"{mine}/test", {"message_log_id": held, "message": "Subject: x\r\n\r\n"}
               ).expect(422, field="message")
    alice.post(f"{mine}/test", {}).expect(422, field="message")
    # nothing counted by a dry run
    assert d.query("SELECT sum(hits) FROM mailbox_rule")[0][0] == 0


def test_edit_recompiles_from_the_previous_generation(d, downstream):
    """A save recompiles the set from its cached previous generation: the databases the edit
    did not touch are reused (logged), and the edited rule works at once."""
    def rules(edited):
        rs = []
        for i in range(40):
            rs.append({"name": f"sender {i}", "when": {"field": "sender", "op": "is",
                       "value": f"ship{i}@fleet.example"},
                       "actions": [{"type": "move", "folder": f"Ships/{i}"}]})
            rs.append({"name": f"regex {i}", "when": {"field": "header", "header": "Subject",
                       "op": "matches", "value": rf"voyage\s+log\s+{i}\b"},
                       "actions": [{"type": "move", "folder": f"Logs/{i}"}]})
            rs.append({"name": f"list {i}", "when": {"field": "header", "header": "List-Id",
                       "op": "contains", "value": f"list{i}.fleet.example"},
                       "actions": [{"type": "move", "folder": f"Lists/{i}"}]})
        rs.append({"name": "edited", "when": subject_has(edited),
                   "actions": [{"type": "move", "folder": "Edited/" + edited}]})
        return rs

    sid, _ = user_with_rules(d, "alice", ["alice@example.org"], rules("monthly"))
    r = deliver(d, ["alice@example.org"], message(subject="monthly figures"))
    assert r.code == 250, r
    downstream.wait_for(1)
    (a,) = delivered_to(downstream, "alice@example.org")
    assert header_value(a, b"X-Moat-Folder") == "Edited/monthly", a[:600]
    assert wait_for(lambda: re.search(rf"mailbox compiled set={sid} .*databases_reused=0",
                                      d.log_text()), timeout=10)

    save_rules(d, sid, rules("quarterly"))
    r = deliver(d, ["alice@example.org"], message(subject="quarterly figures"))
    assert r.code == 250, r
    downstream.wait_for(2)
    assert [header_value(m, b"X-Moat-Folder") for m in
            delivered_to(downstream, "alice@example.org")] == ["Edited/monthly",
                                                                 "Edited/quarterly"]
    m = re.findall(rf"mailbox compiled set={sid} generation=\d+ .*databases_built=(\d+)"
                   r" databases_reused=(\d+)", d.log_text())
    assert len(m) == 2, m
    built, reused = int(m[1][0]), int(m[1][1])
    # the few Subject and List-Id literals are searched directly (no database to build);
    # the Subject regex chunks are reused, none rebuilt
    assert built == 0 and reused >= 1, m
