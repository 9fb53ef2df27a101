"""Front-door policy against the real moatd: each control, its reply code and configured text,
its message-log row (check and entry), runtime changes without restart, and statistics.

Clients use different loopback source addresses (127.0.0.2, .3, ...) to be different clients.
"""

import time

import pytest

from conftest import RawSMTP, check_reply, message, qid_of, strip_received, stuff
from peers_dns import Dnsmasq
from peers_policy import Rbldnsd, applied, policy, raw_from, wait_applied


def banner(d, src):
    with raw_from(d, src) as c:
        return c.readreply()


def deliver(d, src, rcpt="r@example.org", sender="s@example.net", helo="client.example"):
    """One full transaction from src; returns the final reply."""
    with raw_from(d, src, banner=True) as c:
        c.ehlo(helo)
        return c.transaction(sender, [rcpt], message("policy"))


def rows(d, where, args=(), want=1):
    return d.log_rows(where, args, want=want)


# --- connection controls ---------------------------------------------------------------

def test_conn_deny_applies_at_runtime_and_sessions_keep_their_snapshot(moatd_factory):
    d = moatd_factory()
    policy(d, "set", "delay_reject", "no")     # refused at connect/HELO, as checked here
    old = raw_from(d, "127.0.0.2", banner=True)        # opened before the change
    # The text first: a snapshot that has the entry then has the text too (the
    # other order leaves a snapshot with the entry and the default text between).
    policy(d, "set", "conn_deny_text", "Go away {ip}, you are not welcome")
    eid = policy(d, "add", "conn_deny", "127.0.0.0/30", "lab net").stdout.strip()
    r = wait_applied(lambda: banner(d, "127.0.0.2").code == 554 or None)
    assert r, "conn_deny not applied to new connections within 5 s"
    rep = banner(d, "127.0.0.2")
    check_reply(rep, "554 5.7.1")
    assert rep.first == "554 5.7.1 Go away 127.0.0.2, you are not welcome"
    check_reply(banner(d, "127.0.0.5"), 220)          # outside the range
    # The session that started under the old policy still works.
    old.ehlo()
    qid_of(old.transaction("s@example.net", ["r@example.org"], message("old snapshot")))
    old.close()
    row = rows(d, "check_name = 'conn_deny'")[-1]
    assert row["result"] == "refused" and row["code"] == "554 5.7.1"
    assert row["entry"] == f"conn_deny entry {eid} 127.0.0.0/30", row
    assert row["client_addr"] == "127.0.0.2"
    # Removing the entry lets the client in again, still without a restart.
    policy(d, "remove", eid)
    assert wait_applied(lambda: banner(d, "127.0.0.2").code == 220 or None)
    stats = wait_applied(lambda: "conn_deny" in policy(d, "stats").stdout or None)
    assert stats, policy(d, "stats").stdout


def test_conn_precedence(moatd_factory):
    d = moatd_factory()
    policy(d, "set", "delay_reject", "no")     # refused at connect/HELO, as checked here
    policy(d, "add", "conn_deny", "127.0.0.2")
    policy(d, "add", "conn_allow", "127.0.0.0/24")
    applied(d)
    check_reply(banner(d, "127.0.0.2"), 220)          # allow wins by default
    policy(d, "set", "conn_precedence", "deny")
    assert wait_applied(lambda: banner(d, "127.0.0.2").code == 554 or None)
    check_reply(banner(d, "127.0.0.3"), 220)


def test_conn_wildcard_matches_forward_confirmed_name(moatd_factory, tmp_path):
    dns = Dnsmasq(hosts=[("mx1.bad.test", "127.0.0.3"), ("ok.good.test", "127.0.0.4")],
                 ptrs=[("127.0.0.6", "liar.bad.test")]).start()
    try:
        d = moatd_factory(dns_servers=dns.servers, dns_timeout="1s", dns_tries=1)
        policy(d, "set", "delay_reject", "no")     # refused at connect/HELO, as checked here
        policy(d, "add", "conn_deny", "*.bad.test")
        policy(d, "set", "conn_deny_text", "Hosts in bad.test are refused")
        applied(d)
        rep = banner(d, "127.0.0.3")
        check_reply(rep, "554 5.7.1")
        assert "Hosts in bad.test are refused" in rep.first
        check_reply(banner(d, "127.0.0.4"), 220)
        # A PTR that does not resolve back is not a confirmed name: no match.
        check_reply(banner(d, "127.0.0.6"), 220)
        row = rows(d, "check_name = 'conn_deny'")[-1]
        assert "*.bad.test" in row["entry"] and row["client_name"] == "mx1.bad.test"
    finally:
        dns.stop()


def test_bad_cli_input_is_refused(moatd_factory):
    d = moatd_factory()
    for args, msg in [(("add", "conn_deny", "192.0.2.1/24"), "host bits"),
                      (("add", "conn_deny", "300.1.1.1"), "not a valid address"),
                      (("add", "nosuch", "x"), "unknown list"),
                      (("set", "require_ptr", "maybe"), "yes or no"),
                      (("set", "no_such_setting", "1"), "unknown setting"),
                      (("dnsbl", "add", "bl.test", "codes=127.0.0.x"), "return codes"),
                      (("dnsbl", "add", "bad zone"), "not a valid DNS zone"),
                      (("remove", "999999"), "no entry"),
                      (("user", "add", "bob", "not-an-address"), "not a valid mail address")]:
        r = policy(d, *args, check=False)
        assert r.returncode == 1, f"{args}: rc={r.returncode}"
        assert msg in r.stderr, f"{args}: {r.stderr!r}"


# --- DNS blocklists ----------------------------------------------------------------------

@pytest.fixture
def rbl(tmp_path):
    r = Rbldnsd(tmp_path / "rbl", {
        "bl.test": [("127.0.0.2", "127.0.0.2"), ("127.0.0.5", "127.0.0.20"),
                    ("127.0.0.4", "127.0.0.2")],
        "tag.test": [("127.0.0.3", "127.0.0.10")],
        "wl.test": [("127.0.0.4", "127.0.0.2")],
    }).start()
    yield r
    r.stop()


def test_dnsbl_actions_codes_dnswl_failopen_and_stats(moatd_factory, rbl):
    d = moatd_factory(dns_servers=rbl.servers, dns_timeout="1s", dns_tries=1)
    policy(d, "set", "delay_reject", "no")     # refused at connect/HELO, as checked here
    policy(d, "dnsbl", "add", "bl.test", "codes=127.0.0.2-127.0.0.11",
           "message=Blocked: {ip} is listed at {zone}")
    policy(d, "dnsbl", "add", "tag.test", "action=tag")
    policy(d, "dnsbl", "add", "wl.test", "kind=allow")
    policy(d, "dnsbl", "add", "notserved.test")        # REFUSED by rbldnsd: fail open
    applied(d)
    rep = banner(d, "127.0.0.2")
    check_reply(rep, "554 5.7.1")
    assert rep.first == "554 5.7.1 Blocked: 127.0.0.2 is listed at bl.test"
    check_reply(banner(d, "127.0.0.5"), 220)          # 127.0.0.20 is not a counted code
    check_reply(banner(d, "127.0.0.4"), 220)          # listed, but on the DNSWL
    check_reply(banner(d, "127.0.0.6"), 220)          # nowhere
    qid = qid_of(deliver(d, "127.0.0.3"))              # tagged, delivered
    data = d.spool_message(qid)
    assert b"X-Moat-Policy: dnsbl=tag.test client=127.0.0.3 code=127.0.0.10\r\n" in data
    row = rows(d, "check_name = 'dnsbl'")[-1]
    assert row["entry"].startswith("dnsbl_site ") and "bl.test" in row["entry"], row
    assert "DNSBL TEMPFAIL zone=notserved.test" in d.log_text()

    def bl_stats():
        out = policy(d, "dnsbl", "stats").stdout
        line = [l for l in out.splitlines() if l.startswith("bl.test\t")]
        return line[0] if line and "hits=2" in line[0] else None
    line = wait_applied(bl_stats)
    assert line, policy(d, "dnsbl", "stats").stdout
    assert "hits_today=2" in line and "last_hit=20" in line
    # Disabling the site lets the client in at the next connection.
    policy(d, "dnsbl", "set", "bl.test", "enabled=no")
    assert wait_applied(lambda: banner(d, "127.0.0.2").code == 220 or None)


def test_dnsbl_ipv6_client_by_nibbles(moatd_factory, tmp_path):
    r = Rbldnsd(tmp_path / "rbl6", {"bl.test": []},
                zones6={"bl6.test": [("::1/128", "127.0.0.3")]}).start()
    try:
        d = moatd_factory(dns_servers=r.servers, dns_timeout="1s", dns_tries=1,
                          smtp_listen="127.0.0.1:0,[::1]:0")
        policy(d, "set", "delay_reject", "no")     # refused at connect/HELO, as checked here
        policy(d, "dnsbl", "add", "bl6.test", "message={ip} listed in {zone}")
        applied(d)
        v6 = [p for h, p in d.smtp_addrs if h == "::1"][0]
        with RawSMTP(v6, host="::1") as c:
            rep = c.readreply()
        assert rep.first == "554 5.7.1 ::1 listed in bl6.test", rep
        check_reply(banner(d, "127.0.0.2"), 220)      # the v4 client is not in bl6.test
    finally:
        r.stop()


def test_dnsbl_weights_and_threshold(moatd_factory, rbl):
    d = moatd_factory(dns_servers=rbl.servers, dns_timeout="1s", dns_tries=1)
    policy(d, "set", "delay_reject", "no")     # refused at connect/HELO, as checked here
    policy(d, "dnsbl", "add", "bl.test", "weight=1")
    policy(d, "dnsbl", "add", "tag.test", "weight=1", "codes=127.0.0.10")
    policy(d, "set", "dnsbl_threshold", "2")
    applied(d)
    check_reply(banner(d, "127.0.0.2"), 220)          # one site, score 1 < 2
    policy(d, "set", "dnsbl_threshold", "1")
    assert wait_applied(lambda: banner(d, "127.0.0.2").code == 554 or None)


# --- reverse DNS and HELO ----------------------------------------------------------------

@pytest.fixture
def ptrdns():
    dns = Dnsmasq(hosts=[("mx.good.test", "127.0.0.3")],
                 ptrs=[("127.0.0.5", "liar.test")],
                 a=[("resolves.test", "192.0.2.1")]).start()
    yield dns
    dns.stop()


def test_require_ptr_and_fcrdns(moatd_factory, ptrdns):
    d = moatd_factory(dns_servers=ptrdns.servers, dns_timeout="1s", dns_tries=1)
    policy(d, "set", "delay_reject", "no")     # refused at connect/HELO, as checked here
    policy(d, "set", "require_ptr", "yes")
    policy(d, "set", "require_ptr_text", "No PTR for {ip}")
    applied(d)
    rep = banner(d, "127.0.0.4")
    assert rep.first == "550 5.7.25 No PTR for 127.0.0.4"
    check_reply(banner(d, "127.0.0.5"), 220)          # has a PTR, unconfirmed: fine here
    policy(d, "set", "require_fcrdns", "yes")
    assert wait_applied(lambda: banner(d, "127.0.0.5").code == 550 or None)
    rep = banner(d, "127.0.0.5")
    check_reply(rep, "550 5.7.25")
    assert "reverse DNS does not match forward DNS" in rep.first
    # The confirmed client name is a fact: it is in the Received header and the log.
    qid = qid_of(deliver(d, "127.0.0.3"))
    assert b"(mx.good.test [127.0.0.3])" in d.spool_message(qid)
    assert rows(d, "check_name = 'require_fcrdns'")
    assert rows(d, "check_name = 'require_ptr'")[-1]["reason"] == "No PTR for 127.0.0.4"


def test_helo_checks(moatd_factory, ptrdns):
    d = moatd_factory(dns_servers=ptrdns.servers, dns_timeout="1s", dns_tries=1)
    policy(d, "set", "delay_reject", "no")     # refused at connect/HELO, as checked here
    for k in ("helo_reject_bare_ip", "helo_reject_own", "helo_require_resolve"):
        policy(d, "set", k, "yes")
    policy(d, "set", "helo_text", "Bad HELO")
    applied(d)
    with raw_from(d, "127.0.0.2", banner=True) as c:
        check_reply(c.cmd("EHLO bad!name"), "501 5.5.2")
        assert c.cmd("EHLO 192.0.2.1").first == "550 5.7.1 Bad HELO: address literal needs brackets"
        assert c.cmd("EHLO moat.test").first == "550 5.7.1 Bad HELO: you are not me"
        assert c.cmd("EHLO [127.0.0.1]").first == "550 5.7.1 Bad HELO: you are not me"
        assert c.cmd("EHLO nothere.test").first == "550 5.7.1 Bad HELO: host not found"
        check_reply(c.cmd("EHLO resolves.test"), 250)
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
    assert rows(d, "check_name = 'helo_resolve'")


# --- senders, recipients, directory, relay, limits ----------------------------------------

def test_sender_controls(moatd_factory):
    d = moatd_factory()
    policy(d, "add", "sender_deny", "spammer.example")
    policy(d, "add", "sender_deny", "bulk*@*.news.example")
    policy(d, "add", "sender_allow", "boss@spammer.example")
    policy(d, "set", "sender_deny_text", "Sender not welcome")
    applied(d)
    with raw_from(d, "127.0.0.2", banner=True) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@spammer.example>").first == "550 5.7.1 Sender not welcome"
        check_reply(c.cmd("MAIL FROM:<bulk7@a.news.example>"), "550 5.7.1")
        c.expect_cmd("MAIL FROM:<boss@spammer.example>", "250 2.1.0")
        c.expect_cmd("RSET", 250)
        c.expect_cmd("MAIL FROM:<info@a.news.example>", "250 2.1.0")
    row = rows(d, "check_name = 'sender_deny'", want=2)[0]
    assert row["sender"] == "x@spammer.example" and "spammer.example" in row["entry"]


def test_recipients_directory_groups_and_relay(moatd_factory):
    d = moatd_factory()
    policy(d, "add", "local_domain", "example.org")
    policy(d, "user", "add", "alice", "alice@example.org", "al@example.org")
    policy(d, "group", "add", "staff@example.org", "alice@example.org")
    policy(d, "add", "rcpt_deny", "noreply@example.org")
    policy(d, "remove", "relay_net", "127.0.0.0/8")
    policy(d, "add", "relay_net", "127.0.0.1")
    policy(d, "add", "relay_dest_deny", "*.blocked.example")
    applied(d)
    with raw_from(d, "127.0.0.2", banner=True) as c:       # external, unauthenticated
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<alice@example.org>", "250 2.1.5")
        c.expect_cmd("RCPT TO:<AL@Example.org>", "250 2.1.5")
        rep = c.cmd("RCPT TO:<bob@example.org>")
        assert rep.first == "550 5.1.1 Recipient address rejected: user unknown"
        check_reply(c.cmd("RCPT TO:<staff@example.org>"), "550 5.7.1")
        check_reply(c.cmd("RCPT TO:<noreply@example.org>"), "550 5.7.1")
        assert c.cmd("RCPT TO:<x@other.example>").first == "554 5.7.1 Relay access denied"
        c.expect_cmd("DATA", 354)
        c.send(stuff(message("to alice")))
        qid_of(c.readreply())
    with raw_from(d, "127.0.0.1", banner=True) as c:       # on relay_net
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.org>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<x@other.example>", "250 2.1.5")
        check_reply(c.cmd("RCPT TO:<x@a.blocked.example>"), "554 5.7.1")
    for check in ("unknown_recipient", "group_mail", "rcpt_deny", "relay", "relay_dest_deny"):
        assert rows(d, "check_name = ?", (check,)), check
    unknown = rows(d, "check_name = 'unknown_recipient'")[0]
    assert unknown["recipients"] == '["bob@example.org"]'
    assert "staff@example.org" in rows(d, "check_name = 'group_mail'")[0]["entry"]
    # Mail to groups from anyone, as a setting.
    policy(d, "set", "group_mail", "anyone")
    applied(d)
    with raw_from(d, "127.0.0.2", banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<staff@example.org>", "250 2.1.5")


def test_default_is_a_closed_relay(moatd_factory):
    d = moatd_factory()
    out = policy(d, "list", "relay_net").stdout
    assert "127.0.0.0/8" in out and "::1" in out and len(out.splitlines()) == 2
    policy(d, "remove", "relay_net", "127.0.0.0/8")
    applied(d)
    with raw_from(d, "127.0.0.2", banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        check_reply(c.cmd("RCPT TO:<r@example.org>"), "554 5.7.1")
    # Enforcement scope none: an open relay, on purpose.
    policy(d, "set", "relay_enforce", "none")
    applied(d)
    with raw_from(d, "127.0.0.2", banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")


def test_relay_exempt_host(moatd_factory):
    d = moatd_factory()
    policy(d, "remove", "relay_net", "127.0.0.0/8")
    policy(d, "add", "relay_exempt", "127.0.0.7")
    applied(d)
    with raw_from(d, "127.0.0.7", banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")


def test_max_recipients_setting(moatd_factory):
    d = moatd_factory()
    policy(d, "set", "max_recipients", "2")
    applied(d)
    with raw_from(d, "127.0.0.2", banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<a@example.org>", "250 2.1.5")
        c.expect_cmd("RCPT TO:<b@example.org>", "250 2.1.5")
        assert c.cmd("RCPT TO:<c@example.org>").first == "452 4.5.3 Error: too many recipients"


def test_harvesting_is_deferred_tarpitted_and_logged(moatd_factory):
    d = moatd_factory()
    policy(d, "add", "local_domain", "example.org")
    policy(d, "user", "add", "alice", "alice@example.org")
    policy(d, "set", "harvest_threshold", "3")
    policy(d, "set", "harvest_tarpit", "400")
    applied(d)
    with raw_from(d, "127.0.0.2", banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<h@example.net>", "250 2.1.0")
        for u in ("adam", "betty", "carl"):
            check_reply(c.cmd(f"RCPT TO:<{u}@example.org>"), "550 5.1.1")
        t0 = time.monotonic()
        rep = c.cmd("RCPT TO:<alice@example.org>")      # even a valid one, now
        assert time.monotonic() - t0 >= 0.35, "no tarpit delay"
        assert rep.first == "450 4.7.1 Too many unknown recipients, try again later"
    # Another client is not affected.
    with raw_from(d, "127.0.0.3", banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<alice@example.org>", "250 2.1.5")
    attempts = rows(d, "check_name = 'unknown_recipient'", want=3)
    assert [r["recipients"] for r in attempts] == [
        '["adam@example.org"]', '["betty@example.org"]', '["carl@example.org"]']
    assert all(r["client_addr"] == "127.0.0.2" for r in attempts)
    h = rows(d, "check_name = 'harvest'")[0]
    assert h["result"] == "deferred" and h["recipients"] == '["alice@example.org"]'


def test_client_session_and_rate_limits(moatd_factory):
    d = moatd_factory()
    policy(d, "set", "client_max_sessions", "2")
    applied(d)
    held = [raw_from(d, "127.0.0.2", banner=True) for _ in range(2)]
    rep = banner(d, "127.0.0.2")
    assert rep.first == "421 4.7.0 Too many connections from your address, try again later"
    check_reply(banner(d, "127.0.0.3"), 220)
    for c in held:
        c.close()
    policy(d, "set", "client_max_sessions", "0")
    policy(d, "set", "client_max_rate", "5")
    applied(d)
    codes = [banner(d, "127.0.0.4").code for _ in range(8)]
    assert codes[:5] == [220] * 5 and codes[5:] == [421] * 3, codes
    assert rows(d, "check_name = 'client_max_rate'", want=3)


# --- DNS failures ----------------------------------------------------------------------------

def dead_dns():
    """A UDP port nobody answers on (bound and silent for the test's duration)."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def test_dns_timeout_fails_open_and_disconnect_while_pending_is_harmless(moatd_factory):
    silent = dead_dns()
    try:
        d = moatd_factory(dns_servers=f"127.0.0.1:{silent.getsockname()[1]}",
                          dns_timeout="500ms", dns_tries=1)
        policy(d, "dnsbl", "add", "bl.test")
        policy(d, "set", "require_ptr", "yes")
        applied(d)
        # Clients that leave while their lookups are pending.
        for _ in range(20):
            c = raw_from(d, "127.0.0.2")
            c.close()
        t0 = time.monotonic()
        rep = banner(d, "127.0.0.3")
        check_reply(rep, 220)                          # a time-out never refuses
        assert time.monotonic() - t0 >= 0.4
        assert "DNSBL TEMPFAIL zone=bl.test client=[127.0.0.3]" in d.log_text()
        assert d.alive()
        stats = wait_applied(lambda: "tempfails=" in policy(d, "dnsbl", "stats").stdout
                             and "tempfails=0" not in policy(d, "dnsbl", "stats").stdout)
        assert stats, policy(d, "dnsbl", "stats").stdout
    finally:
        silent.close()
