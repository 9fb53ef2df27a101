"""Sender binding (docs/submission.md): an authenticated user may use only the envelope
senders that are theirs in the directory (dir_address of their dir_user); anything else
is 553 5.7.1 and counts against the account (account_state.refused, the score)."""

import time

from conftest import message, wait_for
from submission_util import SUBMISSION_CONF, add_user, moatd_cli, smtp_tls

PW = "alice-password-1"


def test_own_addresses_accepted_others_refused(moatd_factory):
    # scoring off: five distinct senders and three refusals would score 24 >= 20 (suspension,
    # test_account_incident.py)
    d = moatd_factory(account_suspend_score="0", **SUBMISSION_CONF)
    add_user(d, "alice", ["alice@example.com", "al@example.com"], PW)
    add_user(d, "bob", ["bob@example.com"], "bob-password-12")
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    for own in ("alice@example.com", "al@example.com", "ALICE@Example.COM"):
        assert s.mail(own)[0] == 250, own
        s.rset()
    for other in ("bob@example.com", "alice@example.net", "random123@spam.example"):
        code, resp = s.mail(other)
        assert code == 553 and resp.startswith(b"5.7.1"), (other, resp)
    code, _ = s.mail("")  # the null sender is nobody's
    assert code == 553
    s.sendmail("al@example.com", ["friend@example.org"], message())
    s.quit()
    assert "SENDER BINDING user=alice" in d.log_text()
    rows = d.log_rows("result = 'refused' AND check_name = 'sender_binding'")
    assert rows and rows[0]["code"] == "553 5.7.1", rows
    # counted against the account (flushed by the account worker every 2 s)
    got = wait_for(lambda: d.query("SELECT refused, messages FROM account_state"
                                   " WHERE user='alice'"), timeout=6)
    assert got and got[0][0] == 4 and got[0][1] == 4, got
    r = moatd_cli(d, "accounts", "list")
    assert r.returncode == 0 and b"alice\tmessages=4\trecipients=1\trefused=4" in r.stdout


def test_unauthenticated_sender_not_bound(moatd_factory):
    d = moatd_factory(**SUBMISSION_CONF)
    add_user(d, "alice", ["alice@example.com"], PW)
    s = d.smtp()
    s.ehlo("client.example")
    assert s.mail("anyone@example.net")[0] == 250  # port 25 inbound: no binding
    s.quit()


def test_from_header_binding_optional(moatd_factory):
    d = moatd_factory(account_suspend_score="0", auth_bind_from_header="yes", **SUBMISSION_CONF)
    add_user(d, "alice", ["alice@example.com", "al@example.com"], PW)
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)

    def send(from_hdr):
        body = (f"From: {from_hdr}\r\nTo: f@example.org\r\nSubject: t\r\n\r\nhi\r\n").encode()
        s.mail("alice@example.com")
        s.rcpt("f@example.org")
        return s.data(body)
    assert send("Alice <alice@example.com>")[0] == 250
    assert send("\"Al, ias\" <AL@example.com>")[0] == 250
    code, resp = send("Boss <boss@example.com>")
    assert code == 553 and resp.startswith(b"5.7.1"), resp
    code, resp = send("alice@example.com, other@example.net")
    assert code == 553
    s.quit()
    assert len(d.queue_files()) == 2
    assert "FROM BINDING user=alice" in d.log_text()


def test_from_header_not_checked_by_default(moatd_factory):
    d = moatd_factory(**SUBMISSION_CONF)
    add_user(d, "alice", ["alice@example.com"], PW)
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    s.sendmail("alice@example.com", ["f@example.org"],
               b"From: Boss <boss@example.com>\r\nSubject: t\r\n\r\nhi\r\n")
    s.quit()
