"""Replay of the incident (../shared/seeds/000_f58276fa64f9f0de.txt, docs/submission.md):
one infected account sends with senders like `agds`, `bgssd`, `zsd;js` (malformed: 501
5.1.7, now counted), random foreign senders (553) and its own sender to many dead domains,
while ten other accounts send normally.

The numbers (default settings: account_window 10m, account_suspend_score 20):
  each infected message = MAIL FROM:<agds> (501 5.1.7: malformed +4, a new sender), then a
  random foreign sender (553: binding +4, a new sender), then its own sender (accepted, not
  a signal) with one recipient at a random live domain (the remote defers it, so it
  stays queued) and three at random dead domains (550 5.1.2: not a signal).
  Score after message 1: malformed 4 + bindings 4 + senders 3 x 2 = 14; at the
  malformed MAIL of message 2: 8 + 4 + 3 x 3 = 21 >= 20.
  => suspended at message SUSPEND_AT = 2 (its next MAIL gets 550 5.7.1), the message it
  had queued is moved to held, an alert is recorded with its signals, clients and
  samples; the 10 x 5 normal messages (100 recipients) are all delivered and every normal
  account scores 0.
"""

import json
import smtplib
import random
import string
import threading
import time

import pytest

from conftest import message, wait_for
from peers_delivery import Downstream, delivery_conf
from peers_dns import Dnsmasq
from submission_util import SUBMISSION_CONF, add_user, moatd_cli, smtp_tls

SUSPEND_AT = 2
NORMAL_ACCOUNTS = 10
NORMAL_MESSAGES = 5
BAD_MAX = 20
SEED_SENDERS = ["agds", "bgssd", "zsd;js", "zsd;js@x.test"]  # the seed's forms
SIGNALS = ["senders", "foreign_from", "bindings", "malformed", "new_network", "burst",
           "same_content"]
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
    # max_errors: malformed senders are protocol errors (501 5.1.7); they must not end the
    # session before the account is suspended (refused recipients count apart, max_refusals)
    conf.update(recipient_domain_check="yes", dns_servers=dns.servers, dns_timeout="1s",
                dns_tries="1", max_sessions_per_client="50", max_errors="1000")
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
    malformed = 0
    for n in range(1, BAD_MAX + 1):
        junk = SEED_SENDERS[n - 1] if n <= len(SEED_SENDERS) else rnd(5)
        code, resp = s.mail(junk)
        if code == 550:
            suspended_at = n
            break
        assert code == 501 and resp.startswith(b"5.1.7"), (junk, code, resp)
        malformed += 1
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
        for _ in range(3):  # dead domains: refused at RCPT, not a signal
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

    print(f"\ninfected: suspended at message {suspended_at}, malformed senders {malformed},"
          f" messages queued before {queued}")
    assert suspended_at is not None and suspended_at <= SUSPEND_AT, suspended_at
    assert queued == SUSPEND_AT - 1
    assert "MALFORMED SENDER user=infected" in d.log_text()

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

    # the alert: score, the signals that made it, the client, a sample of what was held
    alerts = wait_for(lambda: d.query(
        "SELECT user, kind, score, held, signals, clients, samples, actor, detail"
        " FROM account_alert"), timeout=5)
    user, kind, score, nheld, signals, clients, samples, actor, detail = alerts[0]
    print(f"alert: score={score} held={nheld} {detail}\nsignals={signals}\n"
          f"clients={clients}\nsamples={samples}")
    assert (user, kind, actor) == ("infected", "suspended", "moatd") and score >= 20
    sig = json.loads(signals)
    assert [x["name"] for x in sig] == SIGNALS
    by = {x["name"]: x for x in sig}
    assert by["malformed"]["points"] == 8 and by["malformed"]["weight"] == 4
    assert by["bindings"]["points"] == 4
    assert by["senders"]["value"] == 3 and by["senders"]["points"] == 9
    assert sum(x["points"] for x in sig) == score
    assert json.loads(clients) == [{"addr": "127.0.0.1", "messages": 1, "new": False}]
    smp = json.loads(samples)
    assert len(smp) == 1 and smp[0]["sender"] == "infected@example.com", smp
    assert smp[0]["subject"] == "spam 1" and smp[0]["size"] > 0
    assert smp[0]["recipient"].split("@")[1] in LIVE
    assert "ACCOUNT SUSPENDED user=infected" in d.log_text()
    susp = d.query("SELECT user FROM account_state WHERE suspended > 0")
    assert susp == [("infected",)]
    r = moatd_cli(d, "accounts", "alerts")
    assert r.returncode == 0 and b"infected\tsuspended" in r.stdout

    # the ordinary accounts: score 0, every signal at 0 points, their volume counted
    def normal_state():
        rows = d.query("SELECT user, score, signals, volume_day, last_client FROM account_state"
                       " WHERE user LIKE 'user%' AND signals IS NOT NULL AND volume_day = ?",
                       (NORMAL_MESSAGES,))
        return rows if len(rows) == NORMAL_ACCOUNTS else None  # flushed every 2 s
    rows = wait_for(normal_state, timeout=6)
    assert rows, d.query("SELECT user, volume_day FROM account_state")
    for user, score, signals, volume_day, last_client in rows:
        assert score == 0 and all(x["points"] == 0 for x in json.loads(signals)), (user, signals)
        assert volume_day == NORMAL_MESSAGES and last_client == "127.0.0.1"

    # AUTH of the suspended account is refused without a password check
    s = smtp_tls(d.smtp_port)
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login("infected", "infected-password")
    assert e.value.smtp_code == 535 and b"account suspended" in e.value.smtp_error
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


def test_malformed_senders_alone_suspend(moatd_factory):
    """Malformed senders only (501 5.1.7 each, never a 553): 4 each plus 3 per new one, so
    7, 14, 21: suspended at the third; the fourth is still a 501 (a syntax answer)."""
    d = moatd_factory(max_errors="1000", **SUBMISSION_CONF)
    add_user(d, "mallory", ["mallory@example.com"], "mallory-password")
    s = smtp_tls(d.smtp_port)
    s.login("mallory", "mallory-password")
    for junk in ["agds", "bgssd", "zsd;js", "qq;x"]:
        code, resp = s.mail(junk)
        assert code == 501 and resp.startswith(b"5.1.7"), resp
    code, resp = s.mail("mallory@example.com")
    assert code == 550 and b"suspended" in resp, resp
    s.quit()
    wait_for(lambda: d.query("SELECT 1 FROM account_state WHERE suspended > 0"), timeout=5)
    (score,), = d.query("SELECT score FROM account_alert WHERE user = 'mallory'")
    assert score == 21


def test_malformed_senders_without_brackets_count_too(moatd_factory):
    """The seed's forms as a broken client writes them, without angle brackets: a syntax
    error (501 5.5.4) rather than a bad address, counted against the login the same way."""
    d = moatd_factory(max_errors="1000", **SUBMISSION_CONF)
    add_user(d, "mallory", ["mallory@example.com"], "mallory-password")
    s = smtp_tls(d.smtp_port)
    s.login("mallory", "mallory-password")
    for junk in ["agds", "bgssd", "zsd;js", "zsd;js@x.test"]:  # 7, 14, 21: suspended
        code, resp = s.docmd("MAIL", f"FROM:{junk}")
        assert code == 501, (junk, code, resp)
    code, resp = s.mail("mallory@example.com")
    assert code == 550 and b"suspended" in resp, resp
    s.quit()
    wait_for(lambda: d.query("SELECT 1 FROM account_state WHERE suspended > 0"), timeout=5)
    (score,), = d.query("SELECT score FROM account_alert WHERE user = 'mallory'")
    assert score == 21


def test_suspension_survives_restart(moatd_factory):
    d = moatd_factory(account_suspend_score="10", **SUBMISSION_CONF)
    add_user(d, "eve", ["eve@example.com"], "eve-password-1")
    s = smtp_tls(d.smtp_port)
    s.login("eve", "eve-password-1")
    assert s.mail("x@elsewhere.example")[0] == 553  # 4 + 3 = 7
    code, resp = s.mail("y@elsewhere.example")      # 7 + 7 = 14 >= 10
    assert code == 550
    s.quit()
    wait_for(lambda: d.query("SELECT 1 FROM account_state WHERE suspended > 0"), timeout=5)
    assert d.stop() == 0
    d2 = moatd_factory(data_dir=d.data_dir, account_suspend_score="10", **SUBMISSION_CONF)
    s = smtp_tls(d2.smtp_port)
    try:  # refused at AUTH once the suspension is read back, at MAIL before
        s.login("eve", "eve-password-1")
        assert s.mail("eve@example.com")[0] == 550
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535 and b"account suspended" in e.smtp_error
    s.quit()
