"""Per-recipient delivery edits (docs/mailbox-rules.md, "Folders at a gateway"; docs/queue.md).

A queued recipient may carry an edit (queue_rcpt.edit: folder, subject prefix, added headers,
importance) and the same address may be queued twice for one message (the inbox and a folder
copy, queue_rcpt.seq).  The message arrives through moatd's real SMTP listener and spool
writer with delivery off; its queue rows then get the edits the mailbox rules would have
written, and a second moatd on the same data directory delivers to a real aiosmtpd.
Observed there: one transaction per distinct edit, each with its own header lines, Subject
and RCPT TO; the body and every other byte unchanged.
"""

import json
import sqlite3
import subprocess

import pytest

from conftest import MOATD_BIN, message, strip_received, wait_for
from peers_delivery import Downstream, delivery_conf, send


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


def queue_message(moatd_factory, rcpts, body, sender="alice@example.net"):
    """A message accepted and spooled by moatd (delivery off); (data_dir, qid)."""
    d = moatd_factory(**delivery_conf("", delivery="no"))
    qid = send(d, sender, rcpts, body)
    assert d.stop() == 0
    return d.data_dir, qid


def set_edits(data_dir, qid, rows, auth_user=None):
    """rows: [(rcpt, seq, edit dict or None)]: existing (rcpt, 0) rows get the edit, others are
    added as the spool writer adds a folder copy or a forward."""
    with sqlite3.connect(str(data_dir / "moat.db")) as db:
        for rcpt, seq, edit in rows:
            text = json.dumps(edit) if edit is not None else None
            n = db.execute("UPDATE queue_rcpt SET edit = ? WHERE qid = ? AND rcpt = ? AND seq = ?",
                           (text, qid, rcpt, seq)).rowcount
            if n == 0:
                db.execute("INSERT INTO queue_rcpt (qid, rcpt, seq, edit, state, next_attempt)"
                           " VALUES (?, ?, ?, ?, 'queued', 0)", (qid, rcpt, seq, text))
        if auth_user is not None:
            db.execute("UPDATE queue_message SET auth_user = ? WHERE qid = ?", (auth_user, qid))


def deliver(moatd_factory, data_dir, ds, n, **conf):
    d = moatd_factory(data_dir=data_dir, **delivery_conf(ds.addr, **conf))
    ds.wait_for(n)
    return d


def head_body(content):
    head, body = content.split(b"\r\n\r\n", 1)
    return head, body


def by_rcpt(ds):
    """{tuple(rcpt_tos): content without our Received: field}"""
    return {tuple(sorted(m["rcpt_tos"])): strip_received(m["content"]) for m in ds.messages}


BODY = message(subject="Ship report", body_lines=(
    "Line one.", ".a leading dot", "Subject: not a header, the body", "", "end"))


def test_different_edits_two_transactions(moatd_factory, downstream):
    data_dir, qid = queue_message(moatd_factory, ["bob@example.org", "carol@example.org"], BODY)
    set_edits(data_dir, qid, [
        ("bob@example.org", 0, {"folder": "Ships/Seven", "subject_prefix": "[Fleet] ",
                                "headers": ["X-Rule: fleet"], "importance": "high"}),
        ("carol@example.org", 0, {"subject_prefix": "[Carol] "}),
    ])
    d = deliver(moatd_factory, data_dir, downstream, 2)
    assert len(downstream.messages) == 2, [m["rcpt_tos"] for m in downstream.messages]
    got = by_rcpt(downstream)
    orig_head, orig_body = head_body(BODY)

    bob = got[("bob@example.org",)]
    head, body = head_body(bob)
    assert body == orig_body  # the body byte-identical
    assert head == (b"X-Rule: fleet\r\nX-Moat-Folder: Ships/Seven\r\nImportance: high\r\n"
                    b"X-Priority: 1 (Highest)\r\n"
                    + orig_head.replace(b"Subject: Ship report", b"Subject: [Fleet] Ship report"))
    # The added lines follow our Received: field, which stays first.
    raw = next(m["content"] for m in downstream.messages if m["rcpt_tos"] == ["bob@example.org"])
    assert raw.startswith(b"Received: ")

    carol = got[("carol@example.org",)]
    assert carol == BODY.replace(b"Subject: Ship report", b"Subject: [Carol] Ship report")
    assert wait_for(lambda: d.query("SELECT count(*) FROM queue_rcpt")[0][0] == 0, timeout=10)


def test_equal_edits_share_one_transaction(moatd_factory, downstream):
    data_dir, qid = queue_message(
        moatd_factory, ["bob@example.org", "carol@example.org", "dave@example.org"], BODY)
    edit = {"subject_prefix": "[Team] "}
    set_edits(data_dir, qid, [("bob@example.org", 0, edit), ("carol@example.org", 0, edit)])
    deliver(moatd_factory, data_dir, downstream, 3)
    got = by_rcpt(downstream)
    assert sorted(got) == [("bob@example.org", "carol@example.org"), ("dave@example.org",)]
    assert got[("dave@example.org",)] == BODY  # no edit: untouched
    assert got[("bob@example.org", "carol@example.org")] == BODY.replace(
        b"Subject: Ship report", b"Subject: [Team] Ship report")


def test_folded_and_missing_subject(moatd_factory, downstream):
    folded = (b"From: a@example.net\r\nSubject: a long subject\r\n\tfolded onto two lines\r\n"
              b"To: b@example.org\r\n\r\nbody\r\n")
    data_dir, qid = queue_message(moatd_factory, ["bob@example.org"], folded)
    set_edits(data_dir, qid, [("bob@example.org", 0, {"subject_prefix": "[X] "})])
    deliver(moatd_factory, data_dir, downstream, 1)
    assert strip_received(downstream.messages[0]["content"]) == folded.replace(
        b"Subject: a long subject", b"Subject: [X] a long subject")

    downstream.messages.clear()
    bare = b"From: a@example.net\r\nTo: b@example.org\r\n\r\nno subject here\r\n"
    data_dir, qid = queue_message(moatd_factory, ["carol@example.org"], bare)
    set_edits(data_dir, qid, [("carol@example.org", 0, {"subject_prefix": "[X] "})])
    deliver(moatd_factory, data_dir, downstream, 1)
    assert strip_received(downstream.messages[0]["content"]) == bare.replace(
        b"\r\n\r\n", b"\r\nSubject: [X]\r\n\r\n", 1)


@pytest.mark.parametrize("method,sep,want_rcpt,want_header", [
    ("plus", ".", "bob+Ships.Seven@example.org", False),
    ("plus", "/", "bob+Ships/Seven@example.org", False),
    ("both", ".", "bob+Ships.Seven@example.org", True),
    ("header", ".", "bob@example.org", True),
])
def test_folder_methods(moatd_factory, downstream, method, sep, want_rcpt, want_header):
    data_dir, qid = queue_message(moatd_factory, ["bob@example.org"], BODY)
    set_edits(data_dir, qid, [("bob@example.org", 0, {"folder": "Ships/Seven"})])
    d = deliver(moatd_factory, data_dir, downstream, 1, folder_method=method,
                folder_plus_separator=sep)
    m = downstream.messages[0]
    assert m["rcpt_tos"] == [want_rcpt]
    content = strip_received(m["content"])
    if want_header:
        assert content == b"X-Moat-Folder: Ships/Seven\r\n" + BODY
    else:
        assert content == BODY
    # The row is the recipient's own address; the plus form is only the RCPT TO.
    assert wait_for(lambda: d.query("SELECT count(*) FROM queue_rcpt")[0][0] == 0, timeout=10)
    assert f"{qid} delivery sent to=<bob@example.org>" in d.log_text()


def test_plus_skipped_for_folder_a_local_part_cannot_carry(moatd_factory, downstream):
    data_dir, qid = queue_message(moatd_factory, ["bob@example.org"], BODY)
    set_edits(data_dir, qid, [("bob@example.org", 0, {"folder": "Ship Seven"})])
    d = deliver(moatd_factory, data_dir, downstream, 1, folder_method="plus")
    m = downstream.messages[0]
    assert m["rcpt_tos"] == ["bob@example.org"]
    assert strip_received(m["content"]) == b"X-Moat-Folder: Ship Seven\r\n" + BODY
    assert "PLUS FOLDER SKIPPED to=<bob@example.org>" in d.log_text()


def test_same_address_twice_inbox_and_folder_copy(moatd_factory, downstream):
    data_dir, qid = queue_message(moatd_factory, ["bob@example.org"], BODY)
    set_edits(data_dir, qid, [("bob@example.org", 1, {"folder": "Archive"})])
    # Both rows are listed by the queue tools.
    p = subprocess.run([MOATD_BIN, "queue", "--data-dir", str(data_dir), "list", "--json"],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 0, p.stderr
    assert [r["rcpt"] for r in json.loads(p.stdout)] == ["bob@example.org"] * 2
    deliver(moatd_factory, data_dir, downstream, 2)
    contents = sorted(strip_received(m["content"]) for m in downstream.messages)
    assert [m["rcpt_tos"] for m in downstream.messages] == [["bob@example.org"]] * 2
    assert contents == sorted([BODY, b"X-Moat-Folder: Archive\r\n" + BODY])


def test_forged_folder_header_left_out(moatd_factory, downstream):
    forged = message(subject="hi", extra_headers=("X-Moat-Folder: Trash",))
    data_dir, qid = queue_message(moatd_factory, ["bob@example.org", "carol@example.org"], forged)
    set_edits(data_dir, qid, [("carol@example.org", 0, {"folder": "Inbox/Real"})])
    deliver(moatd_factory, data_dir, downstream, 2)
    got = by_rcpt(downstream)
    clean = forged.replace(b"X-Moat-Folder: Trash\r\n", b"")
    assert got[("bob@example.org",)] == clean
    assert got[("carol@example.org",)] == b"X-Moat-Folder: Inbox/Real\r\n" + clean


def test_forward_copy_and_its_dsn_go_to_the_original_sender(moatd_factory, downstream):
    data_dir, qid = queue_message(moatd_factory, ["bob@example.org"], BODY)
    fwd = {"headers": ["X-Moat-Forwarded: bob@example.org"]}
    set_edits(data_dir, qid, [("ship7@example.org", 0, fwd)], auth_user="alice")
    downstream.replies["ship7@example.org"] = "550 5.1.1 no such user"
    d = deliver(moatd_factory, data_dir, downstream, 2, dsn_to_local_senders="yes")
    got = {m["mail_from"].strip("<>"): m for m in downstream.messages}
    assert got["alice@example.net"]["rcpt_tos"] == ["bob@example.org"]
    dsn = got[""]
    assert dsn["rcpt_tos"] == ["alice@example.net"]  # the original envelope sender
    assert b"Final-Recipient: rfc822; ship7@example.org" in dsn["content"]
    assert wait_for(lambda: d.query(
        "SELECT state FROM queue_rcpt WHERE qid = ? AND rcpt = 'ship7@example.org'", (qid,))
        == [("dead",)], timeout=10)
