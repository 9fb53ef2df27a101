"""One timeline per message (docs/timeline.md), through the real binary: the SMTP
conversation stored with the message-log row, every delivery attempt to a real aiosmtpd
downstream as a message_event with the remote reply, the server rules' quarantine, and the
API that merges them (GET /api/v1/messages/{id}/timeline, GET /api/v1/timeline)."""

import json

import pytest

from conftest import message, qid_of, stuff
from peers_delivery import Downstream, delivery_conf, header_value, wait_for
from peers_policy import applied, policy, set_rules
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


@pytest.fixture
def env(api_moatd, downstream):
    d = api_moatd(**delivery_conf(downstream.addr))
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    return d, api


def transaction(d, rcpts, body, sender="s@example.net", want=None):
    """MAIL, each RCPT (want: {rcpt: code}), DATA; returns the final reply."""
    want = want or {}
    c = d.raw()
    try:
        c.ehlo()
        c.expect_cmd(f"MAIL FROM:<{sender}>", "250 2.1.0")
        for r in rcpts:
            rep = c.cmd(f"RCPT TO:<{r}>")
            assert rep.code == want.get(r, 250), (r, rep)
        c.expect_cmd("DATA", 354)
        c.send(stuff(body))
        return c.readreply()
    finally:
        c.close()


def steps(tl):
    return [(e["stage"], e["event"]) for e in tl["events"]]


def index(tl, stage, event, start=0, **match):
    """Position of the first event at or after start with stage/event and detail items."""
    for i, e in enumerate(tl["events"]):
        if i < start or e["stage"] != stage or e["event"] != event:
            continue
        if all(e.get(k) == v or e.get("detail", {}).get(k) == v for k, v in match.items()):
            return i
    raise AssertionError(f"no {stage}/{event} {match} after {start} in {steps(tl)}")


def attempts(d, qid):
    return d.query("SELECT count(*) FROM message_event WHERE qid = ? AND"
                   " event = 'delivery.attempt'", (qid,))[0][0]


def test_delivered_after_one_deferral_shows_every_step_in_order(env, downstream):
    d, api = env
    downstream.replies["bob@example.org"] = ["451 4.3.0 greylisted, try later", None]
    body = message(subject="timeline")
    mid = header_value(body, b"Message-ID").strip("<>")
    qid = qid_of(transaction(d, ["bob@example.org"], body))
    downstream.wait_for(1)
    assert wait_for(lambda: attempts(d, qid) == 2), attempts(d, qid)

    r = api.get(f"/api/v1/timeline?qid={qid}").expect(200)
    tl = r.json
    assert tl["qid"] == qid and tl["message_id"] == mid, tl
    i = index(tl, "connect", "connect", client_addr="127.0.0.1")
    i = index(tl, "helo", "ehlo", i, name="client.example")
    i = index(tl, "mail", "accepted", i, sender="s@example.net")
    i = index(tl, "rcpt", "accepted", i, recipient="bob@example.org")
    i = index(tl, "data", "end", i, message_id=mid)
    i = index(tl, "spool", "queued", i, qid=qid)
    i = index(tl, "delivery", "attempt", i, result="deferred", recipient="bob@example.org")
    first = tl["events"][i]
    assert first["detail"]["reply"].startswith("451 4.3.0 greylisted"), first
    assert "127.0.0.1" in first["detail"]["host"], first
    assert first["actor"] == "system"
    i = index(tl, "delivery", "attempt", i + 1, result="delivered")
    assert tl["events"][i]["detail"]["reply"].startswith("250"), tl["events"][i]
    ts = [e["ts"] for e in tl["events"]]
    assert ts == sorted(ts), ts
    # Both attempts stay as history, whatever the queue row says now.
    rows = d.query("SELECT detail FROM message_event WHERE qid = ? ORDER BY ts", (qid,))
    assert [json.loads(x[0])["result"] for x in rows] == ["deferred", "delivered"]

    # The same timeline by Message-ID (with or without brackets) and by log row.
    for q in (mid, f"<{mid}>"):
        by_mid = api.get("/api/v1/timeline?message_id=" + q.replace("<", "%3C")
                         .replace(">", "%3E").replace("@", "%40")).expect(200).json
        assert by_mid["qid"] == qid and steps(by_mid) == steps(tl), by_mid
    row = d.log_rows("qid = ?", (qid,))[0]
    assert row["message_id"] == mid
    by_row = api.get(f"/api/v1/messages/{row['id']}/timeline").expect(200).json
    assert by_row["qid"] == qid and steps(by_row) == steps(tl)


def test_refused_recipient_shows_its_check(env, downstream):
    d, api = env
    policy(d, "add", "rcpt_deny", "nobody@example.org")
    applied(d)
    qid = qid_of(transaction(d, ["bob@example.org", "nobody@example.org"], message(),
                             want={"nobody@example.org": 550}))
    d.log_rows("qid = ?", (qid,))
    tl = api.get(f"/api/v1/timeline?qid={qid}").expect(200).json
    i = index(tl, "rcpt", "accepted", recipient="bob@example.org")
    j = index(tl, "rcpt", "refused", recipient="nobody@example.org", check="rcpt_deny")
    assert i < j < index(tl, "spool", "queued")
    assert tl["events"][j]["detail"]["code"] == "550 5.7.1"
    # The refusal's own log row carries the conversation up to it.
    row = d.log_rows("check_name = 'rcpt_deny'")[0]
    own = api.get(f"/api/v1/messages/{row['id']}/timeline").expect(200).json
    assert own["qid"] is None
    assert steps(own)[-1] == ("rcpt", "refused"), steps(own)



def test_quarantined_message_shows_the_rule_and_the_quarantine(env):
    d, api = env
    set_rules(d, [{"name": "offers", "action": {"type": "quarantine"},
                   "when": {"field": "header", "header": "Subject", "op": "contains",
                            "value": "offer"}}])
    qid = qid_of(transaction(d, ["a@example.org"], message(subject="A special offer")))
    d.log_rows("qid = ?", (qid,))
    tl = api.get(f"/api/v1/timeline?qid={qid}").expect(200).json
    i = index(tl, "rules", "disposition", recipient="a@example.org",
              disposition="quarantined")
    assert "offers" in tl["events"][i]["detail"]["reason"], tl["events"][i]
    j = index(tl, "spool", "quarantined", i, qid=qid)
    assert tl["events"][j]["detail"]["quarantined"] == 1

    # Released, the copy goes out under a queue id of its own; the timeline follows it.
    item = d.query("SELECT id FROM quarantine WHERE qid = ?", (qid,))[0][0]
    api.post("/api/v1/quarantine/release", {"ids": [item]}).expect(200)
    copy = d.query("SELECT json_extract(detail, '$.queue_qid') FROM message_event"
                   " WHERE qid = ? AND event = 'quarantine.release'", (qid,))[0][0]
    assert copy and copy != qid
    assert wait_for(lambda: attempts(d, copy) == 1, timeout=20)
    tl = api.get(f"/api/v1/timeline?qid={qid}").expect(200).json
    assert copy in tl["qids"], tl["qids"]
    k = index(tl, "quarantine", "release", j, actor="admin:admin")
    index(tl, "delivery", "attempt", k, result="delivered", recipient="a@example.org")


def test_lookup_errors_and_admin_only(env):
    d, api = env
    api.get("/api/v1/timeline").expect(422, field="qid")
    api.get("/api/v1/timeline?qid=x&message_id=y").expect(422, field="message_id")
    api.get("/api/v1/timeline?qid=NOSUCHQID").expect(404)
    api.get("/api/v1/timeline?message_id=nobody%40nowhere").expect(404)
    api.get("/api/v1/messages/999999/timeline").expect(404)
    api.create_user("tluser", password="password-tluser")
    user = Api(d.http_port)
    user.login("tluser", "password-tluser")
    user.get("/api/v1/timeline?qid=x").expect(403)
    user.get("/api/v1/messages/1/timeline").expect(403)


def test_recipients_that_need_escaping_keep_the_timeline_json(env, downstream):
    """A quoted local part with a quote and a backslash, and a UTF-8 one (SMTPUTF8): the
    conversation is stored as JSON that parses, each recipient as the envelope had it."""
    d, api = env
    quoted = '"a\\"b\\\\c"@example.org'
    utf8 = "jos\u00e9@example.org"
    c = d.raw()
    try:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net> SMTPUTF8", "250 2.1.0")
        for r in (quoted, utf8):
            rep = c.cmd(f"RCPT TO:<{r}>")
            assert rep.code == 250, (r, rep)
        c.expect_cmd("DATA", 354)
        c.send(stuff(message(subject="escaping")))
        qid = qid_of(c.readreply())
    finally:
        c.close()
    row = d.log_rows("qid = ?", (qid,))[0]
    events = json.loads(row["timeline"])
    got = [e["recipient"] for e in events if e["stage"] == "rcpt"]
    assert got == json.loads(row["recipients"]) == [quoted, utf8], (got, row["recipients"])
    tl = api.get(f"/api/v1/timeline?qid={qid}").expect(200).json
    index(tl, "rcpt", "accepted", recipient=quoted)
    index(tl, "rcpt", "accepted", recipient=utf8)
