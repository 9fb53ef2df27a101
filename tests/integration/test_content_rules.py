"""Server rules at the end of DATA, through the real binary: the message is read once (MIME),
the enabled rules decide per recipient, and each action is observed where it lands — the
SMTP reply, a real aiosmtpd downstream, the queue rows, the quarantine index and file, the
message log and the rule's hit count.

Rules are written into the rule table of the daemon's own SQLite file, as the API and
`moatd rules` do; the daemon applies them to the next connection once it has loaded the new
policy generation (its `policy loaded generation=N` line)."""

from pathlib import Path

import pytest

from conftest import message, qid_of, stuff, REPO
from peers_delivery import Downstream, delivery_conf, header_value, rcpt_states, wait_for
from peers_policy import set_rules
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


@pytest.fixture
def d(api_moatd, downstream):
    return api_moatd(**delivery_conf(downstream.addr))



def leaf(field, op, value, **kw):
    return dict({"field": field, "op": op, "value": value}, **kw)


def subject_is(word):
    return leaf("header", "contains", word, header="Subject")


def rcpt_is(addr):
    return leaf("recipient", "is", addr)


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


def test_refuse_at_end_of_data_names_the_rule(d, downstream):
    ids = set_rules(d, [{"name": "no pills", "when": subject_is("vIaGrA"),
                         "action": {"type": "refuse", "code": 550, "enhanced": "5.7.1",
                                    "text": "No pills here"}}])
    r = deliver(d, ["a@example.org"], message(subject="Cheap VIAGRA now"))
    assert r.code == 550 and "5.7.1 No pills here" in r.text, r
    row = d.log_rows("result = 'refused'")[0]
    assert row["check_name"] == "rules" and row["entry"] == f"rule {ids[0]} no pills", row
    assert d.query("SELECT hits FROM rule WHERE id = ?", (ids[0],)) == [(1,)]
    # Another subject passes and is delivered.
    r = deliver(d, ["a@example.org"], message(subject="lunch"))
    assert r.code == 250, r
    downstream.wait_for(1)
    assert d.query("SELECT hits FROM rule WHERE id = ?", (ids[0],)) == [(1,)]


def test_defer_is_a_4xx(d):
    set_rules(d, [{"name": "later", "when": subject_is("later"),
                   "action": {"type": "defer"}}])
    r = deliver(d, ["a@example.org"], message(subject="later please"))
    assert r.code == 451 and "4.7.1" in r.text, r
    assert d.query("SELECT count(*) FROM queue_message") == [(0,)]


def test_three_recipients_three_outcomes(d, downstream):
    ids = set_rules(d, [
        {"name": "hold b", "when": rcpt_is("b@example.org"), "action": {"type": "hold"}},
        {"name": "quarantine a", "when": {"all": [rcpt_is("a@example.org"),
                                                  subject_is("offer")]},
         "action": {"type": "quarantine"}},
    ])
    r = deliver(d, ["a@example.org", "b@example.org", "c@example.org"],
                message(subject="A special offer"))
    assert r.code == 250, r
    qid = qid_of(r)
    downstream.wait_for(1)
    assert downstream.rcpts() == ["c@example.org"]
    assert wait_for(lambda: rcpt_states(d, qid).get("c@example.org") in (None, "done"))
    states = rcpt_states(d, qid)
    assert states.get("b@example.org") == "held" and "a@example.org" not in states, states
    reason = d.query("SELECT reason FROM queue_rcpt WHERE qid = ?", (qid,))[0][0]
    assert reason == f"rule {ids[0]} hold b"
    q = d.query("SELECT rcpt, reason, sender FROM quarantine WHERE qid = ?", (qid,))
    assert q == [("a@example.org", f"rule {ids[1]} quarantine a", "s@example.net")], q
    kept = d.data_dir / "spool" / "quarantine" / qid
    assert b"Subject: A special offer" in kept.read_bytes()
    # The quarantine index through the API, as an administrator sees it.
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    got = api.get("/api/v1/quarantine?recipient=A@example.org")
    assert got.status == 200, got.body
    items = got.json["items"]
    assert [(i["qid"], i["recipient"], i["reason"]) for i in items] == [
        (qid, "a@example.org", f"rule {ids[1]} quarantine a")], items
    assert api.get("/api/v1/quarantine?recipient=b@example.org").json["items"] == []
    bad = api.get("/api/v1/quarantine?bogus=1")
    assert bad.status == 422 and bad.json["error"]["field"] == "bogus", bad.body
    row = d.log_rows("qid = ?", (qid,))[0]
    assert "quarantined a@example.org" in row["reason"] and "held b@example.org" in row["reason"]
    # The held copy and the quarantined copy outlive the delivered one.
    assert (d.queue_dir() / qid).exists()


def test_quarantine_only_keeps_the_file_in_quarantine(moatd_factory, d, downstream):
    set_rules(d, [{"name": "q", "when": subject_is("scan me"), "action": {"type": "quarantine"}}])
    r = deliver(d, ["a@example.org", "b@example.org"], message(subject="please scan me"))
    assert r.code == 250, r
    qid = qid_of(r)
    assert d.query("SELECT count(*) FROM queue_message WHERE qid = ?", (qid,)) == [(0,)]
    assert sorted(x[0] for x in d.query("SELECT rcpt FROM quarantine WHERE qid = ?", (qid,))) == \
        ["a@example.org", "b@example.org"]
    assert not (d.queue_dir() / qid).exists()
    assert (d.data_dir / "spool" / "quarantine" / qid).exists()
    # A restart keeps it: reconciliation leaves the quarantine alone.
    assert d.stop() == 0
    d2 = moatd_factory(data_dir=d.data_dir, **delivery_conf(downstream.addr))
    assert (d2.data_dir / "spool" / "quarantine" / qid).exists()
    assert d2.query("SELECT count(*) FROM quarantine WHERE qid = ?", (qid,)) == [(2,)]


def test_tag_redirect_bcc_and_discard(d, downstream):
    set_rules(d, [
        {"name": "tag", "when": leaf("body", "contains", "unsubscribe"),
         "action": {"type": "tag", "subject_prefix": "[BULK]", "header": "X-Moat-Rule: bulk"}},
        {"name": "copy", "when": rcpt_is("a@example.org"),
         "action": {"type": "bcc", "address": "archive@example.org"}},
        {"name": "move", "when": rcpt_is("old@example.org"),
         "action": {"type": "redirect", "address": "new@example.org"}},
        {"name": "drop", "when": rcpt_is("gone@example.org"), "action": {"type": "discard"}},
    ])
    body = message(subject="News", body_lines=("Hello.", "To unsubscribe click here."))
    r = deliver(d, ["a@example.org", "old@example.org", "gone@example.org"], body)
    assert r.code == 250, r
    downstream.wait_for(1)
    wait_for(lambda: len(downstream.rcpts()) >= 3)
    assert sorted(downstream.rcpts()) == ["a@example.org", "archive@example.org",
                                          "new@example.org"]
    content = downstream.messages[0]["content"]
    assert header_value(content, b"Subject") == "[BULK] News"
    assert header_value(content, b"X-Moat-Rule") == "bulk"
    # Everything discarded: accepted, nothing kept.
    r = deliver(d, ["gone@example.org"], message(subject="x"))
    assert r.code == 250, r
    rows = d.log_rows("qid IS NULL AND reason LIKE 'discarded%'")
    assert rows and rows[0]["code"] == "250 2.0.0" and rows[0]["result"] == "accepted", rows


def test_recipients_the_rules_would_answer_differently_are_split_at_rcpt(d, downstream):
    """A refusal that concerns one recipient cannot be said after DATA for only that one:
    the recipient is asked to come in its own transaction (452 4.5.3) and is refused there."""
    set_rules(d, [
        {"name": "not b", "when": rcpt_is("b@example.org"),
         "action": {"type": "refuse", "code": 550, "text": "b takes no mail"}},
        {"name": "quarantine c", "when": rcpt_is("c@example.org"),
         "action": {"type": "quarantine"}},
    ])
    c = d.raw()
    try:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<a@example.org>", "250 2.1.5")
        r = c.cmd("RCPT TO:<b@example.org>")
        assert r.code == 452 and "4.5.3" in r.text, r
        # c differs from a only in a rule after the last one that can refuse: same
        # transaction.
        c.expect_cmd("RCPT TO:<c@example.org>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        c.send(stuff(message(subject="hi")))
        r = c.readreply()
        assert r.code == 250, r
        qid = qid_of(r)
        # The client's retry of b alone: the rule's own answer.
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<b@example.org>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        c.send(stuff(message(subject="hi")))
        r = c.readreply()
        assert r.code == 550 and "b takes no mail" in r.text, r
    finally:
        c.close()
    downstream.wait_for(1)
    assert downstream.rcpts() == ["a@example.org"]
    assert d.query("SELECT rcpt FROM quarantine WHERE qid = ?", (qid,)) == [("c@example.org",)]
    row = d.log_rows("check_name = 'rcpt_class'")[0]
    assert row["code"] == "452 4.5.3" and row["result"] == "deferred", row


def corpus_spam():
    """A real spam message of the SpamAssassin corpus with an RFC 2047 or HTML body, if the
    corpus is here (scripts/corpus.sh); else None."""
    import subprocess
    p = subprocess.run([str(REPO / "scripts" / "corpus.sh")], capture_output=True, text=True,
                       timeout=300)
    if p.returncode != 0:
        return None
    root = Path(p.stdout.strip())
    for f in sorted((root / "spam-2").glob("*.txt"))[:400]:
        raw = f.read_bytes()
        if b"Content-Transfer-Encoding: base64" in raw and b"text/html" in raw.lower():
            return raw
    return None


def test_real_spam_matched_in_decoded_body(d, downstream):
    raw = corpus_spam()
    if raw is None:
        pytest.skip("SpamAssassin corpus not available (scripts/corpus.sh)")
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1]
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    # A phrase of the decoded text: decode the way a reader would, then pick a word.
    import email
    import email.policy
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    part = msg.get_body(preferencelist=("html", "plain"))
    words = [w for w in part.get_content().split() if w.isalpha() and len(w) > 6]
    assert words, "no word in the decoded body"
    word = words[len(words) // 2]
    assert word.encode() not in raw, "the word should only appear once decoded"
    set_rules(d, [{"name": "decoded", "when": leaf("body", "contains", word),
                   "action": {"type": "quarantine"}}])
    r = deliver(d, ["a@example.org"], raw)
    assert r.code == 250, r
    assert d.query("SELECT count(*) FROM quarantine WHERE qid = ?", (qid_of(r),)) == [(1,)]


def test_a_message_past_a_mime_bound_is_still_judged(api_moatd, downstream):
    d = api_moatd(**delivery_conf(downstream.addr, mime_max_parts="3"))
    set_rules(d, [{"name": "too many parts", "when": leaf("flag", "is", "mime_limit"),
                   "action": {"type": "hold"}}])
    parts = []
    for i in range(10):
        parts += [b"--b", b"Content-Type: text/plain", b"", f"part {i}".encode()]
    body = b"\r\n".join([b"From: s@example.net", b"To: a@example.org", b"Subject: parts",
                         b"MIME-Version: 1.0", b'Content-Type: multipart/mixed; boundary="b"',
                         b""] + parts + [b"--b--", b""])
    r = deliver(d, ["a@example.org"], body)
    assert r.code == 250, r
    assert rcpt_states(d, qid_of(r)) == {"a@example.org": "held"}
    # Within the bound the same rule does not fire.
    r = deliver(d, ["a@example.org"], message(subject="one part"))
    downstream.wait_for(1)
    assert downstream.rcpts() == ["a@example.org"]
