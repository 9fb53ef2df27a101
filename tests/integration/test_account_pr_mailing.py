"""The legitimate PR mailing of the incident (docs/submission.md, "The PR mailing"): ONE
account sends one message to 1,000 recipients — 700 at 350 live domains, 300 at dead ones
(NXDOMAIN and null MX mixed) — in 10 transactions of 100 recipients each (same content, same
From:), over one session; then resends it to the 700 live recipients alone.

The numbers (defaults): dead recipients are refused at RCPT (550 5.1.2) and are not a
signal; many recipients and domains are not signals; the only signal is same_content —
identical content in >= 3 messages to >= 20 domains, the first time for this account:
min(8, domains / 10) = 8 (350 domains, capped).  Score 8 < 20: 0 suspensions, after the
mailing and after the resend.  Every live recipient is delivered to the downstream; nothing
dead is queued.  The 300 refused recipients do not end the session: policy refusals count
toward max_refusals (1000), not toward max_errors (10), which counts protocol errors.
"""

import json
import random
import smtplib
import time

import pytest

from conftest import wait_for
from peers_delivery import Downstream, delivery_conf
from peers_dns import Dnsmasq
from submission_util import SUBMISSION_CONF, add_user, moatd_cli, smtp_tls

LIVE_DOMAINS = [f"live{i:03d}.test" for i in range(350)]
NULL_MX = [f"nullmx{i:03d}.test" for i in range(150)]
NXDOMAIN = [f"gone{i:03d}.dead.test" for i in range(150)]
BATCH = 100
BODY = ("Dear shareholder,\r\n\r\nplease find our 2007 annual results attached.\r\n\r\n"
        "Kind regards,\r\nPR and Marketing\r\n")


def message(to):
    return (f"From: PR <pr@example.com>\r\nTo: {to}\r\nSubject: Annual results 2007\r\n"
            f"Message-ID: <{time.time_ns()}@example.com>\r\n\r\n{BODY}").encode()


@pytest.fixture
def world(moatd_factory):
    dns = Dnsmasq(mx=[(dom, "mx.partner.test", 10) for dom in LIVE_DOMAINS],
                  hosts=[("mx.partner.test", "127.0.0.2")], null_mx=NULL_MX).start()
    down = Downstream().start()
    conf = delivery_conf(down.addr, smarthost=down.addr, local_domains=("example.com",))
    conf.update(SUBMISSION_CONF)
    conf.update(recipient_domain_check="yes", dns_servers=dns.servers, dns_timeout="2s",
                dns_tries="2")
    d = moatd_factory(**conf)
    add_user(d, "pr", ["pr@example.com"], "pr-password-12")
    yield d, down
    down.stop()
    dns.stop()


def send_batches(s, rcpts, dead):
    """Transactions of BATCH recipients; returns (live accepted, dead refused, MAIL 451s)."""
    accepted = refused = waits = 0
    for i in range(0, len(rcpts), BATCH):
        batch = rcpts[i:i + BATCH]
        for _ in range(20):
            code, resp = s.mail("pr@example.com")
            if code != 451:
                break
            waits += 1  # the per-second message limit: try again, as an MTA would
            s.rset()
            time.sleep(0.3)
        assert code == 250, (code, resp)
        ok = []
        for r in batch:
            code, resp = s.rcpt(r)
            if r in dead:
                assert code == 550 and resp.startswith(b"5.1.2"), (r, code, resp)
                refused += 1
            else:
                assert code == 250, (r, code, resp)
                ok.append(r)
        code, resp = s.data(message(ok[0]))
        assert code == 250, (code, resp)
        accepted += len(ok)
    return accepted, refused, waits


def state(d):
    r = moatd_cli(d, "accounts", "list")
    rows = d.query("SELECT score, signals FROM account_state WHERE user = 'pr'")
    return r.stdout.decode().strip(), rows


def test_pr_mailing_is_not_a_compromise(world):
    d, down = world
    live = [f"holder{k}@{dom}" for dom in LIVE_DOMAINS for k in range(2)]
    dead_list = ([f"old{k}@{dom}" for dom in NULL_MX for k in range(1)]
                 + [f"old{k}@{dom}" for dom in NXDOMAIN for k in range(1)])
    assert len(live) == 700 and len(dead_list) == 300
    dead = set(dead_list)
    rcpts = live + dead_list
    random.Random(2007).shuffle(rcpts)

    s = smtp_tls(d.smtp_port)
    s.login("pr", "pr-password-12")
    t0 = time.monotonic()
    accepted, refused, waits = send_batches(s, rcpts, dead)
    s.quit()
    print(f"\nPR mailing: {accepted} live accepted, {refused} dead refused at RCPT,"
          f" {waits} MAIL deferrals, {time.monotonic() - t0:.1f} s")
    assert (accepted, refused) == (700, 300)

    down.wait_for(700, timeout=60)
    got = set(down.rcpts())
    assert got >= set(live) and not got & dead
    assert d.query("SELECT count(*) FROM queue_rcpt WHERE rcpt LIKE '%.dead.test'"
                   " OR rcpt LIKE '%@nullmx%'") == [(0,)]

    def flushed():
        rows = d.query("SELECT score, signals FROM account_state WHERE user = 'pr'"
                       " AND signals IS NOT NULL AND messages >= 10")
        return rows or None
    rows = wait_for(flushed, timeout=6)
    assert rows
    listing, rows = state(d)
    score, signals = rows[0]
    print(f"after the mailing: {listing}\nsignals={signals}")
    sig = {x["name"]: x for x in json.loads(signals)}
    assert sig["same_content"]["points"] == 8, sig["same_content"]
    assert all(x["points"] == 0 for n, x in sig.items() if n != "same_content"), sig
    assert score == 8
    assert d.query("SELECT count(*) FROM account_state WHERE suspended > 0") == [(0,)]
    assert d.query("SELECT count(*) FROM account_alert") == [(0,)]

    # the resend to the 700 live recipients alone
    s = smtp_tls(d.smtp_port)
    s.login("pr", "pr-password-12")
    resend = list(live)
    random.Random(2008).shuffle(resend)
    accepted, refused, waits = send_batches(s, resend, set())
    s.quit()
    assert (accepted, refused) == (700, 0)
    down.wait_for(1400, timeout=60)

    def flushed_again():
        rows = d.query("SELECT score, signals FROM account_state WHERE user = 'pr'"
                       " AND messages >= 17")
        return rows or None
    assert wait_for(flushed_again, timeout=6)
    listing, rows = state(d)
    score, signals = rows[0]
    print(f"after the resend: {listing} ({waits} MAIL deferrals)\nsignals={signals}")
    assert score < 20 and score == 8
    assert d.query("SELECT count(*) FROM account_state WHERE suspended > 0") == [(0,)]
    assert d.query("SELECT count(*) FROM account_alert") == [(0,)]
    assert "ACCOUNT SUSPENDED" not in d.log_text()
