"""Rate limits per account and per client address (docs/submission.md): messages and
recipients per second, minute, hour and day; defaults from limit_* settings ("S,M,H,D" or
the older "M,H,D"), per-account overrides with `moatd accounts limits`; past a limit
451 4.7.1 — the client is deferred, nothing is dropped."""

import time

import pytest

from conftest import message, wait_for
from submission_util import SUBMISSION_CONF, add_user, moatd_cli, smtp_tls

PW = "alice-password-1"
NOLIMIT = {"limit_account_messages": "0,0,0,0", "limit_account_recipients": "0,0,0,0",
           "limit_client_messages": "0,0,0,0", "limit_client_recipients": "0,0,0,0"}


def start(moatd_factory, **limits):
    conf = dict(SUBMISSION_CONF, **NOLIMIT)
    conf.update(limits)
    d = moatd_factory(**conf)
    add_user(d, "alice", ["alice@example.com"], PW)
    add_user(d, "bob", ["bob@example.com"], "bob-password-12")
    return d


def send_n(s, sender, n, rcpts=("friend@example.org",)):
    for _ in range(n):
        s.sendmail(sender, list(rcpts), message())


@pytest.mark.parametrize("key,value", [("limit_account_messages", "3,0,0"),
                                       ("limit_account_messages", "0,3,0"),
                                       ("limit_account_messages", "0,0,3")])
def test_account_messages_per_minute_hour_day(moatd_factory, key, value):
    d = start(moatd_factory, **{key: value})
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    send_n(s, "alice@example.com", 3)
    code, resp = s.mail("alice@example.com")
    assert code == 451 and resp.startswith(b"4.7.1"), resp
    assert b"3 messages per" in resp
    s.quit()
    # another account is not affected
    s = smtp_tls(d.smtp_port)
    s.login("bob", "bob-password-12")
    send_n(s, "bob@example.com", 1)
    s.quit()
    assert len(d.queue_files()) == 4  # deferred, never dropped: nothing half-queued
    assert "RATE LIMIT user=alice" in d.log_text()


@pytest.mark.parametrize("value,window", [("5,0,0", "minute"), ("0,5,0", "hour"),
                                          ("0,0,5", "day")])
def test_account_recipients_per_window(moatd_factory, value, window):
    d = start(moatd_factory, limit_account_recipients=value)
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    s.mail("alice@example.com")
    for i in range(5):
        assert s.rcpt(f"r{i}@example.org")[0] == 250
    code, resp = s.rcpt("r5@example.org")
    assert code == 451 and resp.startswith(b"4.7.1") and window.encode() in resp, resp
    s.quit()


def test_client_address_limits_span_accounts(moatd_factory):
    d = start(moatd_factory, limit_client_messages="2,0,0", limit_client_recipients="0,0,0")
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    send_n(s, "alice@example.com", 2)
    s.quit()
    s = smtp_tls(d.smtp_port)
    s.login("bob", "bob-password-12")
    code, resp = s.mail("bob@example.com")
    assert code == 451 and b"client address" in resp, resp
    s.quit()


def test_client_recipient_limit(moatd_factory):
    d = start(moatd_factory, limit_client_recipients="2,0,0")
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    s.mail("alice@example.com")
    assert s.rcpt("a@example.org")[0] == 250
    assert s.rcpt("b@example.org")[0] == 250
    assert s.rcpt("c@example.org")[0] == 451
    s.quit()


def test_per_account_override(moatd_factory):
    d = start(moatd_factory, limit_account_messages="10,0,0")
    r = moatd_cli(d, "accounts", "limits", "alice", "messages_minute=1")
    assert r.returncode == 0, r.stderr
    r = moatd_cli(d, "accounts", "limits")
    assert (b"alice\tmessages_second=default\tmessages_minute=1\tmessages_hour=default"
            in r.stdout)

    def alice_limited():
        s = smtp_tls(d.smtp_port)
        s.login("alice", PW)
        s.mail("alice@example.com")
        s.rset()
        code = s.mail("alice@example.com")[0]
        s.quit()
        return code == 451
    # the daemon reads overrides back every second
    assert wait_for(alice_limited, timeout=6, interval=0.5)
    s = smtp_tls(d.smtp_port)
    s.login("bob", "bob-password-12")
    for _ in range(3):
        assert s.mail("bob@example.com")[0] == 250
        s.rset()
    s.quit()


def test_default_limits_are_set():
    from conftest import MOATD_BIN
    import subprocess
    out = subprocess.run([MOATD_BIN, "--check-config", "-c", "/dev/null"], capture_output=True,
                         timeout=10)
    if out.returncode != 0:
        pytest.skip("no --check-config")
    assert b"limit_account_messages = 10,300,1200,5000" in out.stdout
    assert b"limit_client_messages = 0,0,0,0" in out.stdout


def test_bad_limit_setting_refused_at_start(moatd_factory):
    with pytest.raises(AssertionError) as e:
        moatd_factory(limit_account_messages="30,300", **SUBMISSION_CONF)
    assert "limit_account_messages" in str(e.value)


def test_account_messages_per_second(moatd_factory):
    """The per-second limit holds from the first message, and frees again a second later."""
    d = start(moatd_factory, limit_account_messages="3,0,0,0")
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    t0 = time.monotonic()
    for _ in range(3):
        assert s.mail("alice@example.com")[0] == 250
        s.rset()
    code, resp = s.mail("alice@example.com")
    if time.monotonic() - t0 < 0.9:  # four MAILs inside one second
        assert code == 451 and resp.startswith(b"4.7.1"), resp
        assert b"3 messages per second" in resp, resp
        assert "rate_am_second" in d.log_text()
    s.rset()

    def freed():
        code = s.mail("alice@example.com")[0]
        s.rset()
        return code == 250
    assert wait_for(freed, timeout=3, interval=0.2)
    s.quit()


def test_old_three_value_form_still_accepted(moatd_factory):
    d = start(moatd_factory, limit_account_messages="2,0,0")  # per minute, hour, day
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    send_n(s, "alice@example.com", 2)
    code, resp = s.mail("alice@example.com")
    assert code == 451 and b"2 messages per minute" in resp, resp
    s.quit()


def test_old_three_value_form_keeps_the_default_second(moatd_factory):
    """An upgraded configuration written as "minute,hour,day" still stops a first-second
    burst: the per-second limit is the default's (10)."""
    d = start(moatd_factory, limit_account_messages="120,1200,5000")
    s = smtp_tls(d.smtp_port)
    s.login("alice", PW)
    codes = []
    for _ in range(11):
        codes.append(s.mail("alice@example.com")[0])
        s.rset()
    s.quit()
    assert codes[:10] == [250] * 10 and codes[10] == 451, codes


def test_per_second_override(moatd_factory):
    d = start(moatd_factory)
    r = moatd_cli(d, "accounts", "limits", "alice", "messages_second=1")
    assert r.returncode == 0, r.stderr
    r = moatd_cli(d, "accounts", "limits")
    assert b"alice\tmessages_second=1\tmessages_minute=default" in r.stdout
    assert d.query("SELECT messages_second FROM account_limit WHERE user = 'alice'") == [(1,)]

    def alice_limited():
        s = smtp_tls(d.smtp_port)
        s.login("alice", PW)
        s.mail("alice@example.com")
        s.rset()
        code, resp = s.mail("alice@example.com")
        s.quit()
        return code == 451 and b"per second" in resp
    assert wait_for(alice_limited, timeout=6, interval=0.5)


@pytest.mark.parametrize("value", ["1001,0,0,0", "1,2,3,4,5", "x,1,2,3"])
def test_bad_four_value_setting_refused_at_start(moatd_factory, value):
    with pytest.raises(AssertionError) as e:
        moatd_factory(limit_account_messages=value, **SUBMISSION_CONF)
    assert "limit_account_messages" in str(e.value)
