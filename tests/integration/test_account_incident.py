"""Replay of the incident (../shared/seeds/000_f58276fa64f9f0de.txt, docs/submission.md):
one infected account sends with a new random MAIL FROM each time, to random domains (some
dead), while ten other accounts send normally.

The numbers (default settings: account_window 10m, account_suspend_score 20):
  each infected message = one MAIL with a random sender (553, +4 refused binding, +3 new
  sender), then its own sender (accepted) with one recipient at a random live domain (the
  remote defers it, so it stays queued) and one at a random dead domain (550 5.1.2, +2).
  Score after message 1: 9, after message 2: 18, at the third random sender: 25 >= 20.
  => suspended at message SUSPEND_AT = 3 (its MAIL gets 550 5.7.1), the 2 messages it had
  queued are moved to held, an alert is recorded; the 10 x 5 normal messages (100
  recipients) are all delivered and no normal account is suspended.
"""

import json
import random
import string
import threading
import time

import pytest

from conftest import message, wait_for
from peers_delivery import Downstream, delivery_conf
from peers_dns import Dnsmasq
from submission_util import SUBMISSION_CONF, add_user, moatd_cli, smtp_tls

SUSPEND_AT = 3
NORMAL_ACCOUNTS = 10
NORMAL_MESSAGES = 5
BAD_MAX = 20
# random live domains the infected PC writes to (MX records in dnsmasq); dead ones are
# random names under dead.test (NXDOMAIN)
LIVE = ["".join(random.choice(string.ascii_lowercase) for _ in range(10)) + ".test"
        for _ in range(BAD_MAX)]


def rnd(n=8):
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n))


@pytest.fixture
def world(moatd_factory):
    dns = Dnsmasq(mx=[(f"partner{i}.test", "mx.partner.test", 10) for i in range(3)]
                  + [(dom, "mx.partner.test", 10) for dom in LIVE],
                  hosts=[("mx.partner.test", "127.0.0.2")]).start()
    down = Downstream().start()
    conf = delivery_conf(down.addr, smarthost=down.addr, local_domains=("example.com",))
    conf.update(SUBMISSION_CONF)
    conf.update(recipient_domain_check="yes", dns_servers=dns.servers, dns_timeout="1s",
                dns_tries="1", max_sessions_per_client="50")
    d = moatd_factory(**conf)
    for i in range(NORMAL_ACCOUNTS):
        add_user(d, f"user{i}", [f"user{i}@example.com"], f"user{i}-password")
    add_user(d, "infected", ["infected@example.com"], "infected-password")
    yield d, down
    down.stop()
    dns.stop()


def normal_sender(d, i, errors):
    try:
        s = smtp_tls(d.smtp_port)
        s.login(f"user{i}", f"user{i}-password")
        for m in range(NORMAL_MESSAGES):
            s.sendmail(f"user{i}@example.com",
                       [f"a{i}m{m}@partner{m % 3}.test", f"b{i}m{m}@partner{(m + 1) % 3}.test"],
                       message(subject=f"normal {i} {m}"))
            time.sleep(0.05)
        s.quit()
    except Exception as e:  # reported by the main thread
        errors.append(repr(e))


def test_incident_replay(world):
    d, down = world
    errors = []
    threads = [threading.Thread(target=normal_sender, args=(d, i, errors))
               for i in range(NORMAL_ACCOUNTS)]
    for t in threads:
        t.start()

    s = smtp_tls(d.smtp_port)
    s.login("infected", "infected-password")
    suspended_at = None
    queued = 0
    for n in range(1, BAD_MAX + 1):
        code, resp = s.mail(f"{rnd()}@{rnd()}.example")
        if code == 550:
            assert resp.startswith(b"5.7.1") and b"suspended" in resp, resp
            suspended_at = n
            break
        assert code == 553, resp
        s.rset()
        code, resp = s.mail("infected@example.com")
        if code == 550:
            suspended_at = n
            break
        live = f"{rnd()}@{LIVE[n - 1]}"
        down.replies[live] = "451 4.3.0 Try again later"  # the remote defers the spam
        assert s.rcpt(live)[0] == 250
        code, resp = s.rcpt(f"{rnd()}@{rnd()}.dead.test")
        assert code == 550 and resp.startswith(b"5.1.2"), resp
        code, resp = s.data(message(subject=f"spam {n}"))
        if code == 550:
            suspended_at = n
            break
        assert code == 250, resp
        queued += 1
    s.quit()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors

    assert suspended_at is not None and suspended_at <= SUSPEND_AT, suspended_at
    assert queued == SUSPEND_AT - 1

    # its queued mail is held, with the reason
    def held():
        rows = d.query("SELECT r.state, r.reason FROM queue_rcpt r JOIN queue_message m"
                       " ON m.qid = r.qid WHERE m.auth_user = 'infected'")
        return rows if rows and all(st == "held" for st, _ in rows) else None
    rows = wait_for(held, timeout=10)
    assert rows and len(rows) == queued, d.query(
        "SELECT r.state FROM queue_rcpt r JOIN queue_message m ON m.qid = r.qid"
        " WHERE m.auth_user = 'infected'")
    assert all("account infected suspended" in reason for _, reason in rows)
    r = moatd_cli(d, "queue", "list", "--state", "held", "--reason", "account infected suspended",
                  "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == queued, r.stdout

    # every normal message is delivered
    down.wait_for(NORMAL_ACCOUNTS * NORMAL_MESSAGES * 2, timeout=30)
    normal = [r for r in down.rcpts() if "partner" in r]
    assert len(normal) == NORMAL_ACCOUNTS * NORMAL_MESSAGES * 2
    assert not [r for r in down.rcpts() if r.split("@")[1] in LIVE]

    # the alert, the log line, the state
    alerts = wait_for(lambda: d.query("SELECT user, kind, score, held FROM account_alert"),
                      timeout=5)
    assert alerts and alerts[0][:2] == ("infected", "suspended") and alerts[0][2] >= 20
    assert "ACCOUNT SUSPENDED user=infected" in d.log_text()
    susp = d.query("SELECT user FROM account_state WHERE suspended > 0")
    assert susp == [("infected",)]
    r = moatd_cli(d, "accounts", "alerts")
    assert r.returncode == 0 and b"infected\tsuspended" in r.stdout

    # AUTH still answers; MAIL is refused with a clear text
    s = smtp_tls(d.smtp_port)
    s.login("infected", "infected-password")
    code, resp = s.mail("infected@example.com")
    assert code == 550 and b"Account suspended" in resp
    s.quit()

    # an administrator lifts the suspension
    r = moatd_cli(d, "accounts", "lift", "infected")
    assert r.returncode == 0, r.stderr

    def can_send():
        s = smtp_tls(d.smtp_port)
        s.login("infected", "infected-password")
        code = s.mail("infected@example.com")[0]
        s.quit()
        return code == 250
    assert wait_for(can_send, timeout=6, interval=0.5)
    r = moatd_cli(d, "accounts", "list", "--suspended")
    assert r.returncode == 0 and r.stdout == b""


def test_suspension_survives_restart(moatd_factory):
    d = moatd_factory(account_suspend_score="5", **SUBMISSION_CONF)
    add_user(d, "eve", ["eve@example.com"], "eve-password-1")
    s = smtp_tls(d.smtp_port)
    s.login("eve", "eve-password-1")
    assert s.mail("x@elsewhere.example")[0] == 553  # 4
    code, resp = s.mail("y@elsewhere.example")      # 4 + 4 + 3 = 11 >= 5
    assert code == 550
    s.quit()
    wait_for(lambda: d.query("SELECT 1 FROM account_state WHERE suspended > 0"), timeout=5)
    assert d.stop() == 0
    d2 = moatd_factory(data_dir=d.data_dir, account_suspend_score="5", **SUBMISSION_CONF)
    s = smtp_tls(d2.smtp_port)
    s.login("eve", "eve-password-1")
    assert s.mail("eve@example.com")[0] == 550
    s.quit()
