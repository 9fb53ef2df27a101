"""`moatd accounts` (docs/submission.md): passwd, list, alerts, lift, limits — and its
usage errors (exit 2) and failures (exit 1)."""

from submission_util import SUBMISSION_CONF, add_user, moatd_cli, smtp_tls


def test_cli_errors_and_passwd(moatd_factory):
    d = moatd_factory(**SUBMISSION_CONF)
    r = moatd_cli(d, "accounts", "passwd", "ghost", input=b"long-enough-pw\n")
    assert r.returncode == 1 and b"no user" in r.stderr
    r = moatd_cli(d, "policy", "user", "add", "carol", "carol@example.com")
    assert r.returncode == 0
    r = moatd_cli(d, "accounts", "passwd", "carol", input=b"short\n")
    assert r.returncode == 1
    r = moatd_cli(d, "accounts", "passwd", "carol", input=b"")
    assert r.returncode == 1
    r = moatd_cli(d, "accounts", "passwd", "carol", input=b"carol-password-1\n")
    assert r.returncode == 0 and b"carol-password" not in r.stdout + r.stderr
    hashes = d.query("SELECT password_hash FROM dir_user WHERE name='carol'")
    assert hashes[0][0].startswith("$argon2id$")  # the API's format
    s = smtp_tls(d.smtp_port)
    s.login("carol", "carol-password-1")
    s.quit()
    assert moatd_cli(d, "accounts", "frobnicate").returncode == 2
    # Every subcommand starts the same way: unknown verb, help, nothing.
    for sub in ("accounts", "policy", "queue"):
        r = moatd_cli(d, sub, "frobnicate")
        assert r.returncode == 2 and f'moatd {sub}: unknown command "frobnicate"'.encode() \
            in r.stderr and b"usage: moatd " + sub.encode() in r.stderr, r.stderr
        r = moatd_cli(d, sub, "help")
        assert r.returncode == 0 and r.stdout.startswith(b"usage: moatd " + sub.encode())
    assert moatd_cli(d, "accounts", "limits", "carol", "bogus=1").returncode == 2
    assert moatd_cli(d, "accounts", "limits", "carol", "messages_day=x").returncode == 2
    r = moatd_cli(d, "accounts", "lift", "carol")
    assert r.returncode == 1 and b"not suspended" in r.stderr
    assert moatd_cli(d, "accounts", "list", "--bogus").returncode == 2
    r = moatd_cli(d, "accounts", "alerts")
    assert r.returncode == 0 and r.stdout == b""
    r = moatd_cli(d, "accounts", "limits", "carol", "messages_day=7", "recipients_hour=9")
    assert r.returncode == 0
    r = moatd_cli(d, "accounts", "limits", "carol", "messages_day=default")
    assert r.returncode == 0
    r = moatd_cli(d, "accounts", "limits")
    assert b"carol\tmessages_second=default\tmessages_minute=default\tmessages_hour=default" \
           b"\tmessages_day=default\trecipients_second=default\trecipients_minute=default" \
           b"\trecipients_hour=9" in r.stdout
