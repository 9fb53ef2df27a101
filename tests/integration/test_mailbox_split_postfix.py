"""The 452 4.5.3 split of recipients with different mailbox rule sets, with Postfix's own
SMTP clients against the real binary (docs/mailbox-rules.md, "The 452 split").

One transaction to two recipients: the first's owner refuses the message by a rule, the
second's owner does not.  moatd answers the second recipient 452 4.5.3 at RCPT, so the
refusal after DATA answers for the first recipient alone, and nothing is ever bounced by
moatd.

- smtp-source (Postfix's test client) sends all recipients in one transaction and cannot send
  a 452'd recipient again: it shows the split as the client sees it.
- A throwaway Postfix relay (the sender's real MTA) does the whole thing: it defers the 452'd
  recipient, sends it again in a new transaction, and bounces the refused one to its own
  sender itself.  It needs root (Postfix's mail_owner) and /usr/sbin/postfix; skipped
  otherwise."""

import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from peers_delivery import Downstream, delivery_conf, free_port, wait_for
from api_client import api_moatd  # noqa: F401 (fixture)
from test_mailbox_rules import subject_has, user_with_rules

SMTP_SOURCE = "/usr/sbin/smtp-source"
POSTFIX = "/usr/sbin/postfix"
REFUSE = [{"name": "no ads", "when": subject_has("ad"),
           "actions": [{"type": "refuse", "text": "no ads for 2ship"}]}]


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


@pytest.fixture
def d(api_moatd, downstream):
    d = api_moatd(**delivery_conf(downstream.addr))
    # smtp-source numbers the recipients of one transaction: 2ship@, ship@.
    user_with_rules(d, "zero", ["2ship@example.org"], REFUSE, has_refuse=1)
    user_with_rules(d, "one", ["ship@example.org"], [])
    return d


def no_bounce_from_moatd(d):
    # moatd generated no delivery status notification: nothing queued with the null sender.
    assert d.query("SELECT count(*) FROM queue_message WHERE sender = ''") == [(0,)]
    assert "dsn" not in " ".join(
        line for line in d.log_text().splitlines() if " queue " in line).lower()


@pytest.mark.skipif(not os.access(SMTP_SOURCE, os.X_OK), reason="no smtp-source (postfix)")
def test_smtp_source_sees_452_for_the_second_recipient(d, downstream):
    """smtp-source: all recipients in one transaction; the second is answered 452 4.5.3."""
    p = subprocess.run([SMTP_SOURCE, "-v", "-c", "-m", "1", "-r", "2", "-f", "s@example.net",
                        "-t", "ship@example.org", "-S", "an ad", f"127.0.0.1:{d.smtp_port}"],
                       capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    # The first recipient is taken, the second is told to come again in its own transaction.
    assert "RCPT TO:<2ship@example.org>\n/usr/sbin/smtp-source: <<< 250 2.1.5" in out, out
    assert "RCPT TO:<ship@example.org>\n/usr/sbin/smtp-source: <<< 452 4.5.3" in out, out
    # smtp-source takes any refused recipient as fatal and ends the session before DATA:
    # it cannot send the 452'd recipient again (the Postfix relay below does).  Nothing
    # was accepted, so nothing is delivered and moatd has nothing to bounce.
    assert "fatal: recipient rejected: 452 4.5.3" in out, out
    assert p.returncode != 0
    assert d.query("SELECT count(*) FROM queue_rcpt") == [(0,)]
    assert downstream.rcpts() == []
    no_bounce_from_moatd(d)


def postfix_conf(dir, port, relay_port):
    """A relay-only Postfix: example.org goes to moatd, anything else (the bounce to the
    sender) is discarded; retries within a second."""
    os.makedirs(f"{dir}/queue", exist_ok=True)
    os.makedirs(f"{dir}/data", exist_ok=True)
    shutil.chown(f"{dir}/data", "postfix")
    with open(f"{dir}/main.cf", "w") as f:
        f.write(f"""compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = sender.postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.org
relay_transport = relay:[127.0.0.1]:{relay_port}
default_transport = discard:sender domains are not delivered in this test
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
in_flow_delay = 0
""")
    out = []
    for line in open("/etc/postfix/master.cf").read().splitlines():
        f = line.split()
        if line.startswith("smtp ") and len(f) > 1 and f[1] == "inet":
            out.append(f"127.0.0.1:{port} inet n - n - - smtpd")
        elif len(f) >= 8 and f[1] in ("unix", "inet", "fifo", "unix-dgram", "pass") and \
                not line[0].isspace() and not line.startswith("#"):
            f[4] = "n"  # no chroot: the queue is in a temporary directory
            out.append(" ".join(f))
        else:
            out.append(line)
    if not any(line.startswith("postlog ") for line in out):
        out.append("postlog unix-dgram n - n - 1 postlogd")
    with open(f"{dir}/master.cf", "w") as f:
        f.write("\n".join(out) + "\n")


@pytest.mark.skipif(not os.access(POSTFIX, os.X_OK) or os.geteuid() != 0 or
                    not os.path.exists("/etc/postfix/master.cf"),
                    reason="a Postfix relay needs /usr/sbin/postfix and root")
def test_postfix_relay_sends_the_452d_recipient_again(d, downstream):
    # Postfix's unprivileged processes must reach their queue: not under pytest's 0700 tmp.
    pdir = tempfile.mkdtemp(prefix="moat-postfix-")
    os.chmod(pdir, 0o755)
    pport = free_port()
    postfix_conf(pdir, pport, d.smtp_port)
    # check creates the queue directories (and may warn about the scratch location).
    subprocess.run([POSTFIX, "-c", pdir, "check"], timeout=30, capture_output=True)
    p = subprocess.run([POSTFIX, "-c", pdir, "start"], timeout=30, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    try:
        assert wait_for(lambda: _listening(pport), timeout=15), "postfix smtpd not up"
        import smtplib
        from conftest import message
        with smtplib.SMTP("127.0.0.1", pport, timeout=10) as s:
            s.sendmail("s@example.net", ["2ship@example.org", "ship@example.org"],
                       message(subject="an ad"))
        # Postfix delivers ship@ in a second transaction after moatd's 452 4.5.3.
        downstream.wait_for(1, timeout=25)
        assert downstream.rcpts() == ["ship@example.org"]
        log = lambda: open(f"{pdir}/maillog").read() if os.path.exists(  # noqa: E731
            f"{pdir}/maillog") else ""
        assert wait_for(lambda: "status=bounced" in log(), timeout=15), log()
        text = log()
        assert "452 4.5.3" in text, text
        assert "2ship@example.org" in text and "550 5.7.1 no ads for 2ship" in text, text
        # The refusal went back to the sender by the sender's own MTA, not by moatd.
        no_bounce_from_moatd(d)
        assert downstream.rcpts() == ["ship@example.org"]
    finally:
        subprocess.run([POSTFIX, "-c", pdir, "stop"], timeout=30, capture_output=True)
        shutil.rmtree(pdir, ignore_errors=True)


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
