"""SMTP AUTH PLAIN and LOGIN (RFC 4954) against the directory's Argon2id passwords
(docs/submission.md).

Numbers used here: auth_fail_delay 1s by default (the tarpit test uses it; others set 0.2s),
auth_fail_max_per_account 100 (over all addresses, never for an address that authenticated
before) and auth_fail_max_per_addr 10 in a 15 min window by default; the brute-force tests
lower them to 3 / 4. The per (account, address) throttle is in test_login_throttle.py.
"""

import base64
import smtplib
import socket
import time

import pytest

from conftest import IO_TIMEOUT, message, wait_for
from submission_util import SUBMISSION_CONF, add_user, smtp_tls, submission_port, tls_context

PW = "alice-password-1"


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


@pytest.fixture
def sub(moatd_factory):
    d = moatd_factory(auth_fail_delay="200ms", **SUBMISSION_CONF)
    add_user(d, "alice", ["alice@example.com", "al@example.com"], PW)
    return d


def test_auth_not_offered_nor_accepted_before_tls(sub):
    s = sub.smtp()
    code, text = s.ehlo("client.example")
    assert b"AUTH" not in text
    code, resp = s.docmd("AUTH", "PLAIN " + b64("\0alice\0" + PW))
    assert code == 538, resp
    s.quit()


def test_auth_plaintext_allowed_by_setting(moatd_factory):
    d = moatd_factory(auth_allow_plaintext="yes")
    add_user(d, "alice", ["alice@example.com"], PW)
    s = d.smtp()
    code, text = s.ehlo("client.example")
    assert b"AUTH PLAIN LOGIN" in text
    s.login("alice", PW)
    s.quit()


def test_auth_plain_success_and_identity_recorded(sub):
    s = smtp_tls(sub.smtp_port)
    code, text = s.ehlo("client.example")
    assert b"AUTH PLAIN LOGIN" in text
    code, resp = s.docmd("AUTH", "PLAIN " + b64("\0alice\0" + PW))
    assert code == 235, resp
    code, _ = s.docmd("AUTH", "PLAIN " + b64("\0alice\0" + PW))
    assert code == 503  # already authenticated
    s.sendmail("alice@example.com", ["friend@example.org"], message())
    s.quit()
    rows = wait_for(lambda: sub.query("SELECT auth_user FROM queue_message"), timeout=5)
    assert rows == [("alice",)]
    files = wait_for(lambda: sub.queue_files(), timeout=5)
    assert b"with ESMTPSA id" in (sub.queue_dir() / files[0]).read_bytes()
    log = sub.log_text()
    assert PW not in log and b64("\0alice\0" + PW) not in log


def test_auth_plain_with_challenge_and_login(sub):
    s = smtp_tls(sub.smtp_port)
    code, resp = s.docmd("AUTH", "PLAIN")
    assert code == 334
    code, resp = s.docmd(b64("alice\0alice\0" + PW))  # authzid == authcid is fine
    assert code == 235, resp
    s.quit()
    s = smtp_tls(sub.smtp_port)
    code, resp = s.docmd("AUTH", "LOGIN")
    assert (code, resp) == (334, b"VXNlcm5hbWU6")
    code, resp = s.docmd(b64("alice"))
    assert (code, resp) == (334, b"UGFzc3dvcmQ6")
    code, resp = s.docmd(b64(PW))
    assert code == 235, resp
    s.quit()
    s = smtp_tls(sub.smtp_port)
    code, resp = s.docmd("AUTH", "LOGIN " + b64("alice"))
    assert code == 334
    assert s.docmd(b64(PW))[0] == 235
    s.quit()


def test_auth_cancel_and_garbage(sub):
    s = smtp_tls(sub.smtp_port)
    assert s.docmd("AUTH", "PLAIN")[0] == 334
    code, resp = s.docmd("*")
    assert code == 501 and resp.startswith(b"5.7.0")
    assert s.docmd("AUTH", "LOGIN")[0] == 334
    assert s.docmd("*")[0] == 501
    assert s.docmd("AUTH", "PLAIN !!!notbase64")[0] == 501
    assert s.docmd("AUTH", "CRAM-MD5")[0] == 504
    assert s.docmd("AUTH")[0] == 501
    assert s.docmd("AUTH", "PLAIN " + b64("bob\0alice\0" + PW))[0] == 535  # authzid != authcid
    assert s.noop()[0] == 250
    s.quit()


def test_auth_failure_is_delayed_535(moatd_factory):
    d = moatd_factory()  # default auth_fail_delay = 1s
    add_user(d, "alice", ["alice@example.com"], PW)
    s = smtp_tls(d.smtp_port)
    t0 = time.monotonic()
    code, resp = s.docmd("AUTH", "PLAIN " + b64("\0alice\0wrong-password"))
    elapsed = time.monotonic() - t0
    assert code == 535 and resp.startswith(b"5.7.8")
    assert elapsed >= 0.9
    t0 = time.monotonic()
    code, _ = s.docmd("AUTH", "PLAIN " + b64("\0nobody\0wrong-password"))
    assert code == 535 and time.monotonic() - t0 >= 0.9  # unknown user: same answer
    assert s.docmd("AUTH", "PLAIN " + b64("\0alice\0" + PW))[0] == 235
    s.quit()
    assert "AUTH FAILED" in d.log_text()
    assert "wrong-password" not in d.log_text()


def test_auth_does_not_block_other_sessions(moatd_factory):
    """While a tarpit/verification is pending on one session, another gets its replies."""
    d = moatd_factory(auth_fail_delay="3s")
    add_user(d, "alice", ["alice@example.com"], PW)
    s = smtp_tls(d.smtp_port)
    s.putcmd("AUTH", "PLAIN " + b64("\0alice\0wrong-password"))
    t0 = time.monotonic()
    other = d.smtp()
    assert other.ehlo("client.example")[0] == 250
    assert other.noop()[0] == 250
    assert time.monotonic() - t0 < 1.5
    other.quit()
    assert s.getreply()[0] == 535
    s.quit()


def test_brute_force_per_account_limit(moatd_factory):
    """The per-account limit over all addresses, from an address that never authenticated to
    the account (a known-good address is exempt: test_login_throttle.py)."""
    d = moatd_factory(auth_fail_delay="0", auth_fail_max_per_account="3",
                      auth_fail_max_per_addr="100")
    add_user(d, "alice", ["alice@example.com"], PW)
    s = smtp_tls(d.smtp_port)
    for i in range(3):  # distinct guesses: a repeated one is answered from the cache
        assert s.docmd("AUTH", "PLAIN " + b64(f"\0alice\0guess{i}"))[0] == 535
    code, resp = s.docmd("AUTH", "PLAIN " + b64("\0alice\0" + PW))
    assert code == 454 and resp.startswith(b"4.7.0"), resp  # even the right password
    s.quit()
    assert "AUTH ACCOUNT LIMIT" in d.log_text()


def test_brute_force_per_address_limit(moatd_factory):
    d = moatd_factory(auth_fail_delay="0", auth_fail_max_per_addr="4",
                      auth_fail_max_per_account="100")
    add_user(d, "alice", ["alice@example.com"], PW)
    for i in range(2):
        s = smtp_tls(d.smtp_port)
        for j in range(2):
            assert s.docmd("AUTH", "PLAIN " + b64(f"\0user{i}{j}\0guess"))[0] == 535
        s.quit()
    s = smtp_tls(d.smtp_port)
    code, resp = s.docmd("AUTH", "PLAIN " + b64("\0alice\0" + PW))
    assert code == 421 and resp.startswith(b"4.7.0"), resp
    with pytest.raises(smtplib.SMTPServerDisconnected):
        s.noop()
    assert "AUTH ADDRESS LIMIT" in d.log_text()


def test_submission_requires_auth(sub):
    port = submission_port(sub)
    assert port != sub.smtp_port
    s = smtp_tls(port)
    code, resp = s.docmd("MAIL", "FROM:<alice@example.com>")
    assert code == 530 and resp.startswith(b"5.7.0"), resp
    s.rset()
    s.login("alice", PW)
    s.sendmail("alice@example.com", ["friend@example.org"], message())
    s.quit()
    # the public port does not require it
    s = sub.smtp()
    s.ehlo("client.example")
    assert s.mail("someone@example.net")[0] == 250
    s.quit()


def test_auth_state_reset_by_starttls_not_carried(moatd_factory):
    d = moatd_factory(auth_allow_plaintext="yes")
    add_user(d, "alice", ["alice@example.com"], PW)
    s = d.smtp()
    s.ehlo("client.example")
    s.login("alice", PW)
    s.starttls(context=tls_context())
    s.ehlo("client.example")
    # AUTH again is possible: the plaintext authentication did not survive STARTTLS
    code, _ = s.docmd("AUTH", "PLAIN " + b64("\0alice\0" + PW))
    assert code == 235
    s.quit()


def test_disconnect_while_verifying(sub):
    sock = socket.create_connection(("127.0.0.1", sub.smtp_port), timeout=IO_TIMEOUT)
    sock.recv(1024)
    sock.close()
    s = smtp_tls(sub.smtp_port)
    s.putcmd("AUTH", "PLAIN " + b64("\0alice\0wrong"))
    s.close()  # gone before the answer
    time.sleep(0.5)
    s = smtp_tls(sub.smtp_port)
    s.login("alice", PW)
    s.quit()
