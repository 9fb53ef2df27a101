"""Helpers for the submission tests (test_tls_*, test_auth_*, test_account_*).

    d = moatd_factory(**SUBMISSION_CONF)
    add_user(d, "alice", ["alice@example.com"], "alice-password-1")
    s = smtp_tls(d.smtp_port)            # smtplib, EHLO + STARTTLS + EHLO done
    s.login("alice", "alice-password-1")
"""

import smtplib
import ssl
import subprocess

from conftest import IO_TIMEOUT, MOATD_BIN

# No real DNS in the tests: the recipient-domain check is on only where dnsmasq runs.
SUBMISSION_CONF = {"submission_listen": "127.0.0.1:0", "recipient_domain_check": "no"}


def moatd_cli(d, *args, input=None):
    """Runs `moatd <args...> -c <conf>` against d's config; returns CompletedProcess."""
    cmd = [MOATD_BIN, args[0], "-c", str(d.conf_path)] + list(args[1:])
    return subprocess.run(cmd, input=input, capture_output=True, timeout=20)


def add_user(d, name, addrs, password):
    """A directory user with addresses (moatd policy user add) and a password (moatd accounts passwd)."""
    r = moatd_cli(d, "policy", "user", "add", name, *addrs)
    assert r.returncode == 0, r.stderr
    r = moatd_cli(d, "accounts", "passwd", name, input=(password + "\n").encode())
    assert r.returncode == 0, r.stderr


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the embedded default is self-signed
    return ctx


def smtp_tls(port, helo="client.example"):
    s = smtplib.SMTP("127.0.0.1", port, timeout=IO_TIMEOUT)
    s.ehlo(helo)
    s.starttls(context=tls_context())
    s.ehlo(helo)
    return s


def submission_port(d):
    """The submission listener: listed after the smtp_listen ones in the ready line."""
    return d.smtp_addrs[-1][1]
